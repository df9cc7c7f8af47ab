import { AgentCommandsService, CommandIssuer, CommandReport } from '../src/cluster/agent-commands.service';
import { AgentLiveness } from '../src/cluster/agent-liveness';
import { Agent } from '../src/cluster/agent.entity';
import { ManualClock } from '../src/common/clock';
import { ProgressEvent } from '../src/progress/progress-event.entity';
import { givenAgent, givenCluster, givenPairedAgent } from './support/builders';
import { FakeAgent } from './support/fake-agent';
import { describeEachDatabase, TestApp } from './support/test-app';

describeEachDatabase('pairing', (kind) => {
  const clock = new ManualClock(new Date('2026-03-01T08:00:00.000Z'));
  let t: TestApp;
  let clusterId: string;
  beforeAll(async () => {
    t = await TestApp.start(kind, { clock, env: { PAIRING_KEY_TTL_S: '3600' } });
    clusterId = (await givenCluster(t)).id;
  });
  afterAll(() => t.close());

  it('trades a key once for an agent token that works on agent routes', async () => {
    const registered = await givenAgent(t, clusterId);
    const paired = await t
      .http()
      .post('/api/v1/agent/pair')
      .send({ pairingKey: registered.pairingKey, version: '2.0.0', facts: { os: 'linux' } })
      .expect(201);
    expect(paired.body).toMatchObject({
      agentId: registered.id,
      clusterId,
      token: expect.stringMatching(/^lsa_/),
      pollAfterMs: 10000,
    });
    const agent = await t.admin.get(`/api/v1/agents/${registered.id}`).expect(200);
    expect(agent.body).toMatchObject({
      state: 'idle',
      version: '2.0.0',
      facts: { os: 'linux' },
      pairedAt: '2026-03-01T08:00:00.000Z',
    });

    const again = await t.http().post('/api/v1/agent/pair').send({ pairingKey: registered.pairingKey }).expect(401);
    expect(again.body).toMatchObject({ code: 'PAIRING_KEY_USED', message: expect.stringMatching(/already used/) });
  });

  it('refuses an unknown key and an expired one, saying which', async () => {
    const unknown = await t
      .http()
      .post('/api/v1/agent/pair')
      .send({ pairingKey: 'lsp_nothing-like-this-exists' })
      .expect(401);
    expect(unknown.body.code).toBe('PAIRING_KEY_UNKNOWN');
    const registered = await givenAgent(t, clusterId);
    clock.advance(3600 * 1000);
    const expired = await t.http().post('/api/v1/agent/pair').send({ pairingKey: registered.pairingKey }).expect(401);
    expect(expired.body).toMatchObject({ code: 'PAIRING_KEY_EXPIRED', message: expect.stringMatching(/expired/) });
  });

  it('lets exactly one of two agents racing with one key pair', async () => {
    const registered = await givenAgent(t, clusterId);
    const answers = await Promise.all(
      [1, 2, 3].map(() => t.http().post('/api/v1/agent/pair').send({ pairingKey: registered.pairingKey })),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([201, 401, 401]);
  });

  it('re-pairs a reinstalled agent with a new key and revokes the old token', async () => {
    const { registered, agent } = await givenPairedAgent(t, clusterId);
    const operator = await t.tokenFor('operator');
    const key = await t.as(operator).post(`/api/v1/agents/${registered.id}/pairing-key`).expect(201);
    expect(key.body.pairingKey).toMatch(/^lsp_/);
    const old = await agent.heartbeat().expect(401);
    expect(old.body.code).toBe('TOKEN_REVOKED');
    expect((await t.admin.get(`/api/v1/agents/${registered.id}`)).body.state).toBe('unknown');
    const reinstalled = await FakeAgent.pair(t, key.body.pairingKey, { version: '1.0.0' });
    await reinstalled.heartbeat().expect(200);
    expect((await t.admin.get(`/api/v1/agents/${registered.id}`)).body.state).toBe('idle');
  });
});

describeEachDatabase('heartbeats', (kind) => {
  const clock = new ManualClock(new Date('2026-03-01T08:00:00.000Z'));
  let t: TestApp;
  let clusterId: string;
  beforeAll(async () => {
    t = await TestApp.start(kind, { clock, env: { HEARTBEAT_TIMEOUT_S: '30' } });
    clusterId = (await givenCluster(t)).id;
  });
  afterAll(() => t.close());

  const getAgent = async (id: string) => (await t.admin.get(`/api/v1/agents/${id}`).expect(200)).body;

  it('answers with commands, hold and the next poll time', async () => {
    const { agent } = await givenPairedAgent(t, clusterId);
    const res = await agent.heartbeat().expect(200);
    expect(res.body).toEqual({ commands: [], hold: false, pollAfterMs: 10000 });
  });

  it('records version, busy and capabilities, and derives state and version status', async () => {
    const { registered: a, agent } = await givenPairedAgent(t, clusterId, {}, { version: '3.0.0' });
    const { registered: b, agent: other } = await givenPairedAgent(t, clusterId, {}, { version: '3.0.0' });
    await agent.heartbeat({ busy: true }).expect(200);
    expect(await getAgent(a.id)).toMatchObject({ state: 'busy', busy: true, versionStatus: 'latest' });
    await other.heartbeat({ version: '3.1.0', webappsVersion: '3.1.0' }).expect(200);
    expect(await getAgent(b.id)).toMatchObject({ version: '3.1.0', webappsVersion: '3.1.0', versionStatus: 'latest' });
    expect(await getAgent(a.id)).toMatchObject({ versionStatus: 'outdated' }); // measured against the highest version now
    await agent.heartbeat({ busy: false, capabilities: { remoteUpgrade: false } }).expect(200);
    expect(await getAgent(a.id)).toMatchObject({ state: 'idle', remoteUpgrade: false });

    const events = await t.db.reader.find(ProgressEvent, {
      where: { agentId: a.id, type: 'agent.status' },
      order: { id: 'ASC' },
    });
    expect(events.map((e) => [e.data.state, e.data.versionStatus])).toEqual([
      ['unknown', 'unknown'], // registered
      ['idle', 'latest'], // paired
      ['busy', 'latest'],
      ['busy', 'outdated'], // another agent moved ahead
      ['idle', 'outdated'],
    ]);
    expect(events.map((e) => e.id)).toEqual([...events.map((e) => e.id)].sort((x, y) => x - y));
  });

  it('keeps the latest facts and last-seen time of heartbeats that change nothing else', async () => {
    const { registered, agent } = await givenPairedAgent(t, clusterId);
    const before = await t.db.reader.count(ProgressEvent);
    clock.advance(5000);
    await agent.heartbeat({ facts: { os: 'linux', freeDiskMb: 1234, components: { snmp: '1.4' } } }).expect(200);
    await t.app.get(AgentLiveness).flush();
    expect(await getAgent(registered.id)).toMatchObject({
      facts: { os: 'linux', freeDiskMb: 1234, components: { snmp: '1.4' } },
      lastSeenAt: clock.now().toISOString(),
    });
    expect(await t.db.reader.count(ProgressEvent)).toBe(before); // liveness alone is no event
  });

  it('writes the last-seen time of every agent whose heartbeat changed nothing, in one flush', async () => {
    const agents = await Promise.all([0, 1, 2, 3, 4].map(() => givenPairedAgent(t, clusterId)));
    await t.app.get(AgentLiveness).flush();
    clock.advance(7000);
    for (const { agent } of agents) await agent.heartbeat().expect(200);
    await t.app.get(AgentLiveness).flush();
    for (const { registered } of agents)
      expect(await getAgent(registered.id)).toMatchObject({ lastSeenAt: clock.now().toISOString() });
  });

  it('marks a silent agent offline after the timeout, and online again when it returns', async () => {
    const { registered, agent } = await givenPairedAgent(t, clusterId);
    const liveness = t.app.get(AgentLiveness);
    clock.advance(29_000);
    await liveness.sweep();
    expect((await getAgent(registered.id)).state).toBe('idle');
    clock.advance(2_000);
    expect(await liveness.sweep()).toBeGreaterThanOrEqual(1);
    expect((await getAgent(registered.id)).state).toBe('offline');
    await agent.heartbeat().expect(200);
    expect((await getAgent(registered.id)).state).toBe('idle');
  });

  it('refuses bad versions and facts of the wrong shape or size, naming them', async () => {
    const { agent } = await givenPairedAgent(t, clusterId);
    const badVersion = await agent.heartbeat({ version: 'ten' }).expect(400);
    expect(badVersion.body.details).toEqual([
      { field: 'version', problems: ['version must be a semantic version such as 10.3.0'] },
    ]);
    agent.state.version = '1.0.0';
    const unknownFact = await agent.heartbeat({ facts: { os: 'linux', favouriteColour: 'red' } }).expect(400);
    expect(unknownFact.body.details).toEqual([
      { field: 'facts.favouriteColour', problems: ['facts.favouriteColour is not a known field; remove it'] },
    ]);
    const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`c${i}`, '1.0']));
    const tooMany = await agent.heartbeat({ facts: { components: many } }).expect(400);
    expect(tooMany.body.details[0].field).toBe('facts.components');
    const missingBusy = await t.as(agent.token).post('/api/v1/agent/heartbeat').send({ version: '1.0.0' }).expect(400);
    expect(missingBusy.body.details).toEqual([{ field: 'busy', problems: ['busy must be true or false'] }]);
  });

  it('removes a busy agent only once it reports idle', async () => {
    const { registered, agent } = await givenPairedAgent(t, clusterId, {}, { busy: true });
    const operator = await t.tokenFor('operator');
    const asked = await t.as(operator).delete(`/api/v1/agents/${registered.id}`).expect(202);
    expect(asked.body).toMatchObject({ removed: false, agent: { state: 'terminating' } });
    await agent.heartbeat({ busy: true }).expect(200);
    expect((await getAgent(registered.id)).state).toBe('terminating');
    const last = await agent.heartbeat({ busy: false }).expect(200);
    expect(last.body).toMatchObject({ removed: true, commands: [] });
    await t.admin.get(`/api/v1/agents/${registered.id}`).expect(404);
    await agent.heartbeat().expect(401);
  });

  it('removes an idle agent at once and its token stops working', async () => {
    const { registered, agent } = await givenPairedAgent(t, clusterId);
    const res = await t.admin.delete(`/api/v1/agents/${registered.id}`).expect(200);
    expect(res.body.removed).toBe(true);
    expect(await t.db.reader.existsBy(Agent, { id: registered.id })).toBe(false);
    await agent.heartbeat().expect(401);
  });
});

describeEachDatabase('the command channel', (kind) => {
  let t: TestApp;
  let clusterId: string;
  let commands: AgentCommandsService;
  const reports: Array<{ commandId: string; report: CommandReport }> = [];
  beforeAll(async () => {
    t = await TestApp.start(kind);
    clusterId = (await givenCluster(t)).id;
    commands = t.app.get(AgentCommandsService);
    // What the issuer (the upgrade executor, bound by UpgradesModule) hears, in the report's transaction.
    const issuer = t.app.get(CommandIssuer);
    const onReport = issuer.onReport.bind(issuer);
    jest.spyOn(issuer, 'onReport').mockImplementation(async (tx, command, report) => {
      reports.push({ commandId: command.id, report });
      return onReport(tx, command, report);
    });
  });
  afterAll(() => t.close());

  const enqueue = (agentId: string) =>
    t.db.transaction((tx) =>
      commands.enqueue(tx, {
        agentId,
        clusterId,
        type: 'switchover',
        payload: { activate: true, failoverGroup: null, peerAgentId: null },
        reference: 'test',
      }),
    );

  it('carries a pending command on every heartbeat until the agent reports on it', async () => {
    const { registered, agent } = await givenPairedAgent(t, clusterId);
    const command = await enqueue(registered.id);
    for (let i = 0; i < 2; i++) {
      const hb = await agent.heartbeat().expect(200);
      expect(hb.body).toMatchObject({
        commands: [{ id: command.id, type: 'switchover', activate: true }],
        pollAfterMs: 1000,
      });
    }
    const first = await agent.progress(command.id, 'switchover', 50, 'promoting').expect(200);
    expect(first.body).toEqual({
      id: command.id,
      type: 'switchover',
      status: 'running',
      phase: 'switchover',
      percent: 50,
    });
    await agent.progress(command.id, 'switchover', 50, 'promoting').expect(200); // the same report again
    expect(reports.filter((r) => r.commandId === command.id).map((r) => r.report.kind)).toEqual([
      'fetched',
      'progress',
    ]);
    expect((await agent.heartbeat().expect(200)).body.commands).toEqual([]);

    const done = await agent.complete(command.id, 'succeeded').expect(200);
    expect(done.body.status).toBe('succeeded');
    await agent.complete(command.id, 'succeeded').expect(200); // idempotent
    expect(reports.filter((r) => r.commandId === command.id).map((r) => r.report.kind)).toEqual([
      'fetched',
      'progress',
      'complete',
    ]);

    const changed = await agent.complete(command.id, 'failed').expect(409);
    expect(changed.body).toMatchObject({
      code: 'COMMAND_ENDED',
      message: expect.stringMatching(/already ended \(succeeded\)/),
    });
    await agent.progress(command.id, 'switchover', 100).expect(409);
  });

  it('records the version an agent reports at the end of a command', async () => {
    const { registered, agent } = await givenPairedAgent(t, clusterId, {}, { version: '1.0.0' });
    const command = await enqueue(registered.id);
    await agent.complete(command.id, 'succeeded', '1.1.0').expect(200);
    expect((await t.admin.get(`/api/v1/agents/${registered.id}`)).body.version).toBe('1.1.0');
  });

  it("refuses a report on another agent's command, and on an unknown one", async () => {
    const { registered } = await givenPairedAgent(t, clusterId);
    const { agent: intruder } = await givenPairedAgent(t, clusterId);
    const command = await enqueue(registered.id);
    const res = await intruder.progress(command.id, 'install', 10).expect(403);
    expect(res.body.code).toBe('NOT_YOUR_COMMAND');
    await intruder.complete(command.id, 'succeeded').expect(403);
    await intruder.progress('00000000-0000-4000-8000-000000000000', 'install', 10).expect(404);
  });
});

describeEachDatabase('access to cluster and agent routes', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await TestApp.start(kind);
  });
  afterAll(() => t.close());

  it('refuses each class of caller where it does not belong, saying why', async () => {
    const c = await givenCluster(t);
    const { registered, agent } = await givenPairedAgent(t, c.id);
    const viewer = await t.tokenFor('viewer');
    const operator = await t.tokenFor('operator');

    const none = await t.http().get(`/api/v1/clusters/${c.id}`).expect(401);
    expect(none.body.code).toBe('TOKEN_MISSING');
    await t.as(viewer).get(`/api/v1/clusters/${c.id}/agents`).expect(200);
    expect(
      (
        await t
          .as(viewer)
          .post(`/api/v1/clusters/${c.id}/agents`)
          .send({ name: 'v', address: 'v.lan', role: 'standalone' })
          .expect(403)
      ).body.message,
    ).toMatch(/operator role/);
    expect((await t.as(operator).delete(`/api/v1/clusters/${c.id}`).expect(403)).body.message).toMatch(/admin role/);
    const agentOnUserRoute = await t.as(agent.token).get(`/api/v1/agents/${registered.id}`).expect(403);
    expect(agentOnUserRoute.body).toMatchObject({
      code: 'AGENT_TOKEN_NOT_ALLOWED',
      message: expect.stringMatching(/only \/api\/v1\/agent/),
    });
    const userOnAgentRoute = await t
      .as(operator)
      .post('/api/v1/agent/heartbeat')
      .send({ version: '1.0.0', busy: false })
      .expect(403);
    expect(userOnAgentRoute.body.code).toBe('AGENT_ONLY');
    await t.http().post('/api/v1/agent/heartbeat').send({ version: '1.0.0', busy: false }).expect(401);
  });
});
