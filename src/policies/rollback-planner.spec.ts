import fc from 'fast-check';
import { planRollback, type RollbackAgent, type RollbackRequest } from './rollback-planner';

const agent = (id: string, fields: Partial<RollbackAgent> = {}): RollbackAgent => ({
  id,
  name: id,
  failoverGroup: null,
  active: true,
  version: '1.1.0',
  webappsVersion: null,
  ...fields,
});

function request(agents: RollbackAgent[], fields: Partial<RollbackRequest> = {}): RollbackRequest {
  return {
    pkg: { version: '1.1.0', kind: 'full' },
    prior: Object.fromEntries(
      agents.map((a) => [
        a.id,
        {
          version: '1.0.0',
          webappsVersion: null,
          active: a.failoverGroup ? a.id.endsWith('main') : true,
          failoverGroup: a.failoverGroup,
        },
      ]),
    ),
    agents,
    backups: Object.fromEntries(agents.map((a) => [a.id, `backup-${a.id}`])),
    batchOf: Object.fromEntries(agents.map((a) => [a.id, 0])),
    changedLater: {},
    ...fields,
  };
}

const describeSteps = (r: RollbackRequest) => planRollback(r).steps.map((s) => `${s.kind} ${s.agentId}`);

describe('planRollback', () => {
  it('rolls back a standalone agent with the backup its upgrade took, to the version it had', () => {
    const plan = planRollback(request([agent('solo')]));
    expect(plan.refusals).toEqual([]);
    expect(plan.steps).toEqual([
      expect.objectContaining({
        kind: 'rollback',
        agentId: 'solo',
        toVersion: '1.0.0',
        backup: 'backup-solo',
        dependsOn: [],
        runWhen: 'succeeded',
        status: 'pending',
      }),
    ]);
  });

  it.each([
    [
      'both upgraded, the main serving: standby first, hand over, main, hand back',
      { main: { active: true }, backup: { active: false } },
      ['rollback p-backup', 'switchover p-backup', 'rollback p-main', 'switchover p-main'],
    ],
    [
      'both upgraded, the backup serving (no switchback): backup stays serving until the main is back, then the main takes back over',
      { main: { active: false }, backup: { active: true } },
      ['rollback p-main', 'switchover p-main', 'rollback p-backup'],
    ],
    [
      'the main rolled itself back and took back over: only the backup',
      { main: { active: true, version: '1.0.0' }, backup: { active: false } },
      ['rollback p-backup'],
    ],
    [
      'the main rolled itself back, the backup still serves on the new version: the main takes over, then the backup',
      { main: { active: false, version: '1.0.0' }, backup: { active: true } },
      ['switchover p-main', 'rollback p-backup'],
    ],
    [
      'nothing changed but the roles: the main takes back over',
      { main: { active: false, version: '1.0.0' }, backup: { active: true, version: '1.0.0' } },
      ['switchover p-main'],
    ],
    [
      'nothing changed at all: no step',
      { main: { version: '1.0.0' }, backup: { active: false, version: '1.0.0' } },
      [],
    ],
  ])('a pair: %s', (_why, state, expected) => {
    const main = agent('p-main', { failoverGroup: 'p', ...state.main });
    const backup = agent('p-backup', { failoverGroup: 'p', ...state.backup });
    expect(describeSteps(request([main, backup]))).toEqual(expected);
  });

  it('chains a pair in one unit, each step after the one before succeeded, and switchovers expect the old version', () => {
    const plan = planRollback(
      request([agent('p-main', { failoverGroup: 'p' }), agent('p-backup', { failoverGroup: 'p', active: false })]),
    );
    expect(new Set(plan.steps.map((s) => s.unit))).toEqual(new Set([0]));
    plan.steps.forEach((s, i) => expect(s.dependsOn).toEqual(i === 0 ? [] : [plan.steps[i - 1].key]));
    expect(plan.steps.filter((s) => s.kind === 'switchover').map((s) => s.toVersion)).toEqual(['1.0.0', '1.0.0']);
  });

  it('keeps the upgrade pace: units in the order of the batches their agents upgraded in', () => {
    const plan = planRollback(request([agent('a'), agent('b'), agent('c')], { batchOf: { a: 4, b: 1, c: 4 } }));
    expect(plan.steps.map((s) => [s.agentId, s.batch])).toEqual([
      ['b', 0],
      ['a', 1],
      ['c', 1],
    ]);
    expect(plan).toMatchObject({ units: 3, batches: 2 });
  });

  it.each([
    ['no backup', { backups: { other: 'backup-other' } }, 'NO_BACKUP'],
    ['a later upgrade changed it', { changedLater: { solo: 'upgrade-2' } }, 'CHANGED_SINCE'],
    [
      'no version before',
      { prior: { solo: { version: null, webappsVersion: null, active: true, failoverGroup: null } } },
      'NO_PRIOR_VERSION',
    ],
  ])('refuses the whole rollback, naming the agent, when %s', (_why, fields, code) => {
    const plan = planRollback(request([agent('solo'), agent('other')], fields as Partial<RollbackRequest>));
    expect(plan.steps).toEqual([]);
    expect(plan.refusals).toEqual([expect.objectContaining({ code, agentIds: ['solo'] })]);
  });

  it('leaves agents already back and removed ones alone, saying so', () => {
    const r = request([agent('back', { version: '1.0.0' }), agent('gone'), agent('solo')]);
    const plan = planRollback({ ...r, agents: r.agents.filter((a) => a.id !== 'gone') });
    expect(plan.steps.map((s) => s.agentId)).toEqual(['solo']);
    expect(plan.notes.map((n) => [n.code, n.agentIds])).toEqual([
      ['AGENT_REMOVED', ['gone']],
      ['ALREADY_BACK', ['back']],
    ]);
  });

  it('web apps: compares and restores the web-apps version, none included', () => {
    const r = request([agent('solo', { version: '1.0.0', webappsVersion: '2.0.0' })], {
      pkg: { version: '2.0.0', kind: 'webapps' },
    });
    expect(planRollback(r).steps).toEqual([expect.objectContaining({ kind: 'rollback', toVersion: null })]);
  });

  /**
   * For every pair state: replaying the plan, no member is stopped while it serves, every changed
   * member is rolled back once, and the roles end as they were before the upgrade.
   */
  it('property: pair-safe, complete and role-restoring for every pair state', () => {
    const member = fc.record({ changed: fc.boolean(), activeNow: fc.boolean(), activeBefore: fc.boolean() });
    fc.assert(
      fc.property(member, member, (m, b) => {
        const agents = [
          agent('p-main', { failoverGroup: 'p', active: m.activeNow, version: m.changed ? '1.1.0' : '1.0.0' }),
          agent('p-backup', { failoverGroup: 'p', active: b.activeNow, version: b.changed ? '1.1.0' : '1.0.0' }),
        ];
        const r = request(agents);
        r.prior['p-main'].active = m.activeBefore;
        r.prior['p-backup'].active = b.activeBefore;
        const plan = planRollback(r);
        if (m.activeNow && b.activeNow) {
          // Both serve: which one may stop is unknown, so nothing is planned and the refusal says why.
          expect(plan.steps).toEqual([]);
          expect(plan.refusals.map((x) => x.code)).toEqual(['PAIR_ROLES_UNCLEAR']);
          return;
        }
        const active = new Map(agents.map((a) => [a.id, a.active]));
        const rolledBack: string[] = [];
        for (const step of plan.steps) {
          if (step.kind === 'rollback') {
            // A member that serves is never the one stopped.
            expect(active.get(step.agentId)).toBe(false);
            rolledBack.push(step.agentId);
          } else {
            active.set(step.agentId, true);
            active.set(step.fromAgentId!, false);
          }
        }
        expect(rolledBack.sort()).toEqual(
          agents
            .filter((a) => a.version === '1.1.0')
            .map((a) => a.id)
            .sort(),
        );
        // The member that served before serves again (when exactly one did).
        if (m.activeBefore !== b.activeBefore) {
          expect(active.get('p-main')).toBe(m.activeBefore);
          expect(active.get('p-backup')).toBe(b.activeBefore);
        }
      }),
    );
  });

  it('refuses while an agent the server gave up on has not reported what it runs', () => {
    const plan = planRollback(
      request([agent('solo', { version: '1.0.0' }), agent('other')], { outcomeUnknown: ['solo'] }),
    );
    expect(plan.steps).toEqual([]);
    expect(plan.refusals).toEqual([expect.objectContaining({ code: 'OUTCOME_UNKNOWN', agentIds: ['solo'] })]);
  });
});
