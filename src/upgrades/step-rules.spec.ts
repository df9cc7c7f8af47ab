import { ruleAgent, ruleAgents, ruleStep } from '../testing/rule-fixtures';
import * as fc from 'fast-check';
import { decide, finishedLate, judgeEnd, RuleAgent, RuleStep, RuleUpgrade, upgradePercent } from './step-rules';
import type { StepStatus } from './upgrade-step.entity';

const NOW = new Date('2026-06-01T12:00:00.000Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000);

const upgrade = (over: Partial<RuleUpgrade> = {}): RuleUpgrade => ({
  status: 'running',
  options: { waitForIdle: true, idleTimeoutS: 60, offlineTimeoutS: 30, phaseTimeoutS: 120 },
  canaryPending: false,
  failureLimit: 1,
  pkg: { version: '1.1.0', kind: 'full', prerequisites: { fromVersion: '>=1.0.0 <1.1.0', minFreeDiskMb: 100 } },
  ...over,
});

const agent = ruleAgent;

const step = ruleStep;

const agents = ruleAgents;
const short = (d: ReturnType<typeof decide>) =>
  d.steps.map((a) => `${a.type} ${a.stepId}${a.type === 'wait' ? ` ${a.for}` : ''}`);

describe('step rules: starting an upgrade step', () => {
  it.each([
    ['an online idle agent starts', agent('a'), step('a'), ['start a']],
    ['an offline agent is waited for', agent('a', { online: false }), step('a'), ['wait a online']],
    ['a never paired agent is waited for', agent('a', { paired: false, online: false }), step('a'), ['wait a online']],
    ['a busy agent is waited for (and held)', agent('a', { busy: true }), step('a'), ['wait a idle']],
    [
      'still busy within idleTimeoutS: no change',
      agent('a', { busy: true }),
      step('a', { status: 'waiting', waitingFor: 'idle', waitingSince: ago(59) }),
      [],
    ],
    [
      'busy beyond idleTimeoutS: missed, not failed',
      agent('a', { busy: true }),
      step('a', { status: 'waiting', waitingFor: 'idle', waitingSince: ago(61) }),
      ['miss a'],
    ],
    [
      'offline beyond offlineTimeoutS: missed, not failed',
      agent('a', { online: false }),
      step('a', { status: 'waiting', waitingFor: 'online', waitingSince: ago(31) }),
      ['miss a'],
    ],
    [
      'back online after a wait starts',
      agent('a'),
      step('a', { status: 'waiting', waitingFor: 'online', waitingSince: ago(31) }),
      ['start a'],
    ],
    [
      'prerequisites unmet on fresh facts fail',
      agent('a', { facts: { os: 'linux', freeDiskMb: 10 } }),
      step('a'),
      ['fail a'],
    ],
    [
      'a running step within phaseTimeoutS: no change',
      agent('a'),
      step('a', { status: 'running', phaseStartedAt: ago(119), attempts: 1 }),
      [],
    ],
    [
      'a running step beyond phaseTimeoutS fails',
      agent('a'),
      step('a', { status: 'running', phaseStartedAt: ago(121), attempts: 1 }),
      ['fail a'],
    ],
  ])('%s', (_name, a, s, expected) => {
    expect(short(decide(upgrade(), [s], agents(a), NOW))).toEqual(expected);
  });

  it('a busy agent starts at once when waitForIdle is off', () => {
    const d = decide(
      upgrade({ options: { ...upgrade().options, waitForIdle: false } }),
      [step('a')],
      agents(agent('a', { busy: true })),
      NOW,
    );
    expect(short(d)).toEqual(['start a']);
  });

  it('a removed agent fails its step', () => {
    expect(decide(upgrade(), [step('a')], agents(), NOW).steps).toEqual([
      { type: 'fail', stepId: 'a', error: 'agent a was removed' },
    ]);
  });

  it('the prerequisite failure says what was required and what the agent has', () => {
    const d = decide(upgrade(), [step('a')], agents(agent('a', { version: '0.9.0' })), NOW);
    expect(d.steps[0]).toMatchObject({
      type: 'fail',
      error: expect.stringMatching(/fromVersion requires >=1\.0\.0 <1\.1\.0, agent has 0\.9\.0/),
    });
  });
});

describe('step rules: a backup-first pair', () => {
  // backup upgrade (b) -> switchover to backup (so) -> main upgrade (m) -> switchback on failure (sb)
  const pair = (
    statuses: Partial<Record<'b' | 'so' | 'm' | 'sb', StepStatus>>,
    runWhen: RuleStep['runWhen'] = 'failed',
  ): RuleStep[] => [
    step('b', { status: statuses.b ?? 'pending', attempts: statuses.b && statuses.b !== 'pending' ? 1 : 0 }),
    step('so', { kind: 'switchover', agentId: 'b', dependsOn: ['b'], status: statuses.so ?? 'pending' }),
    step('m', { dependsOn: ['so'], status: statuses.m ?? 'pending' }),
    step('sb', { kind: 'switchback', agentId: 'm', dependsOn: ['m'], runWhen, status: statuses.sb ?? 'pending' }),
  ];
  const both = (b: Partial<RuleAgent> = {}, m: Partial<RuleAgent> = {}) => agents(agent('b', b), agent('m', m));

  it.each([
    [
      'at first only the backup starts; the rest wait for it',
      {},
      both(),
      ['start b', 'wait so dependencies', 'wait m dependencies', 'wait sb dependencies'],
    ],
    [
      'the switchover starts once the backup runs the new version',
      { b: 'succeeded' },
      both({ version: '1.1.0' }),
      ['start so', 'wait m dependencies', 'wait sb dependencies'],
    ],
    [
      'the switchover waits at its gate while the backup is busy',
      { b: 'succeeded' },
      both({ version: '1.1.0', busy: true }),
      ['wait so gate', 'wait m dependencies', 'wait sb dependencies'],
    ],
    [
      'the switchover waits at its gate while the backup runs another version',
      { b: 'succeeded' },
      both({ version: '1.0.0' }),
      ['wait so gate', 'wait m dependencies', 'wait sb dependencies'],
    ],
    [
      'a failed backup blocks the switchover and the main, and there is nothing to switch back',
      { b: 'rolled-back' },
      both(),
      ['block so', 'block m', 'skip sb'],
    ],
    [
      'the main starts after the switchover',
      { b: 'succeeded', so: 'succeeded' },
      both({ version: '1.1.0' }),
      ['start m', 'wait sb dependencies'],
    ],
    [
      'a main that succeeded needs no switchback on failure',
      { b: 'succeeded', so: 'succeeded', m: 'succeeded' },
      both({ version: '1.1.0' }, { version: '1.1.0' }),
      ['skip sb'],
    ],
    [
      'a main that failed takes back over on its old version',
      { b: 'succeeded', so: 'succeeded', m: 'failed' },
      both({ version: '1.1.0' }, { lastUpgradeFailed: true }),
      ['start sb'],
    ],
  ] as const)('%s', (_name, statuses, a, expected) => {
    expect(short(decide(upgrade({ failureLimit: null }), pair(statuses), a, NOW))).toEqual(expected);
  });

  it('a switchover gate not met within phaseTimeoutS fails, and the main stays untouched', () => {
    const steps = pair({ b: 'succeeded' });
    steps[1] = { ...steps[1], status: 'waiting', waitingFor: 'gate', waitingSince: ago(121) };
    const d = decide(upgrade({ failureLimit: null }), steps, both({ version: '1.0.0' }), NOW);
    expect(short(d)).toEqual(['fail so', 'block m', 'skip sb']);
    expect(d.steps[0]).toMatchObject({
      error: expect.stringMatching(/could not take over \(runs 1\.0\.0, not 1\.1\.0\)/),
    });
  });
});

describe('step rules: a command the agent has not fetched yet', () => {
  const queued = (waited: number) =>
    step('a', { status: 'waiting', waitingFor: 'pickup', waitingSince: ago(waited), attempts: 1, commandId: 'c1' });

  it('waits for the agent within offlineTimeoutS: no change, and the upgrade does not end', () => {
    const d = decide(upgrade(), [queued(29)], agents(agent('a')), NOW);
    expect(d).toEqual({ steps: [], upgrade: null });
  });

  it('an agent that did not fetch it within offlineTimeoutS missed its turn; the upgrade still succeeds', () => {
    const d = decide(upgrade(), [queued(31)], agents(agent('a', { online: false })), NOW);
    expect(d.steps).toEqual([{ type: 'miss', stepId: 'a', reason: 'a did not fetch its command within 30s' }]);
    expect(d.upgrade).toMatchObject({
      type: 'finish',
      status: 'succeeded',
      reason: expect.stringMatching(/1 agent\(s\) missed their turn/),
    });
  });

  it('an online agent gets at least the heartbeat timeout to fetch it, however short offlineTimeoutS is', () => {
    expect(decide(upgrade({ pickupTimeoutS: 60 }), [queued(31)], agents(agent('a')), NOW).steps).toEqual([]);
    expect(short(decide(upgrade({ pickupTimeoutS: 60 }), [queued(61)], agents(agent('a')), NOW))).toEqual(['miss a']);
  });

  it('a cancelled upgrade waits for a queued command to be fetched or missed', () => {
    expect(decide(upgrade({ status: 'cancelled' }), [queued(5)], agents(agent('a')), NOW).upgrade).toBeNull();
  });

  it('a missed step blocks what needed it, and is no failure for the threshold', () => {
    const steps = [
      step('a', { status: 'missed', attempts: 0 }),
      step('so', { kind: 'switchover', agentId: 'b', dependsOn: ['a'] }),
      step('c', { agentId: 'c', unit: 1 }),
    ];
    const d = decide(upgrade({ failureLimit: 1 }), steps, agents(agent('a'), agent('b'), agent('c')), NOW);
    expect(short(d)).toEqual(['block so', 'start c']);
    expect(d.steps[0]).toMatchObject({ cause: 'dependency', reason: expect.stringMatching(/ended missed/) });
  });

  it('the failure threshold says it is the cause of what it blocks', () => {
    const steps = [step('a', { status: 'failed', attempts: 1 }), step('b', { agentId: 'b', unit: 1 })];
    expect(decide(upgrade({ failureLimit: 1 }), steps, agents(agent('a'), agent('b')), NOW).steps).toEqual([
      { type: 'block', stepId: 'b', reason: expect.stringMatching(/failure threshold/), cause: 'threshold' },
    ]);
  });
});

describe('step rules: a serving pair member is never stopped alone', () => {
  // m serves its pair with b; each may have an upgrade step in the same upgrade.
  const pairAgents = (m: Partial<RuleAgent> = {}, b: Partial<RuleAgent> = {}) =>
    agents(agent('m', { active: true, peerId: 'b', ...m }), agent('b', { active: false, peerId: 'm', ...b }));
  const mStep = step('m');
  const bStep = (status: StepStatus) => step('b', { status, attempts: status === 'pending' ? 0 : 1 });

  it.each([
    [
      'simultaneous, peer healthy and upgraded with it: both start',
      [mStep, bStep('pending')],
      pairAgents(),
      ['start m', 'start b'],
    ],
    [
      'peer offline: it waits for its peer (and the peer for itself)',
      [mStep, bStep('pending')],
      pairAgents({}, { online: false }),
      ['wait m peer', 'wait b online'],
    ],
    [
      'peer failed its last upgrade: it waits',
      [mStep, bStep('pending')],
      pairAgents({}, { lastUpgradeFailed: true }),
      ['wait m peer', 'start b'],
    ],
    ['peer not part of this upgrade: it waits', [mStep], pairAgents(), ['wait m peer']],
    ['peer missed its turn: it waits', [mStep, bStep('missed')], pairAgents(), ['wait m peer']],
    ['peer upgraded already in this upgrade: it may stop', [mStep, bStep('succeeded')], pairAgents(), ['start m']],
    ['a standby member never waits for its peer', [step('b')], pairAgents({ online: false }), ['start b']],
    // Roles changed since the plan: the member that now serves was planned first, its peer after it.
    [
      'peer upgrading only after it (a backup-first unit): it waits',
      [mStep, step('b', { dependsOn: ['m'] })],
      pairAgents(),
      ['wait m peer', 'wait b dependencies'],
    ],
  ] as const)('%s', (_name, steps, a, expected) => {
    expect(
      short(
        decide(
          upgrade({ failureLimit: null }),
          steps.map((s) => ({ ...s })),
          a,
          NOW,
        ),
      ),
    ).toEqual(expected);
  });

  it('waiting for its peer past offlineTimeoutS, it misses its turn (not a failure) with the reason', () => {
    const waiting = step('m', { status: 'waiting', waitingFor: 'peer', waitingSince: ago(31) });
    const d = decide(upgrade({ failureLimit: null }), [waiting], pairAgents({}, { online: false }), NOW);
    expect(d.steps).toEqual([
      {
        type: 'miss',
        stepId: 'm',
        reason: expect.stringMatching(
          /m serves its pair and b is offline, so stopping it would leave no member serving for longer than 30s/,
        ),
      },
    ]);
  });

  it('a hand-over before an upgrade of its peer needs no version: the standby takes over on the one it runs', () => {
    const steps = [step('so', { kind: 'switchover', agentId: 'b' }), step('m', { dependsOn: ['so'] })];
    expect(short(decide(upgrade({ failureLimit: null }), steps, pairAgents({}, { version: '1.0.0' }), NOW))).toEqual([
      'start so',
      'wait m dependencies',
    ]);
  });

  it('for every pair state, a serving member starts only with its peer online, healthy and in the upgrade', () => {
    const statuses: StepStatus[] = [
      'pending',
      'waiting',
      'running',
      'succeeded',
      'failed',
      'rolled-back',
      'missed',
      'cancelled',
      'skipped',
    ];
    fc.assert(
      fc.property(
        fc.record({
          online: fc.boolean(),
          failed: fc.boolean(),
          busy: fc.boolean(),
          peerStep: fc.option(fc.constantFrom(...statuses)),
          peerAfter: fc.boolean(),
        }),
        ({ online, failed, busy, peerStep, peerAfter }) => {
          // The peer's step, if any, may be planned after the serving member's (a unit planned before roles changed).
          const steps = [step('m'), ...(peerStep ? [{ ...bStep(peerStep), dependsOn: peerAfter ? ['m'] : [] }] : [])];
          const d = decide(
            upgrade({ failureLimit: null }),
            steps,
            pairAgents({}, { online, lastUpgradeFailed: failed, busy }),
            NOW,
          );
          const startsM = d.steps.some((a) => a.type === 'start' && a.stepId === 'm');
          // The peer stops with it: its step runs or ran, or starts now too (nothing before it).
          const peerWithIt =
            peerStep !== null &&
            (['running', 'succeeded'].includes(peerStep) || (['pending', 'waiting'].includes(peerStep) && !peerAfter));
          expect(startsM).toBe(online && !failed && peerWithIt);
        },
      ),
    );
  });
});

describe('step rules: batches, threshold, pause, finish', () => {
  const three = (statuses: StepStatus[], batches = [0, 1, 2]) =>
    statuses.map((status, i) =>
      step(`s${i}`, { agentId: `s${i}`, unit: i, batch: batches[i], status, attempts: status === 'pending' ? 0 : 1 }),
    );
  const all = agents(agent('s0'), agent('s1'), agent('s2'));

  it.each([
    ['batch 0 starts, later batches wait', ['pending', 'pending', 'pending'], null, ['start s0']],
    ['the next batch starts when the previous ended', ['succeeded', 'pending', 'pending'], null, ['start s1']],
    ['a running batch holds back the next', ['running', 'pending', 'pending'], null, []],
    ['the failure threshold blocks units not started', ['failed', 'pending', 'pending'], 1, ['block s1', 'block s2']],
    ['below the threshold the upgrade goes on', ['failed', 'pending', 'pending'], 2, ['start s1']],
  ] as const)('%s', (_name, statuses, failureLimit, expected) => {
    expect(short(decide(upgrade({ failureLimit }), three([...statuses]), all, NOW))).toEqual(expected);
  });

  it('a paused upgrade starts nothing new, but a running step still times out', () => {
    const steps = three(['running', 'pending', 'pending'], [0, 0, 0]);
    steps[0].phaseStartedAt = ago(500);
    expect(short(decide(upgrade({ status: 'paused', failureLimit: null }), steps, all, NOW))).toEqual(['fail s0']);
  });

  it('pauses after the canary batch', () => {
    expect(
      decide(upgrade({ canaryPending: true }), three(['succeeded', 'pending', 'pending']), all, NOW).upgrade,
    ).toMatchObject({ type: 'pause' });
  });

  it.each([
    ['succeeded', ['succeeded', 'skipped', 'manual'], null],
    ['completed-with-errors', ['succeeded', 'failed', 'succeeded'], null],
    ['failed', ['rolled-back', 'failed', 'failed'], null],
    ['failed', ['succeeded', 'failed', 'cancelled'], 1],
  ] as const)('finishes %s when every step ended as %j', (status, statuses, failureLimit) => {
    expect(decide(upgrade({ failureLimit }), three([...statuses]), all, NOW).upgrade).toMatchObject({
      type: 'finish',
      status,
    });
  });

  it('a cancelled upgrade finishes once its running steps ended', () => {
    expect(
      decide(upgrade({ status: 'cancelled' }), three(['running', 'cancelled', 'cancelled']), all, NOW).upgrade,
    ).toBeNull();
    expect(
      decide(upgrade({ status: 'cancelled' }), three(['succeeded', 'cancelled', 'cancelled']), all, NOW).upgrade,
    ).toMatchObject({ type: 'finish', status: 'cancelled' });
  });

  it('decides nothing for a scheduled or ended upgrade', () => {
    for (const status of ['scheduled', 'succeeded', 'failed'] as const)
      expect(decide(upgrade({ status }), three(['pending', 'pending', 'pending']), all, NOW)).toEqual({
        steps: [],
        upgrade: null,
      });
  });

  it.each([
    [[], 100],
    [
      [
        { status: 'running', percent: 50 },
        { status: 'pending', percent: 0 },
      ],
      25,
    ],
    [
      [
        { status: 'succeeded', percent: 100 },
        { status: 'failed', percent: 30 },
        { status: 'skipped', percent: 0 },
      ],
      100,
    ],
  ] as const)('percent of %j is %d', (steps, percent) => {
    expect(upgradePercent(steps.map((s) => ({ ...s })))).toBe(percent);
  });
});

describe('step rules: an upgrade that finished after the server failed its step', () => {
  const timedOut = step('a', { status: 'failed', attempts: 1, commandId: 'c1' });
  const withdrawn = { id: 'c1', status: 'cancelled', fetchedAt: ago(200) };
  const full = { version: '1.1.0', kind: 'full' as const };

  it.each([
    [
      'the agent reports the version the step installs',
      timedOut,
      withdrawn,
      agent('a', { version: '1.1.0' }),
      full,
      true,
    ],
    [
      'a web-apps step: its web-apps version counts, not the core',
      timedOut,
      withdrawn,
      agent('a', { webappsVersion: '1.1.0' }),
      { version: '1.1.0', kind: 'webapps' as const },
      true,
    ],
    [
      'the core version does not count for a web-apps step',
      timedOut,
      withdrawn,
      agent('a', { version: '1.1.0' }),
      { version: '1.1.0', kind: 'webapps' as const },
      false,
    ],
    ['still on the old version (it rolled back)', timedOut, withdrawn, agent('a'), full, false],
    ['on another version', timedOut, withdrawn, agent('a', { version: '1.2.0' }), full, false],
    ['offline', timedOut, withdrawn, agent('a', { version: '1.1.0', online: false }), full, false],
    [
      'the command was never fetched (withdrawn before the agent had it)',
      timedOut,
      { ...withdrawn, fetchedAt: null },
      agent('a', { version: '1.1.0' }),
      full,
      false,
    ],
    [
      'the agent reported the failure itself (an end was recorded)',
      timedOut,
      { ...withdrawn, status: 'failed' },
      agent('a', { version: '1.1.0' }),
      full,
      false,
    ],
    ["another attempt's command", timedOut, { ...withdrawn, id: 'c0' }, agent('a', { version: '1.1.0' }), full, false],
    [
      'a step that did not fail',
      step('a', { status: 'missed', commandId: 'c1' }),
      withdrawn,
      agent('a', { version: '1.1.0' }),
      full,
      false,
    ],
    [
      'a switchover',
      step('a', { kind: 'switchover', status: 'failed', commandId: 'c1' }),
      withdrawn,
      agent('a', { version: '1.1.0' }),
      full,
      false,
    ],
  ])('%s: %s', (_what, s, command, a, pkg, expected) => {
    expect(finishedLate(s, command, a, pkg)).toBe(expected);
  });

  it('an ended upgrade judged again: no failure left is a success that names the steps that did not run', () => {
    const late = step('b', { status: 'succeeded', unit: 0 });
    const blocked = [
      step('s', { kind: 'switchover', status: 'cancelled', unit: 0 }),
      step('m', { status: 'cancelled', unit: 0 }),
    ];
    expect(judgeEnd([late, ...blocked], 1)).toEqual({
      type: 'finish',
      status: 'succeeded',
      reason: '2 step(s) did not run (each step says why); a retry runs them',
    });
    expect(judgeEnd([late], 1)).toEqual({ type: 'finish', status: 'succeeded', reason: null });
    // Another unit's real failure still counts, with the threshold as the upgrade had it.
    expect(
      judgeEnd([late, step('c', { status: 'failed', unit: 1 }), step('d', { status: 'cancelled', unit: 2 })], 1),
    ).toMatchObject({ status: 'failed', reason: '1 step(s) failed, which reached the failure threshold' });
  });
});

describe('step rules: onFailure rollback', () => {
  const two = [step('a', { status: 'failed' }), step('b', { unit: 1 })];

  it('starts no new unit after the first failure, whatever the failure threshold', () => {
    const d = decide(upgrade({ onFailure: 'rollback', failureLimit: null }), two, agents(agent('a'), agent('b')), NOW);
    expect(short(d)).toEqual(['block b']);
    // Every step ended, one failed: the upgrade rolls back instead of finishing.
    expect(d.upgrade).toEqual({
      type: 'rollback',
      reason: expect.stringMatching(/^options.onFailure is rollback: 1 step\(s\) failed/),
      by: 'failure-policy',
    });
  });

  it.each([
    ['its agent to come online', { waitingFor: 'online' as const }],
    ['its window', { waitingFor: 'window' as const, windowOpensAt: NOW }],
    ['its peer', { waitingFor: 'peer' as const }],
  ])('stops a unit that waits for %s: it has not started, whatever it waits for', (_why, wait) => {
    const waiting = [two[0], step('b', { unit: 1, status: 'waiting', waitingSince: ago(5), ...wait })];
    for (const over of [{ onFailure: 'rollback' as const, failureLimit: null }, { failureLimit: 1 }]) {
      const d = decide(upgrade(over), waiting, agents(agent('a'), agent('b')), NOW);
      expect(short(d)).toEqual(['block b']);
    }
  });

  it('with onFailure stop, the same upgrade finishes as before', () => {
    const d = decide(upgrade({ onFailure: 'stop', failureLimit: null }), two, agents(agent('a'), agent('b')), NOW);
    expect(short(d)).toEqual(['start b']);
    expect(d.upgrade).toBeNull();
  });

  it('a running upgrade with no failure finishes as usual', () => {
    const d = decide(upgrade({ onFailure: 'rollback' }), [step('a', { status: 'succeeded' })], agents(agent('a')), NOW);
    expect(d.upgrade).toMatchObject({ type: 'finish', status: 'succeeded' });
  });
});

describe('step rules: a rollback round', () => {
  const rolling = upgrade({ status: 'rolling-back', stage: 'rollback', failureLimit: 1 });
  const pair = (mainActive: boolean) =>
    agents(
      agent('main', { active: mainActive, version: '1.1.0', peerId: 'backup' }),
      agent('backup', { active: !mainActive, version: '1.0.0', peerId: 'main' }),
    );

  it('never stops the serving member: its rollback waits for its peer, even if the plan put it first', () => {
    const d = decide(rolling, [step('main', { kind: 'rollback', toVersion: '1.0.0' })], pair(true), NOW);
    expect(short(d)).toEqual(['wait main peer']);
  });

  it('rolls back the standby; needs no prerequisites (it goes to a version it ran)', () => {
    const d = decide(rolling, [step('main', { kind: 'rollback', toVersion: '1.0.0' })], pair(false), NOW);
    expect(short(d)).toEqual(['start main']);
  });

  it('a switchover takes over only on the version the agent ran before, whatever its last upgrade', () => {
    const over = step('backup', { kind: 'switchover', toVersion: '1.0.0' });
    const failedBackup = agents(agent('backup', { lastUpgradeFailed: true, active: false }));
    expect(short(decide(rolling, [over], failedBackup, NOW))).toEqual(['start backup']);
    const stillNew = agents(agent('backup', { version: '1.1.0', active: false }));
    expect(short(decide(rolling, [over], stillNew, NOW))).toEqual(['wait backup gate']);
  });

  it.each([
    [['succeeded', 'skipped'], 'rolled-back'],
    [['succeeded', 'failed'], 'rollback-failed'],
    [['succeeded', 'missed'], 'rollback-failed'],
  ] as Array<[StepStatus[], string]>)('ends %j as %s, with no failure threshold to reach', (statuses, status) => {
    const steps = statuses.map((s, i) => step(`s${i}`, { kind: 'rollback', status: s, unit: i }));
    const d = decide(rolling, steps, agents(agent('s0'), agent('s1')), NOW);
    expect(d.upgrade).toMatchObject({ type: 'finish', status });
    if (status === 'rollback-failed')
      expect(d.upgrade).toMatchObject({ reason: expect.stringContaining('the rollback of s1 ended') });
  });
});

describe('step rules: the mixed-version budget', () => {
  const budgeted = (options: Partial<RuleUpgrade['options']>, budget: RuleUpgrade['budget']) =>
    upgrade({ options: { ...upgrade().options, ...options }, budget });

  it.each([
    [
      'mixed for exactly maxMixedMinutes: still within',
      { maxMixedMinutes: 10 },
      { mixedForS: 600, leftBehind: 0 },
      null,
    ],
    ['one second past it: paused', { maxMixedMinutes: 10 }, { mixedForS: 601, leftBehind: 0 }, 'pause'],
    ['not mixed now: nothing counts', { maxMixedMinutes: 10 }, { mixedForS: null, leftBehind: 0 }, null],
    ['as many left behind as allowed: within', { maxMixedAgents: 2 }, { mixedForS: 5, leftBehind: 2 }, null],
    ['one more: rolled back', { maxMixedAgents: 2, onBudget: 'rollback' }, { mixedForS: 5, leftBehind: 3 }, 'rollback'],
    ['no budget: nothing', {}, { mixedForS: 1e9, leftBehind: 1e6 }, null],
  ] as const)('%s', (_why, options, budget, expected) => {
    const d = decide(budgeted(options, budget), [step('a')], agents(agent('a')), NOW);
    if (expected === null) {
      expect(d.upgrade).toBeNull();
      expect(short(d)).toEqual(['start a']);
    } else {
      // Nothing new starts: the upgrade pauses or rolls back, naming the budget.
      expect(short(d)).toEqual([]);
      expect(d.upgrade).toEqual({
        type: expected,
        reason: expect.stringMatching(/mixed-version budget ran out \(max/),
        by: 'budget',
      });
    }
  });

  it('a paused upgrade or a rollback round is not judged again', () => {
    const over = { mixedForS: 1e6, leftBehind: 0 };
    expect(decide(budgeted({ maxMixedMinutes: 1 }, over), [step('a')], agents(agent('a')), NOW).upgrade).toEqual(
      expect.objectContaining({ type: 'pause' }),
    );
    const paused = { ...budgeted({ maxMixedMinutes: 1 }, over), status: 'paused' as const };
    expect(decide(paused, [step('a')], agents(agent('a')), NOW).upgrade).toBeNull();
    const rolling = {
      ...budgeted({ maxMixedMinutes: 1 }, over),
      status: 'rolling-back' as const,
      stage: 'rollback' as const,
    };
    expect(decide(rolling, [step('a', { kind: 'rollback' })], agents(agent('a')), NOW).upgrade).toBeNull();
  });
});
