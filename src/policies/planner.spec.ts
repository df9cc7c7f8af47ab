import { plan, PlanAgent, PlanRequest, resolveFailureLimit, resolveParallel } from './planner';
import { CONCRETE_POLICIES, DEFAULT_UPGRADE_OPTIONS, type UpgradeOptions } from './upgrade-options';

const agent = (name: string, over: Partial<PlanAgent> = {}): PlanAgent => ({
  id: `id-${name}`,
  name,
  address: `${name}.lan`,
  role: 'standalone',
  failoverGroup: null,
  active: true,
  version: '1.0.0',
  webappsVersion: null,
  paired: true,
  online: true,
  busy: false,
  remoteUpgrade: true,
  factsKnown: true,
  ...over,
});
const main = (group: string, over: Partial<PlanAgent> = {}) =>
  agent(`${group}-main`, { role: 'main', failoverGroup: group, active: true, ...over });
const backup = (group: string, over: Partial<PlanAgent> = {}) =>
  agent(`${group}-backup`, { role: 'backup', failoverGroup: group, active: false, ...over });

function request(
  agents: PlanAgent[],
  over: Partial<Omit<PlanRequest, 'options'>> & { options?: Partial<UpgradeOptions> } = {},
): PlanRequest {
  return {
    targets: agents,
    cluster: agents,
    pkg: { version: '1.1.0', kind: 'full' },
    policy: 'default',
    clusterDefaultPolicy: 'simultaneous',
    ...over,
    options: { ...DEFAULT_UPGRADE_OPTIONS, ...over.options },
  };
}

/** A plan as short lines: `kind agent <- deps [runWhen] status`, in plan order. */
const shape = (p: ReturnType<typeof plan>) =>
  p.steps.map(
    (s) =>
      `${s.kind} ${s.agentId.replace('id-', '')}${s.dependsOn.length ? ` <- ${s.dependsOn.join(',').replace(/id-/g, '')}` : ''}${s.runWhen !== 'succeeded' ? ` [${s.runWhen}]` : ''} ${s.status}`,
  );
const codes = (p: ReturnType<typeof plan>) => p.warnings.map((w) => w.code);

describe('planner: policies and pair situations', () => {
  const healthy = [main('g'), backup('g')];
  const backupOffline = [main('g'), backup('g', { online: false })];
  const mainOffline = [main('g', { online: false }), backup('g')];
  const backupMissing = [main('g')];

  // Each policy with a healthy pair, with either member offline and with a member missing: a new
  // policy adds its rows here (the case after the table checks that every policy has some).
  const cases = [
    ['simultaneous', healthy, ['upgrade g-backup pending', 'upgrade g-main pending'], []],
    ['simultaneous', backupOffline, ['upgrade g-backup pending', 'upgrade g-main pending'], ['AGENTS_OFFLINE']],
    ['simultaneous', mainOffline, ['upgrade g-backup pending', 'upgrade g-main pending'], ['AGENTS_OFFLINE']],
    ['simultaneous', backupMissing, ['upgrade g-main pending'], ['PAIR_INCOMPLETE']],
    [
      'backup-first',
      healthy,
      [
        'upgrade g-backup pending',
        'switchover g-backup <- upgrade:g-backup pending',
        'upgrade g-main <- switchover:g pending',
        'switchback g-main <- upgrade:g-main [failed] pending',
      ],
      [],
    ],
    [
      'backup-first',
      backupOffline,
      [
        'upgrade g-backup pending',
        'switchover g-backup <- upgrade:g-backup pending',
        'upgrade g-main <- switchover:g pending',
        'switchback g-main <- upgrade:g-main [failed] pending',
      ],
      ['PAIR_STANDBY_OFFLINE', 'AGENTS_OFFLINE'],
    ],
    [
      'backup-first',
      mainOffline,
      [
        'upgrade g-backup pending',
        'switchover g-backup <- upgrade:g-backup pending',
        'upgrade g-main <- switchover:g pending',
        'switchback g-main <- upgrade:g-main [failed] pending',
      ],
      ['PAIR_SERVING_OFFLINE', 'AGENTS_OFFLINE'],
    ],
    ['backup-first', backupMissing, ['upgrade g-main pending'], ['PAIR_INCOMPLETE']],
    [
      'backup-first-switchback',
      healthy,
      [
        'upgrade g-backup pending',
        'switchover g-backup <- upgrade:g-backup pending',
        'upgrade g-main <- switchover:g pending',
        'switchback g-main <- upgrade:g-main [ended] pending',
      ],
      [],
    ],
    [
      'backup-first-switchback',
      backupOffline,
      [
        'upgrade g-backup pending',
        'switchover g-backup <- upgrade:g-backup pending',
        'upgrade g-main <- switchover:g pending',
        'switchback g-main <- upgrade:g-main [ended] pending',
      ],
      ['PAIR_STANDBY_OFFLINE', 'AGENTS_OFFLINE'],
    ],
    [
      'backup-first-switchback',
      mainOffline,
      [
        'upgrade g-backup pending',
        'switchover g-backup <- upgrade:g-backup pending',
        'upgrade g-main <- switchover:g pending',
        'switchback g-main <- upgrade:g-main [ended] pending',
      ],
      ['PAIR_SERVING_OFFLINE', 'AGENTS_OFFLINE'],
    ],
    ['backup-first-switchback', [backup('g')], ['upgrade g-backup pending'], ['PAIR_INCOMPLETE']],
  ] as const;
  it.each(cases)('%s with %j', (policy, agents, steps, warnings) => {
    const p = plan(request([...agents], { policy }));
    expect(p.resolvedPolicy).toBe(policy);
    expect(shape(p)).toEqual(steps);
    expect(codes(p)).toEqual(warnings);
    expect(p.refusals).toEqual([]);
    expect(p.units).toBe(1);
  });

  it('every policy has cases in the table above', () => {
    expect(new Set(cases.map(([policy]) => policy))).toEqual(new Set(CONCRETE_POLICIES));
  });

  it('without switchBackOnFailure, backup-first has no switchback and switchback runs on success only', () => {
    expect(
      shape(
        plan(request([main('g'), backup('g')], { policy: 'backup-first', options: { switchBackOnFailure: false } })),
      ),
    ).toEqual([
      'upgrade g-backup pending',
      'switchover g-backup <- upgrade:g-backup pending',
      'upgrade g-main <- switchover:g pending',
    ]);
    expect(
      shape(
        plan(
          request([main('g'), backup('g')], {
            policy: 'backup-first-switchback',
            options: { switchBackOnFailure: false },
          }),
        ),
      ).at(-1),
    ).toBe('switchback g-main <- upgrade:g-main pending');
  });

  it('default resolves to the cluster default policy', () => {
    const p = plan(request([main('g'), backup('g')], { policy: 'default', clusterDefaultPolicy: 'backup-first' }));
    expect(p.resolvedPolicy).toBe('backup-first');
    expect(p.steps.map((s) => s.kind)).toContain('switchover');
  });

  it('upgrades the standby first when the backup serves already', () => {
    const p = plan(
      request([main('g', { active: false }), backup('g', { active: true })], {
        policy: 'backup-first',
        options: { switchBackOnFailure: false },
      }),
    );
    expect(shape(p)).toEqual([
      'upgrade g-main pending',
      'switchover g-main <- upgrade:g-main pending',
      'upgrade g-backup <- switchover:g pending',
    ]);
    expect(codes(p)).toEqual(['PAIR_SWITCHED_OVER']);
  });

  it('needs no switchover when the serving member is on the version already', () => {
    const p = plan(request([main('g', { version: '1.1.0' }), backup('g')], { policy: 'backup-first' }));
    expect(shape(p)).toEqual(['upgrade g-backup pending', 'upgrade g-main skipped']);
  });

  it('a switchover follows a standby that is on the version already', () => {
    const p = plan(
      request([main('g'), backup('g', { version: '1.1.0' })], {
        policy: 'backup-first',
        options: { switchBackOnFailure: false },
      }),
    );
    expect(shape(p)).toEqual([
      'upgrade g-backup skipped',
      'switchover g-backup <- upgrade:g-backup pending',
      'upgrade g-main <- switchover:g pending',
    ]);
  });

  it('a pair member catching up with its upgraded peer hands over to it first when it serves', () => {
    const caughtUp = backup('g', { version: '1.1.0' });
    const serving = plan(request([main('g')], { cluster: [main('g'), caughtUp], policy: 'backup-first' }));
    expect(shape(serving)).toEqual([
      'upgrade g-backup skipped',
      'switchover g-backup <- upgrade:g-backup pending',
      'upgrade g-main <- switchover:g pending',
      'switchback g-main <- upgrade:g-main [failed] pending',
    ]);
    expect(codes(serving)).toEqual([]);
    // The peer serves already: this member is upgraded alone, no switchover, no warning.
    const standby = plan(
      request([backup('g')], {
        cluster: [main('g', { version: '1.1.0' }), backup('g')],
        policy: 'backup-first-switchback',
      }),
    );
    expect(shape(standby)).toEqual(['upgrade g-backup pending', 'upgrade g-main skipped']);
    expect(codes(standby)).toEqual([]);
    // Under simultaneous too: with its peer done, the serving member would stop alone, so it hands over first.
    expect(shape(plan(request([main('g')], { cluster: [main('g'), caughtUp], policy: 'simultaneous' })))).toEqual(
      shape(serving),
    );
  });

  it.each(CONCRETE_POLICIES)(
    '%s: a serving member targeted without its peer hands over to it first, and it is said',
    (policy) => {
      const all = [main('g'), backup('g')];
      const p = plan(request([all[0]], { cluster: all, policy }));
      expect(shape(p)).toEqual([
        'switchover g-backup pending',
        'upgrade g-main <- switchover:g pending',
        'switchback g-main <- upgrade:g-main [failed] pending',
      ]);
      expect(p.steps[0].note).toMatch(/takes over from g-main on the version it runs/);
      expect(codes(p)).toEqual(['PAIR_PARTIAL', 'MIXED_VERSIONS']);
      // The standby alone is simply upgraded: its peer serves meanwhile.
      expect(shape(plan(request([all[1]], { cluster: all, policy })))).toEqual(['upgrade g-backup pending']);
    },
  );

  it('a serving member whose peer is a legacy agent is upgraded by hand (nothing could take over)', () => {
    const all = [main('g'), backup('g', { remoteUpgrade: false })];
    const p = plan(request([all[0]], { cluster: all }));
    expect(shape(p)).toEqual(['manual g-main manual']);
    expect(codes(p)).toEqual(['PAIR_PARTIAL', 'PAIR_MANUAL', 'MIXED_VERSIONS', 'NOTHING_TO_DO']);
  });

  it('a pair with a legacy standby is manual under every policy; a legacy serving member alone under simultaneous', () => {
    const pair = [main('g'), backup('g', { remoteUpgrade: false })];
    expect(shape(plan(request(pair, { policy: 'backup-first' })))).toEqual([
      'manual g-backup manual',
      'manual g-main manual',
    ]);
    expect(shape(plan(request(pair, { policy: 'simultaneous' })))).toEqual([
      'manual g-backup manual',
      'manual g-main manual',
    ]);
    const legacyMain = [main('g', { remoteUpgrade: false }), backup('g')];
    expect(shape(plan(request(legacyMain, { policy: 'simultaneous' })))).toEqual([
      'upgrade g-backup pending',
      'manual g-main manual',
    ]);
  });

  it('a downgrade is refused unless asked for, then warned about, and a major across it bars backup-first', () => {
    const newer = [agent('a', { version: '10.3.0' }), agent('b', { version: '1.0.0' })];
    const refused = plan(request(newer, { pkg: { version: '1.0.0', kind: 'full' } }));
    expect(refused.refusals.map((r) => r.code)).toEqual(['DOWNGRADE']);
    expect(refused.refusals[0].message).toMatch(/older than what 1 target\(s\) run \(a 10\.3\.0\).*allowDowngrade/);
    const allowed = plan(
      request(newer, { pkg: { version: '1.0.0', kind: 'full' }, options: { allowDowngrade: true } }),
    );
    expect(allowed.refusals).toEqual([]);
    expect(codes(allowed)).toContain('DOWNGRADE');
    expect(shape(allowed)).toEqual(['upgrade a pending', 'upgrade b skipped']);
    const pair = [main('g', { version: '2.0.0' }), backup('g', { version: '2.0.0' })];
    const acrossMajor = plan(
      request(pair, {
        pkg: { version: '1.5.0', kind: 'full' },
        policy: 'backup-first',
        options: { allowDowngrade: true },
      }),
    );
    expect(acrossMajor.refusals.map((r) => r.code)).toEqual(['LEGACY_POLICY_ON_MAJOR']);
  });
});

describe('planner: skipped, manual, refusals', () => {
  it('skips agents on the version and lists legacy agents as manual', () => {
    const p = plan(request([agent('a', { version: '1.1.0' }), agent('b', { remoteUpgrade: false }), agent('c')]));
    expect(shape(p)).toEqual(['upgrade a skipped', 'manual b manual', 'upgrade c pending']);
    expect(p.steps[1].note).toMatch(/by hand.*pair it again/);
    expect(codes(p)).toEqual(['MANUAL_STEPS', 'MIXED_VERSIONS']);
    expect(p.units).toBe(1);
  });

  it('compares the web-apps version for a webapps package', () => {
    const p = plan(
      request([agent('a', { version: '1.1.0', webappsVersion: '1.0.0' }), agent('b', { webappsVersion: '2.0.0' })], {
        pkg: { version: '2.0.0', kind: 'webapps' },
      }),
    );
    expect(shape(p)).toEqual(['upgrade a pending', 'upgrade b skipped']);
  });

  it('says when there is nothing to do', () => {
    expect(codes(plan(request([agent('a', { version: '1.1.0' })])))).toEqual(['NOTHING_TO_DO']);
  });

  it('refuses an empty target', () => {
    expect(plan(request([])).refusals.map((r) => r.code)).toEqual(['NO_AGENTS']);
  });

  it.each([
    ['backup-first', false, ['LEGACY_POLICY_ON_MAJOR']],
    ['backup-first-switchback', false, ['LEGACY_POLICY_ON_MAJOR']],
    ['backup-first', true, []],
    ['simultaneous', false, []],
  ] as const)('a major upgrade of a pair under %s (acknowledged: %s) is refused: %j', (policy, allow, refusals) => {
    const p = plan(
      request([main('g'), backup('g')], {
        policy,
        pkg: { version: '2.0.0', kind: 'full' },
        options: { allowLegacyPolicyOnMajor: allow },
      }),
    );
    expect(p.refusals.map((r) => r.code)).toEqual(refusals);
  });

  it('does not refuse a legacy policy on a major upgrade of standalone agents only', () => {
    expect(
      plan(request([agent('a')], { policy: 'backup-first', pkg: { version: '2.0.0', kind: 'full' } })).refusals,
    ).toEqual([]);
  });
});

describe('planner: warnings', () => {
  it.each([
    ['AGENTS_OFFLINE', agent('a', { online: false })],
    ['AGENTS_UNPAIRED', agent('a', { paired: false, online: false, version: null, factsKnown: false })],
    ['AGENTS_BUSY', agent('a', { busy: true })],
    ['FACTS_UNKNOWN', agent('a', { factsKnown: false })],
  ])('%s', (code, a) => {
    expect(codes(plan(request([a])))).toContain(code);
  });

  it('AGENTS_BUSY says the work is interrupted when waitForIdle is off', () => {
    const p = plan(request([agent('a', { busy: true })], { options: { waitForIdle: false } }));
    expect(p.warnings.find((w) => w.code === 'AGENTS_BUSY')?.message).toMatch(/interrupted/);
  });

  it('MIXED_VERSIONS names the agents left behind, and is silent when all are upgraded', () => {
    const all = [agent('a'), agent('b'), agent('c', { version: '1.1.0' })];
    const p = plan(request([all[0]], { cluster: all }));
    expect(p.warnings).toEqual([expect.objectContaining({ code: 'MIXED_VERSIONS', agentIds: ['id-b'] })]);
    expect(codes(plan(request(all)))).toEqual([]);
  });
});

describe('planner: batches', () => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => agent(`a${String(i).padStart(2, '0')}`));
  const batchesOf = (p: ReturnType<typeof plan>) => p.steps.map((s) => s.batch);

  it.each([
    [0, 5, [0, 0, 0, 0, 0]],
    [2, 5, [0, 0, 1, 1, 2]],
    ['40%', 5, [0, 0, 1, 1, 2]],
    ['10%', 5, [0, 1, 2, 3, 4]],
    ['100%', 5, [0, 0, 0, 0, 0]],
    [9, 3, [0, 0, 0]],
  ] as const)('maxParallel %j over %i units', (maxParallel, n, batches) => {
    expect(batchesOf(plan(request(many(n), { options: { maxParallel } })))).toEqual(batches);
  });

  it('a pair is one unit', () => {
    const p = plan(request([main('g'), backup('g'), agent('s')], { options: { maxParallel: 1 } }));
    expect(p.units).toBe(2);
    expect(batchesOf(p)).toEqual([0, 0, 1]);
  });

  it('canary units form the first batch, then batches of maxParallel', () => {
    const p = plan(request(many(5), { options: { canary: 1, maxParallel: 2 } }));
    expect(batchesOf(p)).toEqual([0, 1, 1, 2, 2]);
    expect(p.batches).toBe(3);
  });

  it('skipped and manual units do not take a place in a batch', () => {
    const p = plan(
      request([agent('a', { version: '1.1.0' }), agent('b'), agent('c')], { options: { maxParallel: 1 } }),
    );
    expect(p.steps.map((s) => [s.status, s.batch])).toEqual([
      ['skipped', 0],
      ['pending', 0],
      ['pending', 1],
    ]);
  });

  it.each([
    [1, 10, 1],
    [0, 10, Infinity],
    ['25%', 10, 3],
    ['1%', 10, 1],
    ['0%', 10, Infinity],
  ] as const)('failureThreshold %j over %i units allows %d failures', (value, units, limit) => {
    expect(resolveFailureLimit(value, units)).toBe(limit);
  });

  it.each([
    [0, 7, 7],
    ['50%', 7, 3],
    ['1%', 7, 1],
    [3, 2, 2],
  ] as const)('maxParallel %j over %i units is %d at once', (value, units, count) => {
    expect(resolveParallel(value, units)).toBe(count);
  });
});
