import { ManualClock } from '../src/common/clock';
import { givenCluster, givenNamedAgents, givenPackage } from './support/builders';
import { Fleet, obedient, type Behaviour } from './support/fleet';
import { describeEachDatabase, TestApp } from './support/test-app';

/**
 * The mixed-version budget (docs/rollback.md): an upgrade pauses, or rolls back, exactly when the
 * cluster has run two versions for longer than maxMixedMinutes, or when more of its agents than
 * maxMixedAgents were left behind; measured on the injectable clock.
 */
describeEachDatabase('mixed-version budget', (kind) => {
  let t: TestApp;
  let operator: string;
  const clock = new ManualClock(new Date('2026-06-01T00:00:00.000Z'));
  beforeAll(async () => {
    t = await TestApp.start(kind, { clock });
    operator = await t.tokenFor('operator');
  });
  afterAll(() => t.close());

  async function start(names: string[], behaviour: Behaviour, options: Record<string, unknown>) {
    const cluster = await givenCluster(t);
    const { members, ids } = await givenNamedAgents(t, cluster.id, names);
    const packageId = await givenPackage(t, cluster.id, {}, operator);
    const created = await t
      .as(operator)
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId, target: { all: true }, options: { maxParallel: 1, ...options } })
      .expect(201);
    return { ids, id: created.body.id as string, fleet: new Fleet(t, members, behaviour) };
  }
  const upgradeOf = async (id: string) => (await t.admin.get(`/api/v1/upgrades/${id}`)).body;
  // b holds its upgrade: the cluster runs 1.1.0 (a) and 1.0.0 (b, c) meanwhile.
  const bHolds: Behaviour = (name, command) =>
    name === 'b' && command.type === 'upgrade' ? 'later' : obedient(name, command);

  it('maxMixedMinutes: pauses one second past the budget, not at it, saying which budget; a resume gives it anew', async () => {
    const { id, fleet } = await start(['a', 'b', 'c'], bHolds, { maxMixedMinutes: 10 });
    await fleet.round(); // a upgrades: from now the cluster is mixed
    await fleet.round(); // b fetches its command and holds it
    expect(fleet.log).toEqual(['a upgrade', 'b upgrade']);

    clock.advance(10 * 60_000);
    await fleet.pass();
    expect((await upgradeOf(id)).status).toBe('running');

    clock.advance(1000);
    await fleet.pass();
    const paused = await upgradeOf(id);
    expect(paused.status).toBe('paused');
    expect(paused.reason).toMatch(/mixed-version budget ran out \(maxMixedMinutes 10\).*10 min; paused/);
    const stream = await t.admin.get(`/api/v1/upgrades/${id}/history`);
    expect(stream.body.items.at(-1)).toMatchObject({
      type: 'upgrade.status',
      data: { status: 'paused', reason: expect.stringContaining('maxMixedMinutes') },
    });

    // Resumed: the budget counts from the resume; b's upgrade ends, c's runs, and the cluster is one version again.
    await t.as(operator).post(`/api/v1/upgrades/${id}/resume`).expect(200);
    clock.advance(9 * 60_000);
    await fleet.answerLater();
    const done = await fleet.until(id, ['succeeded', 'paused']);
    expect(done.status).toBe('succeeded');
  });

  it('maxMixedAgents with onBudget rollback: the second agent left behind rolls the upgrade back', async () => {
    // b and c fail (they restore themselves): a runs 1.1.0, b and c are left behind on 1.0.0.
    const failing: Behaviour = (name, command) =>
      (name === 'b' || name === 'c') && command.type === 'upgrade'
        ? { status: 'rolled-back', version: '1.0.0', error: 'verify failed' }
        : obedient(name, command);
    const { id, fleet, ids } = await start(['a', 'b', 'c', 'd'], failing, {
      maxMixedAgents: 1,
      onBudget: 'rollback',
      failureThreshold: '100%',
    });
    const done = await fleet.until(id, ['rolled-back', 'rollback-failed', 'succeeded', 'completed-with-errors']);
    expect(done.status).toBe('rolled-back');
    expect(done.reason).toMatch(/maxMixedAgents 1\): 2 agent\(s\) were left behind on another version; rolled back/);
    // d never started: the budget ran out first; a went back to 1.0.0.
    expect(fleet.log.filter((l) => l.endsWith(' upgrade'))).toEqual(['a upgrade', 'b upgrade', 'c upgrade']);
    expect(fleet.log.at(-1)).toBe('a rollback');
    expect((await t.admin.get(`/api/v1/agents/${ids.a}`)).body.version).toBe('1.0.0');
  });

  it('maxMixedMinutes with onBudget rollback: one second past the budget, what runs finishes and every agent goes back', async () => {
    const { id, fleet, ids } = await start(['a', 'b', 'c'], bHolds, { maxMixedMinutes: 5, onBudget: 'rollback' });
    await fleet.round();
    await fleet.round();
    clock.advance(5 * 60_000);
    await fleet.pass();
    expect((await upgradeOf(id)).status).toBe('running');
    clock.advance(1000);
    await fleet.pass();
    const rolling = await upgradeOf(id);
    expect(rolling.status).toBe('rolling-back');
    expect(rolling.reason).toMatch(
      /maxMixedMinutes 5\): the cluster has run more than one version for 5 min; rolled back/,
    );
    // c never starts; b's upgrade, under way, ends first; then a and b go back.
    await fleet.answerLater();
    const done = await fleet.until(id, ['rolled-back', 'rollback-failed']);
    expect(done.status).toBe('rolled-back');
    expect(fleet.log.filter((l) => l.startsWith('c '))).toEqual([]);
    for (const name of ['a', 'b', 'c'])
      expect((await t.admin.get(`/api/v1/agents/${ids[name]}`)).body.version).toBe('1.0.0');
  });

  it('maxMixedAgents with onBudget pause: pauses as the second agent is left behind, and a resume gives the budget anew', async () => {
    const failing: Behaviour = (name, command) =>
      (name === 'b' || name === 'c') && command.type === 'upgrade'
        ? { status: 'failed', error: 'disk full' }
        : obedient(name, command);
    const { id, fleet } = await start(['a', 'b', 'c', 'd'], failing, { maxMixedAgents: 1, failureThreshold: '100%' });
    const paused = await fleet.until(id, ['paused', 'succeeded', 'completed-with-errors']);
    expect(paused.status).toBe('paused');
    expect(paused.reason).toMatch(/maxMixedAgents 1\): 2 agent\(s\) were left behind on another version; paused/);
    expect(fleet.log.filter((l) => l.startsWith('d '))).toEqual([]);
    await t.as(operator).post(`/api/v1/upgrades/${id}/resume`).expect(200);
    const done = await fleet.until(id, ['completed-with-errors', 'paused']);
    expect(done.status).toBe('completed-with-errors');
    expect(fleet.log).toContain('d upgrade');
  });

  it('warns at plan time when the batches expected in windows outlast maxMixedMinutes', async () => {
    const cluster = await givenCluster(t, {
      windows: [
        {
          days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
          start: '13:00',
          durationMinutes: 180,
          timeZone: 'UTC',
        },
      ],
    });
    await givenNamedAgents(t, cluster.id, ['w1', 'w2']);
    const packageId = await givenPackage(t, cluster.id, {}, operator);
    const preview = (options: Record<string, unknown>) =>
      t
        .as(operator)
        .post(`/api/v1/clusters/${cluster.id}/upgrades/preview`)
        .send({ packageId, target: { all: true }, options: { maxParallel: 1, respectWindows: true, ...options } })
        .expect(200);
    // Two batches of one unit, 30 min each (phaseTimeoutS, no history yet), one after the other.
    const short = await preview({ maxMixedMinutes: 10, onBudget: 'rollback' });
    expect(short.body.warnings).toContainEqual(
      expect.objectContaining({
        code: 'BUDGET_SHORTER_THAN_WINDOWS',
        message: expect.stringMatching(/over 60 min, longer than maxMixedMinutes \(10\).*rolls back/),
      }),
    );
    const enough = await preview({ maxMixedMinutes: 120 });
    expect(enough.body.warnings.map((w: { code: string }) => w.code)).not.toContain('BUDGET_SHORTER_THAN_WINDOWS');
  });

  it('one agent left behind within maxMixedAgents goes on; budgets out of range are a 400 naming the option', async () => {
    const failing: Behaviour = (name, command) =>
      name === 'b' && command.type === 'upgrade' ? { status: 'failed', error: 'disk' } : obedient(name, command);
    const { id, fleet } = await start(['a', 'b', 'c'], failing, { maxMixedAgents: 1, failureThreshold: '100%' });
    expect((await fleet.until(id, ['completed-with-errors', 'paused'])).status).toBe('completed-with-errors');

    const cluster = await givenCluster(t);
    const packageId = await givenPackage(t, cluster.id, {}, operator);
    for (const [options, field] of [
      [{ maxMixedMinutes: 0 }, 'maxMixedMinutes'],
      [{ maxMixedAgents: -1 }, 'maxMixedAgents'],
      [{ onBudget: 'ignore' }, 'onBudget'],
    ] as const) {
      const res = await t
        .as(operator)
        .post(`/api/v1/clusters/${cluster.id}/upgrades`)
        .send({ packageId, target: { all: true }, options })
        .expect(400);
      expect(res.body.message).toContain(field);
    }
  });
});
