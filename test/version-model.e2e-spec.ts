import { createHash } from 'node:crypto';
import { AgentLiveness } from '../src/cluster/agent-liveness';
import { ManualClock } from '../src/common/clock';
import { AutoUpgrader } from '../src/upgrades/auto-upgrader';
import { packageArchive } from './support/archives';
import { givenCluster, givenNamedAgents, givenPackage, givenPairedAgent } from './support/builders';
import type { HeartbeatBody } from './support/fake-agent';
import { Behaviour, Command, Fleet, Member, obedient, Outcome } from './support/fleet';
import { ReceivedEvent, StreamClient } from './support/sse-client';
import { describeEachDatabase, TestApp } from './support/test-app';

/**
 * Issue 14, "one version per cluster, for real": one test per defect it lists, each through HTTP
 * with fake agents speaking the real protocol. Bodies stay loosely typed (supertest's `any`) on
 * purpose: the same file must compile against the server before the fix, where it fails by its
 * assertions, not by a type error.
 */

/**
 * Fake agents that report what they upgraded as a real agent does: a webapps package changes only
 * the web-apps version they report; a full one their core version, and from then on they send no
 * separate web-apps version (they leave the field out, so only the server can know that the full
 * package replaced the web apps). Every progress report carries a message.
 */
class VersionFleet extends Fleet {
  override async answer(member: Member, command: Command, outcome: Exclude<Outcome, 'later'>): Promise<void> {
    const phase = command.type === 'upgrade' ? 'install' : 'switchover';
    const progress = await member.agent.progress(command.id, phase, 50, `${phase} halfway`);
    if (progress.status !== 200)
      throw new Error(`progress of ${member.name}: ${progress.status} ${JSON.stringify(progress.body)}`);
    const done = await member.agent.complete(command.id, outcome.status, outcome.version, outcome.error);
    if (done.status !== 200) throw new Error(`complete of ${member.name}: ${done.status} ${JSON.stringify(done.body)}`);
    if (command.type !== 'upgrade' || outcome.status !== 'succeeded' || !outcome.version) return;
    if (command.kind === 'webapps') {
      member.agent.state.webappsVersion = outcome.version;
    } else {
      member.agent.state.version = outcome.version;
      member.agent.state.webappsVersion = undefined;
    }
  }
}

const HOUR_MS = 3600_000;

describeEachDatabase('version model (issue 14)', (kind) => {
  let t: TestApp;
  let operator: string;
  const clock = new ManualClock(new Date('2026-09-01T00:00:00.000Z'));

  beforeAll(async () => {
    t = await TestApp.start(kind, { clock });
    t.stopTimers();
    operator = await t.tokenFor('operator');
  });
  afterAll(() => t.close());

  const asOperator = () => t.as(operator);
  const createUpgrade = (clusterId: string, body: Record<string, unknown>) =>
    asOperator().post(`/api/v1/clusters/${clusterId}/upgrades`).send(body);
  const preview = (clusterId: string, body: Record<string, unknown>) =>
    asOperator().post(`/api/v1/clusters/${clusterId}/upgrades/preview`).send(body);
  const agentOf = async (id: string) => (await t.admin.get(`/api/v1/agents/${id}`).expect(200)).body;
  const clusterOf = async (id: string) => (await t.admin.get(`/api/v1/clusters/${id}`).expect(200)).body;
  const upgradeOf = async (id: string) => (await t.admin.get(`/api/v1/upgrades/${id}`).expect(200)).body;
  const upgradeCount = async (clusterId: string): Promise<number> =>
    (await t.admin.get(`/api/v1/clusters/${clusterId}/upgrades`).expect(200)).body.total;
  const newestUpgrade = async (clusterId: string) =>
    (await t.admin.get(`/api/v1/clusters/${clusterId}/upgrades`).query({ limit: 1 }).expect(200)).body.items[0];
  const history = async (upgradeId: string): Promise<any[]> =>
    (await t.admin.get(`/api/v1/upgrades/${upgradeId}/history`).query({ limit: 1000 }).expect(200)).body.items;
  const stepOf = (upgrade: any, agentId: string, kind = 'upgrade') =>
    upgrade.steps.find((s: any) => s.agentId === agentId && s.kind === kind);
  const payload = (e: ReceivedEvent) => e.data.data as Record<string, any>;

  const uploadPackage = (clusterId: string, fields: Record<string, unknown> = {}) =>
    givenPackage(t, clusterId, fields, operator);

  /** A cluster with the named agents ("g1-main" is the main of pair g1), on 1.0.0 unless `state` says otherwise. */
  async function setUp(
    names: string[],
    state: Record<string, Record<string, unknown>> = {},
    behaviour: Behaviour = obedient,
  ) {
    const cluster = await givenCluster(t);
    const { members, ids } = await givenNamedAgents(
      t,
      cluster.id,
      names,
      state as Record<string, Partial<HeartbeatBody>>,
    );
    return { cluster, members, ids, fleet: new VersionFleet(t, members, behaviour) };
  }

  /** Auto-upgrade sweeps far apart (past any back-off), each after a round in which every agent heartbeats (online, idle). */
  async function sweepsWhileOnline(fleet: Fleet, times = 3): Promise<void> {
    for (let i = 0; i < times; i++) {
      clock.advance(2 * HOUR_MS);
      await fleet.round();
      await t.app.get(AutoUpgrader).sweep();
    }
    await fleet.round(); // what the last sweep started would reach its agent now
  }

  /** Agents a and b on core 1.0.0 take web apps 1.0.5 in an upgrade of all agents. */
  async function webappsOnAll() {
    const setup = await setUp(['a', 'b']);
    const webapps = await uploadPackage(setup.cluster.id, { version: '1.0.5', kind: 'webapps', prerequisites: {} });
    const created = await createUpgrade(setup.cluster.id, { packageId: webapps, target: { all: true } }).expect(201);
    await setup.fleet.until(created.body.id, ['succeeded']);
    await setup.fleet.round(); // heartbeats now report web apps 1.0.5
    return { ...setup, webapps, upgradeId: created.body.id };
  }

  it('1. a webapps package on all agents sets the web-apps target, not the core one; agents are latest and auto-upgrade creates nothing', async () => {
    const { cluster, ids, fleet, webapps } = await webappsOnAll();
    expect(fleet.log).toEqual(['a upgrade', 'b upgrade']);
    expect(await clusterOf(cluster.id)).toMatchObject({
      targetVersion: null,
      webappsTargetVersion: '1.0.5',
      webappsTargetPackageId: webapps,
    });
    for (const name of ['a', 'b']) {
      expect(await agentOf(ids[name])).toMatchObject({
        version: '1.0.0',
        webappsVersion: '1.0.5',
        versionStatus: 'latest',
        upgradeId: null,
      });
    }

    expect(await upgradeCount(cluster.id)).toBe(1);
    await sweepsWhileOnline(fleet, 3);
    expect(await upgradeCount(cluster.id)).toBe(1);
    expect(fleet.log).toEqual(['a upgrade', 'b upgrade']);
    expect(await clusterOf(cluster.id)).toMatchObject({ consistent: true, versionStatuses: { latest: 2 } });
  });

  it('2. a later full package replaces the web apps: no agent keeps a web-apps version, the web-apps target is cleared', async () => {
    const { cluster, ids, fleet } = await webappsOnAll();
    const full = await uploadPackage(cluster.id, { version: '1.1.0', notes: 'full after web apps' });
    const created = await createUpgrade(cluster.id, { packageId: full, target: { all: true } }).expect(201);
    await fleet.until(created.body.id, ['succeeded']);
    await fleet.round(); // heartbeats on the new core version, with no web-apps version in them
    for (const name of ['a', 'b']) {
      expect(await agentOf(ids[name])).toMatchObject({
        version: '1.1.0',
        webappsVersion: null,
        versionStatus: 'latest',
      });
    }
    expect(await clusterOf(cluster.id)).toMatchObject({
      targetVersion: '1.1.0',
      targetPackageId: full,
      webappsTargetVersion: null,
      webappsTargetPackageId: null,
      consistent: true,
    });
  });

  it('3. an agent offline past offlineTimeoutS misses its turn (not failed): the upgrade succeeds and auto-upgrade brings it up once back', async () => {
    const { cluster, members, ids } = await setUp(['a', 'b']);
    const [a, b] = members;
    const packageId = await uploadPackage(cluster.id);
    // b goes silent past HEARTBEAT_TIMEOUT_S (30 s) and is marked offline; a keeps heartbeating.
    clock.advance(31_000);
    await a.agent.heartbeat().expect(200);
    await t.app.get(AgentLiveness).sweep();
    expect(await agentOf(ids.b)).toMatchObject({ state: 'offline' });
    expect(await agentOf(ids.a)).toMatchObject({ state: 'idle' });

    const onlyA = new VersionFleet(t, [a]);
    const created = await createUpgrade(cluster.id, {
      packageId,
      target: { all: true },
      options: { offlineTimeoutS: 5 },
    }).expect(201);
    await onlyA.round();
    expect(stepOf(await upgradeOf(created.body.id), ids.b)).toMatchObject({ status: 'waiting', waitingFor: 'online' });
    clock.advance(6_000);
    const done = await onlyA.until(created.body.id, ['succeeded', 'completed-with-errors', 'failed']);
    expect(onlyA.log).toEqual(['a upgrade']);
    expect(stepOf(done, ids.b)).toMatchObject({ status: 'missed', error: expect.stringMatching(/offline/) });
    expect(stepOf(done, ids.a)).toMatchObject({ status: 'succeeded' });
    expect(done.status).toBe('succeeded');
    expect(await clusterOf(cluster.id)).toMatchObject({ targetVersion: '1.1.0' });
    expect(await agentOf(ids.b)).toMatchObject({ state: 'offline', versionStatus: 'outdated', upgradeId: null });

    // Back online and idle: not a failed agent, so auto-upgrade takes it.
    await b.agent.heartbeat().expect(200);
    expect(await agentOf(ids.b)).toMatchObject({ state: 'idle', versionStatus: 'outdated', autoUpgradeBlocked: null });
    await t.app.get(AutoUpgrader).sweep();
    expect(await upgradeCount(cluster.id)).toBe(2);
    const auto = await upgradeOf((await newestUpgrade(cluster.id)).id);
    expect(auto).toMatchObject({ origin: 'auto-upgrade', packageId });
    expect(auto.steps.filter((s: any) => s.status !== 'skipped').map((s: any) => s.agentId)).toEqual([ids.b]);
    const both = new VersionFleet(t, members);
    await both.until(auto.id, ['succeeded']);
    expect(both.log).toEqual(['b upgrade']);
    expect(await agentOf(ids.b)).toMatchObject({ version: '1.1.0', versionStatus: 'latest', upgradeId: null });
  });

  it('4. progress messages are kept on the step and in task.progress events; a manual migration has a visible outcome', async () => {
    const { cluster, members, ids, fleet } = await setUp(['a'], {}, () => 'later');
    const [a] = members;
    const packageId = await uploadPackage(cluster.id);
    const created = await createUpgrade(cluster.id, { packageId, target: { all: true } }).expect(201);
    const upgradeId = created.body.id;
    await fleet.round();
    const [{ command }] = fleet.commands;
    await a.agent.progress(command.id, 'download', 50, 'downloaded 50%').expect(200);

    expect((await upgradeOf(upgradeId)).steps[0]).toMatchObject({
      status: 'running',
      phase: 'download',
      percent: 50,
      message: 'downloaded 50%',
    });
    const downloading = (await history(upgradeId)).filter(
      (e) => e.type === 'task.progress' && e.data.phase === 'download',
    );
    expect(downloading.map((e) => e.data.message)).toEqual(['downloaded 50%']);

    await a.agent.complete(command.id, 'succeeded', '1.1.0').expect(200);
    await fleet.until(upgradeId, ['succeeded']);
    expect((await upgradeOf(upgradeId)).steps[0]).toMatchObject({ status: 'succeeded', message: 'downloaded 50%' });
    const ends = (await history(upgradeId)).filter((e) => e.type === 'command.status');
    expect(ends.map((e) => e.data)).toEqual([
      expect.objectContaining({ commandId: command.id, type: 'upgrade', status: 'succeeded', version: '1.1.0' }),
    ]);

    // A migration run by hand: listed with its end, and a command.status event on the cluster's stream.
    clock.advance(1000); // newest first needs it created after the upgrade's command
    const stream = new StreamClient(`${t.baseUrl}/api/v1/clusters/${cluster.id}/events`, {
      token: operator,
      lastEventId: 0,
    });
    try {
      await stream.opened;
      const migration = await asOperator().post(`/api/v1/agents/${ids.a}/migrate`).expect(202);
      const commandId = migration.body.commandId;
      const beat = await a.agent.heartbeat().expect(200);
      expect(beat.body.commands.map((c: any) => c.id)).toEqual([commandId]);
      await a.agent.progress(commandId, 'migrate', 40, 'migrating table 2 of 5').expect(200);
      await a.agent.complete(commandId, 'failed', undefined, 'table 3: constraint violated').expect(200);

      const listed = await t.admin.get(`/api/v1/agents/${ids.a}/commands`);
      expect(listed.status).toBe(200);
      expect(listed.body.total).toBe(2);
      expect(listed.body.items[0]).toMatchObject({
        id: commandId,
        type: 'migrate',
        status: 'failed',
        error: 'table 3: constraint violated',
        message: 'migrating table 2 of 5',
        upgradeId: null,
      });
      expect(listed.body.items[0].endedAt).not.toBeNull();
      expect(listed.body.items[1]).toMatchObject({
        id: command.id,
        type: 'upgrade',
        status: 'succeeded',
        resultVersion: '1.1.0',
        upgradeId,
      });

      const events = await stream.waitFor(
        (all) => all.some((e) => e.type === 'command.status' && payload(e).commandId === commandId),
        3000,
      );
      const ended = events.find((e) => e.type === 'command.status' && payload(e).commandId === commandId)!;
      expect(ended.data).toMatchObject({ agentId: ids.a, clusterId: cluster.id });
      expect(payload(ended)).toMatchObject({
        type: 'migrate',
        status: 'failed',
        error: 'table 3: constraint violated',
        upgradeId: null,
      });
    } finally {
      stream.close();
    }
  });

  it('5. a succeeded report without the version, or with another one, fails the step and names what the agent reported', async () => {
    const { cluster, members, ids, fleet } = await setUp(['a', 'b', 'c'], {}, () => 'later');
    const [a, b, c] = members;
    const commandOf = (name: string) => fleet.commands.filter((x) => x.name === name).at(-1)!.command;

    const packageId = await uploadPackage(cluster.id);
    const full = await createUpgrade(cluster.id, { packageId, target: { agentIds: [ids.a, ids.b] } }).expect(201);
    await fleet.round();
    await a.agent.complete(commandOf('a').id, 'succeeded').expect(200); // no version at all
    await b.agent.complete(commandOf('b').id, 'succeeded', '1.0.9').expect(200); // not what it was told to install
    const done = await fleet.until(full.body.id, ['succeeded', 'completed-with-errors', 'failed']);
    expect(stepOf(done, ids.a)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/without the version[^]*1\.1\.0/),
    });
    expect(stepOf(done, ids.b)).toMatchObject({ status: 'failed', error: expect.stringMatching(/1\.0\.9[^]*1\.1\.0/) });
    expect(done.status).toBe('failed');
    for (const name of ['a', 'b']) {
      const agent = await agentOf(ids[name]);
      expect(agent.version).not.toBe('1.1.0');
      expect(agent.versionStatus).toBe('failed');
    }

    // A webapps upgrade's report must carry the web-apps version it installed.
    const webapps = await uploadPackage(cluster.id, { version: '1.0.5', kind: 'webapps', prerequisites: {} });
    const apps = await createUpgrade(cluster.id, { packageId: webapps, target: { agentIds: [ids.c] } }).expect(201);
    await fleet.round();
    expect(commandOf('c')).toMatchObject({ kind: 'webapps', toVersion: '1.0.5' });
    await c.agent.complete(commandOf('c').id, 'succeeded', '1.0.4').expect(200);
    const appsDone = await fleet.until(apps.body.id, ['succeeded', 'completed-with-errors', 'failed']);
    expect(stepOf(appsDone, ids.c)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/web-apps version is 1\.0\.4, not 1\.0\.5/),
    });
    const agentC = await agentOf(ids.c);
    expect(agentC.webappsVersion).not.toBe('1.0.5');
    expect(agentC).toMatchObject({ version: '1.0.0', versionStatus: 'failed' });
  });

  it('6. legacy agent: upgrade-now answers 422 with manual instructions, its auto-upgrade switch is refused, operators download the package', async () => {
    const { cluster, ids, fleet } = await setUp(['a', 'legacy'], {
      legacy: { capabilities: { remoteUpgrade: false } },
    });
    const archive = packageArchive({ notes: 'to install by hand' });
    const uploaded = await asOperator()
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', archive, 'p.tar.gz')
      .expect(201);
    const packageId = uploaded.body.id;
    const created = await createUpgrade(cluster.id, { packageId, target: { all: true } }).expect(201);
    expect(stepOf(created.body, ids.legacy, 'manual')).toMatchObject({ status: 'manual' });
    await fleet.until(created.body.id, ['succeeded']);
    expect(fleet.log).toEqual(['a upgrade']);
    expect(await clusterOf(cluster.id)).toMatchObject({ targetVersion: '1.1.0' });
    expect(await agentOf(ids.legacy)).toMatchObject({
      remoteUpgrade: false,
      version: '1.0.0',
      versionStatus: 'outdated',
    });

    const now = await asOperator().post(`/api/v1/agents/${ids.legacy}/upgrade-now`);
    expect({ status: now.status, code: now.body.code }).toEqual({ status: 422, code: 'LEGACY_AGENT' });
    expect(now.body.message).toContain(`/api/v1/packages/${packageId}/content`);
    expect(now.body.message).toMatch(/by hand/);
    expect(await upgradeCount(cluster.id)).toBe(1);

    const toggle = await t.admin.put(`/api/v1/agents/${ids.legacy}/auto-upgrade`).send({ enabled: false });
    expect({ status: toggle.status, code: toggle.body.code }).toEqual({ status: 409, code: 'LEGACY_AGENT' });
    expect(toggle.body.message).toMatch(/legacy/);

    const download = (token: string) =>
      t
        .as(token)
        .get(`/api/v1/packages/${packageId}/content`)
        .buffer(true)
        .parse((res: any, done: any) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => done(null, Buffer.concat(chunks)));
        });
    const got = await download(operator);
    expect(got.status).toBe(200);
    const sha256 = createHash('sha256')
      .update(got.body as Buffer)
      .digest('hex');
    expect(sha256).toBe((await t.admin.get(`/api/v1/packages/${packageId}`).expect(200)).body.sha256);
    expect(sha256).toBe(createHash('sha256').update(archive).digest('hex'));
    const viewer = await t.tokenFor('viewer', 'legacy-viewer');
    expect((await download(viewer)).status).toBe(403);
  });

  // The header's figure is the dashboard's to draw (it read only upgrade.status events); what this
  // guards is the server's half of it: the figure rides on every task.progress event.
  it('7. task.progress events carry an upgradePercent that moves with progress while the upgrade runs', async () => {
    const { cluster, members, ids, fleet } = await setUp(['a', 'b'], {}, () => 'later');
    const packageId = await uploadPackage(cluster.id);
    const created = await createUpgrade(cluster.id, { packageId, target: { all: true } }).expect(201);
    const upgradeId = created.body.id;
    const stream = new StreamClient(`${t.baseUrl}/api/v1/upgrades/${upgradeId}/events`, {
      token: operator,
      lastEventId: 0,
    });
    try {
      await stream.opened;
      await fleet.round(); // both fetched their commands
      const commandA = fleet.commands.find((x) => x.name === 'a')!.command;
      await members[0].agent.progress(commandA.id, 'install', 60).expect(200);
      const isInstall = (e: ReceivedEvent) =>
        e.type === 'task.progress' && payload(e).agentId === ids.a && payload(e).phase === 'install';
      const events = await stream.waitFor((all) => all.some(isInstall));
      const installing = payload(events.find(isInstall)!);
      const now = await upgradeOf(upgradeId);
      expect(now.status).toBe('running');
      expect(installing.upgradePercent).toBeGreaterThan(0);
      expect(installing.upgradePercent).toBe(now.percent);
      expect(now.percent).toBe(30); // a at 60 %, b at 0 %

      // The ends, reported straight away (no second progress report that would go back to 50 %).
      for (const { member, command } of fleet.later.splice(0))
        await member.agent.complete(command.id, 'succeeded', '1.1.0').expect(200);
      await fleet.until(upgradeId, ['succeeded']);
      const all = await stream.waitFor((list) =>
        list.some((e) => e.type === 'upgrade.status' && payload(e).status === 'succeeded'),
      );
      const percents = all.filter((e) => e.type === 'task.progress').map((e) => payload(e).upgradePercent as number);
      expect(percents).toEqual([...percents].sort((x, y) => x - y));
      expect(percents.at(-1)).toBe(100);
    } finally {
      stream.close();
    }
  });

  it('8. retry after a main failed and took back over: its backup takes over again before the main is upgraded', async () => {
    let retried = false;
    const { cluster, ids, fleet } = await setUp(['g1-main', 'g1-backup'], {}, (name, command) => {
      if (name === 'g1-main' && command.type === 'upgrade')
        return retried ? 'later' : { status: 'rolled-back', error: 'migration failed' };
      return obedient(name, command);
    });
    const packageId = await uploadPackage(cluster.id);
    const created = await createUpgrade(cluster.id, {
      packageId,
      target: { all: true },
      policy: 'backup-first',
    }).expect(201);
    await fleet.until(created.body.id, ['completed-with-errors']);
    await fleet.round(); // the backup is told it is standby again
    expect(fleet.log).toContain('g1-main takes over');
    expect(await agentOf(ids['g1-main'])).toMatchObject({ active: true, version: '1.0.0' });
    expect(await agentOf(ids['g1-backup'])).toMatchObject({ active: false, version: '1.1.0' });

    fleet.rounds.length = 0;
    retried = true;
    const retry = await asOperator().post(`/api/v1/upgrades/${created.body.id}/retry`).expect(200);
    expect(retry.body.status).toBe('running');
    for (let i = 0; i < 8 && fleet.later.length === 0; i++) await fleet.round();
    expect(fleet.later.map((l) => `${l.member.name} ${l.command.type}`)).toEqual(['g1-main upgrade']);
    // When the main's upgrade command reaches it, it no longer serves: its backup took over first.
    expect(await agentOf(ids['g1-main'])).toMatchObject({ active: false });
    expect(await agentOf(ids['g1-backup'])).toMatchObject({ active: true, version: '1.1.0' });
    const log = fleet.log;
    expect(log).toContain('g1-backup takes over');
    expect(log.indexOf('g1-backup takes over')).toBeLessThan(log.indexOf('g1-main upgrade'));

    await fleet.answerLater();
    await fleet.until(created.body.id, ['succeeded']);
    expect(await agentOf(ids['g1-main'])).toMatchObject({ version: '1.1.0', active: false, versionStatus: 'latest' });
  });

  it('9. an agent left behind by the failure threshold is not taken by auto-upgrade until someone acts', async () => {
    const { cluster, ids, fleet } = await setUp(['a', 'b', 'c'], {}, (name, command) =>
      name === 'b' ? { status: 'failed', error: 'disk full' } : obedient(name, command),
    );
    const packageId = await uploadPackage(cluster.id);
    const created = await createUpgrade(cluster.id, {
      packageId,
      target: { all: true },
      options: { failureThreshold: 1, maxParallel: 1 },
    }).expect(201);
    const done = await fleet.until(created.body.id, ['failed', 'completed-with-errors']);
    expect(fleet.log).toEqual(['a upgrade', 'b upgrade']);
    expect([ids.a, ids.b, ids.c].map((id) => stepOf(done, id).status)).toEqual(['succeeded', 'failed', 'cancelled']);
    expect(stepOf(done, ids.c).error).toMatch(/failure threshold/);
    // The target moved (a was upgraded), so c is behind it, online, idle and opted in.
    expect(await clusterOf(cluster.id)).toMatchObject({ targetVersion: '1.1.0' });
    expect(await agentOf(ids.c)).toMatchObject({
      state: 'idle',
      versionStatus: 'outdated',
      autoUpgrade: true,
      upgradeId: null,
    });

    await sweepsWhileOnline(fleet, 3);
    expect(await upgradeCount(cluster.id)).toBe(1);
    expect(fleet.log).toEqual(['a upgrade', 'b upgrade']);
    const c = await agentOf(ids.c);
    expect(c).toMatchObject({ version: '1.0.0', versionStatus: 'outdated' });
    expect(c.autoUpgradeBlocked).toMatch(/failure threshold/);

    const now = await asOperator().post(`/api/v1/agents/${ids.c}/upgrade-now`).expect(201);
    await fleet.until(now.body.id, ['succeeded']);
    expect(await agentOf(ids.c)).toMatchObject({ version: '1.1.0', versionStatus: 'latest', autoUpgradeBlocked: null });
  });

  it("10. upgrade-now on an agent whose failed upgrade was not the cluster's target answers 422 pointing at its retry", async () => {
    const { cluster, ids, fleet } = await setUp(['a', 'b']);
    const packageId = await uploadPackage(cluster.id);
    const first = await createUpgrade(cluster.id, { packageId, target: { all: true } }).expect(201);
    await fleet.until(first.body.id, ['succeeded']);
    expect(await clusterOf(cluster.id)).toMatchObject({ targetVersion: '1.1.0' });

    clock.advance(1000);
    const next = await uploadPackage(cluster.id, { version: '1.2.0', prerequisites: {} });
    fleet.behaviour = (name, command) =>
      name === 'a' ? { status: 'failed', error: 'disk full' } : obedient(name, command);
    const chosen = await createUpgrade(cluster.id, { packageId: next, target: { agentIds: [ids.a] } }).expect(201);
    await fleet.until(chosen.body.id, ['failed']);
    expect(await agentOf(ids.a)).toMatchObject({ version: '1.1.0', versionStatus: 'failed' });
    expect(await upgradeCount(cluster.id)).toBe(2);

    const now = await asOperator().post(`/api/v1/agents/${ids.a}/upgrade-now`);
    expect({ status: now.status, code: now.body.code }).toEqual({ status: 422, code: 'NOTHING_TO_UPGRADE' });
    expect(now.body.message).toContain(`/api/v1/upgrades/${chosen.body.id}/retry`);
    expect(now.body.details).toMatchObject({ upgradeId: chosen.body.id });
    expect(await upgradeCount(cluster.id)).toBe(2);
  });

  it('11. a package older than the agents is refused as a DOWNGRADE unless allowDowngrade (then warned); the major rule still applies', async () => {
    const { cluster } = await setUp(['a', 'b'], { a: { version: '10.3.0' }, b: { version: '10.3.0' } });
    const older = await uploadPackage(cluster.id, { version: '1.0.0', prerequisites: {} });
    const request = { packageId: older, target: { all: true } };

    const previewed = await preview(cluster.id, request).expect(200);
    expect(previewed.body.refusals.map((r: any) => r.code)).toEqual(['DOWNGRADE']);
    const refused = await createUpgrade(cluster.id, request);
    expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 422, code: 'UPGRADE_REFUSED' });
    expect(refused.body.details.refusals.map((r: any) => r.code)).toEqual(['DOWNGRADE']);
    expect(refused.body.message).toMatch(/allowDowngrade/);
    expect(await upgradeCount(cluster.id)).toBe(0);

    const allowed = await createUpgrade(cluster.id, { ...request, options: { allowDowngrade: true } });
    expect(allowed.status).toBe(201);
    expect(allowed.body.warnings.map((w: any) => w.code)).toContain('DOWNGRADE');
    await asOperator().post(`/api/v1/upgrades/${allowed.body.id}/cancel`).expect(200);

    // A pair on 2.x going back to 1.x under backup-first crosses a major version: refused without allowLegacyPolicyOnMajor.
    const pair = await setUp(['g1-main', 'g1-backup'], {
      'g1-main': { version: '2.1.0' },
      'g1-backup': { version: '2.1.0' },
    });
    const back = await uploadPackage(pair.cluster.id, { version: '1.0.0', prerequisites: {} });
    const across = {
      packageId: back,
      target: { all: true },
      policy: 'backup-first',
      options: { allowDowngrade: true },
    };
    const previewedPair = await preview(pair.cluster.id, across);
    expect(previewedPair.status).toBe(200);
    expect(previewedPair.body.refusals.map((r: any) => r.code)).toEqual(['LEGACY_POLICY_ON_MAJOR']);
    const refusedPair = await createUpgrade(pair.cluster.id, across);
    expect({ status: refusedPair.status, code: refusedPair.body.code }).toEqual({
      status: 422,
      code: 'UPGRADE_REFUSED',
    });
    expect(refusedPair.body.details.refusals.map((r: any) => r.code)).toEqual(['LEGACY_POLICY_ON_MAJOR']);
    expect(await upgradeCount(pair.cluster.id)).toBe(0);
  });

  it('12. a step runs only once its agent fetched the command; one never fetched in time (offlineTimeoutS, at least the heartbeat timeout) is missed', async () => {
    const { cluster, members, ids } = await setUp(['a', 's']);
    const [a, s] = members;
    const onlyA = new VersionFleet(t, [a], () => 'later'); // s went silent (not yet marked offline)
    const packageId = await uploadPackage(cluster.id);
    const created = await createUpgrade(cluster.id, {
      packageId,
      target: { all: true },
      options: { offlineTimeoutS: 5 },
    }).expect(201);
    const upgradeId = created.body.id;

    await onlyA.pass(); // both steps start: their commands are queued
    let now = await upgradeOf(upgradeId);
    expect(stepOf(now, ids.a)).toMatchObject({ status: 'waiting', waitingFor: 'pickup', attempts: 1 });
    expect(stepOf(now, ids.s)).toMatchObject({ status: 'waiting', waitingFor: 'pickup', attempts: 1 });

    await onlyA.round(); // a heartbeats and gets its command; s says nothing
    now = await upgradeOf(upgradeId);
    expect(stepOf(now, ids.a)).toMatchObject({ status: 'running', waitingFor: null });
    expect(stepOf(now, ids.s)).toMatchObject({ status: 'waiting', waitingFor: 'pickup' });
    await onlyA.answerLater();

    clock.advance(31_000); // past offlineTimeoutS and the heartbeat timeout (30 s), far within phaseTimeoutS
    const done = await onlyA.until(upgradeId, ['succeeded', 'completed-with-errors', 'failed']);
    expect(stepOf(done, ids.s)).toMatchObject({ status: 'missed', error: expect.stringMatching(/fetch/) });
    expect(done.status).toBe('succeeded');
    expect(await agentOf(ids.s)).toMatchObject({ versionStatus: 'outdated', upgradeId: null });
    // Its command was withdrawn: a late heartbeat gets nothing to run.
    const late = await s.agent.heartbeat().expect(200);
    expect(late.body.commands).toEqual([]);
  });

  it("13. auto-upgrade leaves a serving main alone while its pair's backup failed", async () => {
    const { cluster, ids, fleet } = await setUp(['g1-main', 'g1-backup', 'solo'], {}, (name, command) =>
      name === 'g1-backup' && command.type === 'upgrade'
        ? { status: 'rolled-back', error: 'migration failed' }
        : obedient(name, command),
    );
    const packageId = await uploadPackage(cluster.id);
    const created = await createUpgrade(cluster.id, {
      packageId,
      target: { all: true },
      policy: 'backup-first',
    }).expect(201);
    await fleet.until(created.body.id, ['failed', 'completed-with-errors']);
    expect([...fleet.log].sort()).toEqual(['g1-backup upgrade', 'solo upgrade']);
    // The target moved (solo was upgraded); the main serves, behind it, online, idle and opted in.
    expect(await clusterOf(cluster.id)).toMatchObject({ targetVersion: '1.1.0' });
    expect(await agentOf(ids['g1-main'])).toMatchObject({
      active: true,
      version: '1.0.0',
      state: 'idle',
      versionStatus: 'outdated',
      autoUpgrade: true,
    });
    expect(await agentOf(ids['g1-backup'])).toMatchObject({ active: false, versionStatus: 'failed' });

    await sweepsWhileOnline(fleet, 3);
    expect(await upgradeCount(cluster.id)).toBe(1);
    expect(fleet.log).not.toContain('g1-main upgrade');
    const main = await agentOf(ids['g1-main']);
    expect(main).toMatchObject({ active: true, version: '1.0.0' });
    expect(main.autoUpgradeBlocked).toMatch(/g1-backup/);
    expect(main.autoUpgradeBlocked).toMatch(/peer/);
  });

  it('14. delayedStartS, stopServices and ignoreVersionCheck reach the agent; ignoreVersionCheck plans an agent outside fromVersion, warned', async () => {
    const cluster = await givenCluster(t);
    const a = await givenPairedAgent(t, cluster.id, { name: 'a' });
    const packageId = await uploadPackage(cluster.id); // fromVersion >=1.0.0 <1.1.0
    const old = await givenPairedAgent(t, cluster.id, { name: 'old' }, { version: '0.9.0' });
    const fleet = new VersionFleet(t, [
      { name: 'a', agent: a.agent },
      { name: 'old', agent: old.agent },
    ]);

    const checked = await createUpgrade(cluster.id, { packageId, target: { all: true } }).expect(422);
    expect(checked.body.code).toBe('PREREQUISITES_UNMET');

    const options = { delayedStartS: 7, stopServices: ['snmpd'], ignoreVersionCheck: true };
    const created = await createUpgrade(cluster.id, { packageId, target: { all: true }, options });
    expect(created.status).toBe(201);
    expect(created.body.options).toMatchObject(options);
    expect(created.body.warnings.map((w: any) => w.code)).toContain('VERSION_CHECK_IGNORED');
    expect(stepOf(created.body, old.registered.id)).toMatchObject({ status: 'pending' });
    expect((await upgradeOf(created.body.id)).warnings.map((w: any) => w.code)).toContain('VERSION_CHECK_IGNORED');

    await fleet.until(created.body.id, ['succeeded']);
    expect(fleet.commands.map((c) => c.name).sort()).toEqual(['a', 'old']);
    for (const { command } of fleet.commands) expect(command.options).toMatchObject(options);
    expect(await agentOf(old.registered.id)).toMatchObject({ version: '1.1.0', versionStatus: 'latest' });
  });

  describe('found in review', () => {
    it('retry refuses an upgrade cancelled before it started (its package was given back), and the package stays available', async () => {
      const { cluster } = await setUp(['a']);
      const packageId = await uploadPackage(cluster.id);
      const scheduledAt = new Date(clock.now().getTime() + HOUR_MS).toISOString();
      const created = await createUpgrade(cluster.id, { packageId, target: { all: true }, scheduledAt }).expect(201);
      await asOperator().post(`/api/v1/upgrades/${created.body.id}/cancel`).expect(200);
      const refused = await asOperator().post(`/api/v1/upgrades/${created.body.id}/retry`).expect(409);
      expect(refused.body).toMatchObject({
        code: 'UPGRADE_NEVER_STARTED',
        message: expect.stringMatching(/create a new upgrade with package/),
      });
      expect((await t.admin.get(`/api/v1/packages/${packageId}`).expect(200)).body.status).toBe('available');
    });

    it('auto-upgrade backs off when the pair cannot hand over: one attempt, none within the back-off, one more after it', async () => {
      // The backup upgrades but refuses every takeover: the main serves on, behind the target.
      const refuses: Behaviour = (name, command) =>
        name === 'g1-backup' && command.type === 'switchover' && command.activate
          ? { status: 'failed', error: 'cannot take over' }
          : obedient(name, command);
      const { cluster, ids, fleet } = await setUp(['g1-main', 'g1-backup', 'solo'], {}, refuses);
      const packageId = await uploadPackage(cluster.id);
      const created = await createUpgrade(cluster.id, {
        packageId,
        target: { all: true },
        policy: 'backup-first',
      }).expect(201);
      await fleet.until(created.body.id, ['failed', 'completed-with-errors']);
      expect(await agentOf(ids['g1-main'])).toMatchObject({
        active: true,
        version: '1.0.0',
        versionStatus: 'outdated',
      });

      // Other tests' clusters share the app: count this cluster's upgrades, not what a sweep started.
      const sweep = async () => {
        const before = await upgradeCount(cluster.id);
        await t.app.get(AutoUpgrader).sweep();
        return (await upgradeCount(cluster.id)) - before;
      };
      clock.advance(HOUR_MS);
      await fleet.round();
      expect(await sweep()).toBe(1); // the main: its peer is on the target and healthy, so it hands over first...
      const attempt = await newestUpgrade(cluster.id);
      await fleet.until(attempt.id, ['failed', 'completed-with-errors']); // ...which the backup refuses
      const held = await agentOf(ids['g1-main']);
      expect(held).toMatchObject({
        active: true,
        version: '1.0.0',
        autoUpgradeBlocked: expect.stringMatching(/switchover step .* ended failed/),
      });
      expect(held.autoUpgradeRetryAt).toBe(new Date(clock.now().getTime() + 60_000).toISOString());

      for (let i = 0; i < 5; i++) {
        clock.advance(10_000);
        await fleet.round();
        expect(await sweep()).toBe(0);
      }
      expect(await upgradeCount(cluster.id)).toBe(2);
      clock.advance(15_000); // the minute is over
      await fleet.round();
      expect(await sweep()).toBe(1);
      const again = await newestUpgrade(cluster.id);
      await fleet.until(again.id, ['failed', 'completed-with-errors']);
      expect((await agentOf(ids['g1-main'])).autoUpgradeRetryAt).toBe(
        new Date(clock.now().getTime() + 2 * 60_000).toISOString(),
      ); // doubled
    });

    it('a serving member whose peer failed after both steps started is not handed its command: it is withdrawn and the step waits for its peer', async () => {
      const { cluster, ids, members } = await setUp(['g1-main', 'g1-backup']);
      const [main, backup] = members;
      const backupFails = new VersionFleet(t, [backup], () => ({ status: 'rolled-back', error: 'migration failed' }));
      const packageId = await uploadPackage(cluster.id);
      const created = await createUpgrade(cluster.id, {
        packageId,
        target: { all: true },
        policy: 'simultaneous',
      }).expect(201);
      await backupFails.pass();
      let now = await upgradeOf(created.body.id);
      expect(stepOf(now, ids['g1-main'])).toMatchObject({ status: 'waiting', waitingFor: 'pickup' });
      await backupFails.round(); // the backup fetches its command and rolls back; the main has not heartbeated yet
      expect(await agentOf(ids['g1-backup'])).toMatchObject({ versionStatus: 'failed' });

      const beat = await main.agent.heartbeat().expect(200);
      expect(beat.body.commands).toEqual([]); // withdrawn before the serving main saw it
      now = await upgradeOf(created.body.id);
      expect(stepOf(now, ids['g1-main'])).toMatchObject({ status: 'waiting', waitingFor: 'peer', attempts: 0 });
      const commands = (await t.admin.get(`/api/v1/agents/${ids['g1-main']}/commands`).expect(200)).body.items;
      expect(commands[0]).toMatchObject({
        type: 'upgrade',
        status: 'cancelled',
        fetchedAt: null,
        error: expect.stringMatching(/g1-backup failed its last upgrade, so stopping it would leave no member serving/),
      });
      expect(await agentOf(ids['g1-main'])).toMatchObject({ active: true, version: '1.0.0', state: 'idle' });
    });
  });
});
