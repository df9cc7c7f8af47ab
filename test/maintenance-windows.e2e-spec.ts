import { ManualClock } from '../src/common/clock';
import { givenCluster, givenNamedAgents, givenPackage } from './support/builders';
import { Fleet } from './support/fleet';
import { describeEachDatabase, TestApp } from './support/test-app';

/**
 * Maintenance windows (docs/maintenance-windows.md): an upgrade with options.respectWindows starts a
 * unit only inside its agents' windows (an agent's own, else its cluster's), and only when the
 * unit's predicted duration fits before the window closes; its steps wait for `window` meanwhile.
 * Fake agents over HTTP, a manual clock, no timers: every pass is the test's.
 */
describeEachDatabase('maintenance windows', (kind) => {
  let t: TestApp;
  let operator: string;
  // A Monday, 12:00 UTC.
  const clock = new ManualClock(new Date('2026-06-01T12:00:00.000Z'));
  const MIN = 60_000;

  beforeAll(async () => {
    t = await TestApp.start(kind, { clock });
    t.stopTimers();
    operator = await t.tokenFor('operator');
  });
  afterAll(() => t.close());

  /** Mondays 13:00-15:00 UTC. */
  const MONDAY_AFTERNOON = [{ days: ['mon'], start: '13:00', durationMinutes: 120, timeZone: 'UTC' }];

  const upgradeOf = async (id: string) => (await t.admin.get(`/api/v1/upgrades/${id}`).expect(200)).body;
  const waits = (upgrade: { steps: Array<{ waitingFor: string | null; windowOpensAt: string | null }> }) =>
    upgrade.steps.map((s) => [s.waitingFor, s.windowOpensAt]);

  /** A cluster with `windows`, the named agents on 1.0.0, a 1.1.0 package; the upgrade's body, respecting windows. */
  async function setUp(windows: unknown[], names: string[], at: string) {
    clock.set(at);
    const cluster = await givenCluster(t, { windows });
    const { members, ids } = await givenNamedAgents(t, cluster.id, names);
    const packageId = await givenPackage(t, cluster.id, { version: '1.1.0' }, operator);
    const fleet = new Fleet(t, members);
    const start = (options: Record<string, unknown> = {}) =>
      t
        .as(operator)
        .post(`/api/v1/clusters/${cluster.id}/upgrades`)
        .send({ packageId, target: { all: true }, options: { respectWindows: true, ...options } })
        .expect(201)
        .then((res) => res.body.id as string);
    return { cluster, ids, fleet, packageId, start };
  }

  it('nothing starts outside the window; every unit starts once the clock is in it', async () => {
    const { ids, fleet, start } = await setUp(MONDAY_AFTERNOON, ['a', 'b'], '2026-06-01T12:00:00.000Z');
    const id = await start();
    await fleet.round();
    await fleet.round();
    expect(fleet.log).toEqual([]);
    const waiting = await upgradeOf(id);
    expect(waiting.status).toBe('running');
    expect(waits(waiting)).toEqual([
      ['window', '2026-06-01T13:00:00.000Z'],
      ['window', '2026-06-01T13:00:00.000Z'],
    ]);
    // Waiting for a window (maybe days) is not a reason to stop taking work: the agent is not held.
    expect((await t.admin.get(`/api/v1/agents/${ids.a}`).expect(200)).body).toMatchObject({
      upgradeId: id,
      hold: false,
    });

    clock.set('2026-06-01T12:59:59.000Z');
    await fleet.round();
    expect(fleet.log).toEqual([]);

    clock.set('2026-06-01T13:00:00.000Z');
    await fleet.until(id, ['succeeded']);
    expect([...fleet.rounds[0]].sort()).toEqual(['a upgrade', 'b upgrade']);
  });

  it('a unit whose predicted duration does not fit before the window closes waits for the next window', async () => {
    const { cluster, ids, fleet, start } = await setUp(MONDAY_AFTERNOON, ['a'], '2026-06-01T13:00:00.000Z');
    // History: a's first upgrade took 50 minutes (its command queued at 13:00, done at 13:50).
    fleet.behaviour = () => 'later';
    const first = await start({ phaseTimeoutS: 7200 });
    await fleet.round();
    clock.advance(50 * MIN);
    await fleet.answerLater();
    await fleet.pass();
    expect((await upgradeOf(first)).status).toBe('succeeded');

    // The next upgrade is predicted to take 50 minutes too (a's median), not its 10-minute phaseTimeoutS:
    // at 14:15 only 45 minutes are left, so it waits for next Monday.
    clock.set('2026-06-01T14:15:00.000Z');
    fleet.behaviour = (name, command) => ({ status: 'succeeded', version: command.toVersion as string });
    const packageId = await givenPackage(
      t,
      cluster.id,
      { version: '1.2.0', prerequisites: { fromVersion: '>=1.1.0 <1.2.0' } },
      operator,
    );
    const body = { packageId, target: { all: true }, options: { respectWindows: true, phaseTimeoutS: 600 } };
    const preview = await t.as(operator).post(`/api/v1/clusters/${cluster.id}/upgrades/preview`).send(body).expect(200);
    expect(preview.body.refusals).toEqual([]);
    expect(preview.body.batchWindows).toEqual([
      {
        batch: 0,
        predictedMinutes: 50,
        expectedStartAt: '2026-06-08T13:00:00.000Z',
        expectedEndAt: '2026-06-08T13:50:00.000Z',
        window: { opensAt: '2026-06-08T13:00:00.000Z', closesAt: '2026-06-08T15:00:00.000Z' },
      },
    ]);
    const second = (await t.as(operator).post(`/api/v1/clusters/${cluster.id}/upgrades`).send(body).expect(201)).body;
    await fleet.round();
    expect(fleet.log).toEqual(['a upgrade']); // the first upgrade's only
    expect(waits(await upgradeOf(second.id))).toEqual([['window', '2026-06-08T13:00:00.000Z']]);

    // Still in this week's window, still too short; next Monday it starts.
    clock.set('2026-06-01T14:59:00.000Z');
    await fleet.round();
    expect(fleet.log).toEqual(['a upgrade']);
    clock.set('2026-06-08T13:00:00.000Z');
    await fleet.until(second.id, ['succeeded']);
    expect(fleet.log).toEqual(['a upgrade', 'a upgrade']);
    expect((await t.admin.get(`/api/v1/agents/${ids.a}`).expect(200)).body.version).toBe('1.2.0');
  });

  it("an agent's own windows replace the cluster's; an empty list means any time; null takes the cluster's again", async () => {
    const { ids, fleet, start } = await setUp(
      MONDAY_AFTERNOON,
      ['own', 'none', 'inherits'],
      '2026-06-01T12:00:00.000Z',
    );
    const midday = [{ days: ['mon'], start: '11:00', durationMinutes: 180, timeZone: 'UTC' }];
    const own = await t.admin.patch(`/api/v1/agents/${ids.own}`).send({ windows: midday }).expect(200);
    expect(own.body.windows).toEqual(midday);
    await t.admin.patch(`/api/v1/agents/${ids.none}`).send({ windows: [] }).expect(200);
    expect((await t.admin.get(`/api/v1/agents/${ids.inherits}`).expect(200)).body.windows).toBeNull();

    const id = await start();
    await fleet.round();
    expect([...fleet.log].sort()).toEqual(['none upgrade', 'own upgrade']);
    const steps = (await upgradeOf(id)).steps;
    expect(steps.find((s: { agentId: string }) => s.agentId === ids.inherits)).toMatchObject({
      status: 'waiting',
      waitingFor: 'window',
      windowOpensAt: '2026-06-01T13:00:00.000Z',
    });

    const cleared = await t.admin.patch(`/api/v1/agents/${ids.own}`).send({ windows: null }).expect(200);
    expect(cleared.body.windows).toBeNull();
  });

  it('a window across midnight and the autumn change: open after midnight, closing after its real four hours', async () => {
    // Saturdays 23:00 Berlin time for 240 minutes. On 2026-10-25 the clocks go back at 03:00 CEST
    // (01:00Z): the window opens at 23:00 CEST (21:00Z) and closes four hours later, at 01:00Z (02:00 CET).
    const windows = [{ days: ['sat'], start: '23:00', durationMinutes: 240, timeZone: 'Europe/Berlin' }];
    const { fleet, start } = await setUp(windows, ['a'], '2026-10-24T20:00:00.000Z');
    const id = await start({ phaseTimeoutS: 1800 });
    await fleet.round();
    expect(waits(await upgradeOf(id))).toEqual([['window', '2026-10-24T21:00:00.000Z']]);

    // Sunday 02:40 CEST, after midnight and still in Saturday's window, but 20 minutes are left for
    // a unit predicted to take 30: next Saturday, 23:00 CET (22:00Z).
    clock.set('2026-10-25T00:40:00.000Z');
    await fleet.round();
    expect(fleet.log).toEqual([]);
    expect(waits(await upgradeOf(id))).toEqual([['window', '2026-10-31T22:00:00.000Z']]);

    clock.set('2026-10-31T22:00:00.000Z');
    await fleet.until(id, ['succeeded']);
  });

  it('the spring change: a start the clocks skip opens as much later as they jumped', async () => {
    // Sundays 02:30 Berlin time for an hour; 02:30 does not exist on 2026-03-29 (02:00 -> 03:00), so
    // that day the window is open from 03:30 CEST (01:30Z) for an hour.
    const windows = [{ days: ['sun'], start: '02:30', durationMinutes: 60, timeZone: 'Europe/Berlin' }];
    const { fleet, start } = await setUp(windows, ['a'], '2026-03-29T01:00:00.000Z');
    const id = await start({ phaseTimeoutS: 1800 });
    await fleet.round();
    expect(waits(await upgradeOf(id))).toEqual([['window', '2026-03-29T01:30:00.000Z']]);
    clock.set('2026-03-29T01:30:00.000Z');
    await fleet.until(id, ['succeeded']);
  });

  it('a plan no window can hold is refused, and says why', async () => {
    const { cluster, packageId } = await setUp(MONDAY_AFTERNOON, ['a'], '2026-06-01T12:00:00.000Z');
    const body = { packageId, target: { all: true }, options: { respectWindows: true, phaseTimeoutS: 3 * 3600 } };
    const preview = await t.as(operator).post(`/api/v1/clusters/${cluster.id}/upgrades/preview`).send(body).expect(200);
    expect(preview.body.refusals).toEqual([
      expect.objectContaining({ code: 'NO_WINDOW_FITS', message: expect.stringContaining('a (180 min)') }),
    ]);
    expect(preview.body.batchWindows).toEqual([expect.objectContaining({ batch: 0, expectedStartAt: null })]);
    const refused = await t.as(operator).post(`/api/v1/clusters/${cluster.id}/upgrades`).send(body).expect(422);
    expect(refused.body.code).toBe('UPGRADE_REFUSED');
  });

  it('bad windows are refused with a 400 naming the field, and nothing is stored', async () => {
    const good = { days: ['sat'], start: '22:00', durationMinutes: 240, timeZone: 'Europe/Berlin' };
    const created = await t.admin
      .post('/api/v1/clusters')
      .send({ name: `windows-${Date.now()}`, product: 'acme-agent', windows: [{ ...good, timeZone: 'Mars/Olympus' }] })
      .expect(400);
    expect(created.body.details).toEqual([
      { field: 'windows', problems: ['windows[0].timeZone must be an IANA time zone such as Europe/Berlin'] },
    ]);

    const { cluster, ids } = await setUp([good], ['a'], '2026-06-01T12:00:00.000Z');
    const patched = await t.admin
      .patch(`/api/v1/clusters/${cluster.id}`)
      .send({ windows: [good, { ...good, start: '25:00', days: [] }] })
      .expect(400);
    expect(patched.body.message).toContain('windows[1].days must be a list of different days');
    expect(patched.body.message).toContain('windows[1].start must be a time of day "HH:mm"');
    expect((await t.admin.get(`/api/v1/clusters/${cluster.id}`).expect(200)).body.windows).toEqual([good]);

    const agent = await t.admin
      .patch(`/api/v1/agents/${ids.a}`)
      .send({ windows: [{ ...good, durationMinutes: 0, extra: 1 }] })
      .expect(400);
    expect(agent.body.details[0].problems[0]).toBe(
      'windows[0].extra is not a known field; remove it; windows[0].durationMinutes must be a whole number of minutes from 1 to 10080 (a week)',
    );
    expect((await t.admin.get(`/api/v1/agents/${ids.a}`).expect(200)).body.windows).toBeNull();

    // A time zone is stored as the zone database spells it, days in week order.
    const fixed = await t.admin
      .patch(`/api/v1/clusters/${cluster.id}`)
      .send({ windows: [{ ...good, days: ['sun', 'sat'], timeZone: 'europe/berlin' }] })
      .expect(200);
    expect(fixed.body.windows).toEqual([{ ...good, days: ['sat', 'sun'] }]);
    const cleared = await t.admin.patch(`/api/v1/clusters/${cluster.id}`).send({ windows: null }).expect(200);
    expect(cleared.body.windows).toEqual([]);
  });
});
