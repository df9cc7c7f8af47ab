import { ManualClock } from '../src/common/clock';
import { givenCluster, givenNamedAgents, givenPackage } from './support/builders';
import { Fleet, obedient, type Behaviour, type Member } from './support/fleet';
import { StreamClient } from './support/sse-client';
import { describeEachDatabase, TestApp } from './support/test-app';

/**
 * Coordinated rollback (docs/rollback.md) with fake agents over the real protocol: what each agent
 * is told, in which order, and what the upgrade and the agents end as.
 */
describeEachDatabase('rollback', (kind) => {
  let t: TestApp;
  let operator: string;
  const clock = new ManualClock(new Date('2026-06-01T00:00:00.000Z'));
  beforeAll(async () => {
    t = await TestApp.start(kind, { clock });
    operator = await t.tokenFor('operator');
  });
  afterAll(() => t.close());

  const NAMES = ['g1-main', 'g1-backup', 'g2-main', 'g2-backup', 'solo-1', 'solo-2'];

  async function setUp(behaviour: Behaviour = obedient) {
    const cluster = await givenCluster(t);
    const { members, ids } = await givenNamedAgents(t, cluster.id, NAMES);
    const packageId = await givenPackage(t, cluster.id, {}, operator);
    return { cluster, members, ids, packageId, fleet: new Fleet(t, members, behaviour) };
  }
  const agentsOf = async (ids: Record<string, string>) =>
    Object.fromEntries(
      await Promise.all(
        Object.entries(ids).map(async ([name, id]) => [name, (await t.admin.get(`/api/v1/agents/${id}`)).body]),
      ),
    ) as Record<string, { version: string; active: boolean; state: string; upgradeId: string | null }>;

  /**
   * Replays the commands in the order they were issued and checks that no pair member was told to
   * stop (upgrade or rollback) while it served, nor while its peer had a stop command in the same
   * round: a serving member never stops before its peer is back and has taken over. From round
   * `from` on (a simultaneous upgrade stops both members at once, by design), the mains serving then.
   */
  function checkPairSafety(fleet: Fleet, members: Member[], from = 0): string[] {
    const active = new Map(members.map((m) => [m.name, !m.name.endsWith('-backup')]));
    const peerOf = (name: string) => {
      const [group, role] = name.split('-');
      return role === 'main' ? `${group}-backup` : role === 'backup' ? `${group}-main` : null;
    };
    const problems: string[] = [];
    for (const round of fleet.rounds.slice(from)) {
      const stopping = new Set<string>();
      for (const entry of round) {
        const [name, ...rest] = entry.split(' ');
        const what = rest.join(' ');
        const peer = peerOf(name);
        if ((what === 'upgrade' || what === 'rollback') && peer) {
          if (active.get(name)) problems.push(`${entry} while it served`);
          if (stopping.has(peer)) problems.push(`${entry} in the same round as its peer's stop`);
          stopping.add(name);
        }
        if (what === 'takes over' && peer) {
          active.set(name, true);
          active.set(peer, false);
        }
      }
    }
    return problems;
  }

  it('backup-first-switchback with onFailure rollback: a main fails, every agent goes back, roles as before, across a restart', async () => {
    // g2-main's upgrade fails after it stopped (the agent restored itself: rolled-back).
    const failing: Behaviour = (name, command) =>
      name === 'g2-main' && command.type === 'upgrade'
        ? { status: 'rolled-back', version: '1.0.0', error: 'verify: the product did not start' }
        : obedient(name, command);
    const { cluster, members, ids, packageId, fleet } = await setUp(failing);
    const created = await t
      .as(operator)
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({
        packageId,
        target: { all: true },
        policy: 'backup-first-switchback',
        options: { onFailure: 'rollback' },
      })
      .expect(201);
    const id = created.body.id as string;

    // Until the rollback's first commands are out, then a restart: the rollback carries on.
    for (let i = 0; i < 40 && !fleet.log.some((l) => l.endsWith(' rollback')); i++) await fleet.round();
    const during = (await t.admin.get(`/api/v1/upgrades/${id}`)).body;
    expect(during.status).toBe('rolling-back');
    t = await t.restart();
    fleet.t = t;
    for (const m of members) m.agent.useApp(t);

    const done = await fleet.until(id, ['rolled-back', 'rollback-failed']);
    expect(done.status).toBe('rolled-back');
    expect(done.reason).toMatch(/onFailure is rollback/);

    const agents = await agentsOf(ids);
    for (const name of NAMES) expect({ name, version: agents[name].version }).toEqual({ name, version: '1.0.0' });
    expect(Object.fromEntries(NAMES.map((n) => [n, agents[n].active]))).toEqual({
      'g1-main': true,
      'g1-backup': false,
      'g2-main': true,
      'g2-backup': false,
      'solo-1': true,
      'solo-2': true,
    });
    for (const name of NAMES) expect(agents[name].upgradeId).toBeNull();
    expect(checkPairSafety(fleet, members)).toEqual([]);

    // What the rollback told each agent, in order (per agent; pairs interleave with other units).
    const rollbackRound = done.steps.filter((s: { round: number }) => s.round === 1);
    const byName = Object.fromEntries(Object.entries(ids).map(([n, i]) => [i, n]));
    const g1 = rollbackRound
      .filter((s: { failoverGroup: string | null }) => s.failoverGroup === 'g1')
      .map((s: { kind: string; agentId: string }) => `${s.kind} ${byName[s.agentId]}`);
    expect(g1).toEqual(['rollback g1-backup', 'switchover g1-backup', 'rollback g1-main', 'switchover g1-main']);
    // g2's main rolled itself back and took back over: only its backup goes back.
    expect(
      rollbackRound
        .filter((s: { failoverGroup: string | null }) => s.failoverGroup === 'g2')
        .map((s: { kind: string; agentId: string }) => `${s.kind} ${byName[s.agentId]}`),
    ).toEqual(['rollback g2-backup']);
    // Each rollback restored the backup its upgrade reported.
    const upgradeOf = (agentId: string) =>
      done.steps.find(
        (s: { round: number; kind: string; agentId: string }) =>
          s.round === 0 && s.kind === 'upgrade' && s.agentId === agentId,
      );
    const rollbackCommands = fleet.commands.filter((c) => c.command.type === 'rollback');
    expect(rollbackCommands.length).toBe(5);
    for (const { name, command } of rollbackCommands) {
      expect(command).toMatchObject({ toVersion: '1.0.0', fromVersion: '1.1.0', backup: upgradeOf(ids[name]).backup });
      expect(command.backup).toMatch(/^backup-/);
    }
    const clusterNow = (await t.admin.get(`/api/v1/clusters/${cluster.id}`)).body;
    expect(clusterNow.consistent).toBe(true);
  }, 120_000);

  it('an operator rolls back a finished upgrade: preview first, then the same steps; a second rollback is a 409', async () => {
    const { ids, packageId, cluster, fleet, members } = await setUp();
    const created = await t
      .as(operator)
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId, target: { all: true }, policy: 'simultaneous' })
      .expect(201);
    const id = created.body.id as string;
    await fleet.until(id, ['succeeded']);
    expect((await t.admin.get(`/api/v1/clusters/${cluster.id}`)).body.targetVersion).toBe('1.1.0');

    const viewer = await t.tokenFor('viewer');
    const preview = await t.as(operator).post(`/api/v1/upgrades/${id}/rollback/preview`).expect(200);
    expect(preview.body).toMatchObject({ upgradeId: id, status: 'succeeded', refusals: [], units: 4 });
    // Simultaneous upgraded both members at once; the rollback never does: standby first.
    const kinds = preview.body.steps.map((s: { kind: string }) => s.kind);
    expect(kinds.filter((k: string) => k === 'rollback')).toHaveLength(6);
    expect(kinds.filter((k: string) => k === 'switchover')).toHaveLength(4);
    // A viewer may preview, not roll back.
    await t.as(viewer).post(`/api/v1/upgrades/${id}/rollback/preview`).expect(200);
    await t.as(viewer).post(`/api/v1/upgrades/${id}/rollback`).expect(403);

    const upgradeRounds = fleet.rounds.length;
    // A viewer follows the rollback live, from now on.
    const lastId = (await t.admin.get(`/api/v1/upgrades/${id}/history`)).body.items.at(-1).id as number;
    const stream = new StreamClient(`${t.baseUrl}/api/v1/upgrades/${id}/events`, {
      token: viewer,
      lastEventId: lastId,
    });
    await stream.opened;
    const started = await t.as(operator).post(`/api/v1/upgrades/${id}/rollback`).expect(200);
    expect(started.body.status).toBe('rolling-back');
    expect(
      started.body.steps.filter((s: { round: number }) => s.round === 1).map((s: { kind: string }) => s.kind),
    ).toEqual(expect.arrayContaining(kinds));
    // The cluster aims for the old version again at once: auto-upgrade does not fight the rollback.
    expect((await t.admin.get(`/api/v1/clusters/${cluster.id}`)).body.targetVersion).toBeNull();
    const again = await t.as(operator).post(`/api/v1/upgrades/${id}/rollback`).expect(409);
    expect(again.body).toMatchObject({ code: 'ROLLBACK_RUNNING' });

    const done = await fleet.until(id, ['rolled-back', 'rollback-failed']);
    expect(done.status).toBe('rolled-back');
    try {
      const data = (e: { data: Record<string, unknown> }) => e.data.data as Record<string, unknown>;
      const events = await stream.waitFor((all) =>
        all.some((e) => e.type === 'upgrade.status' && data(e).status === 'rolled-back'),
      );
      const statuses = events.filter((e) => e.type === 'upgrade.status').map((e) => data(e).status);
      expect(statuses[0]).toBe('rolling-back');
      expect(statuses.at(-1)).toBe('rolled-back');
      const rolledBack = events.filter(
        (e) => e.type === 'task.progress' && data(e).kind === 'rollback' && data(e).status === 'succeeded',
      );
      expect(new Set(rolledBack.map((e) => data(e).agentId))).toEqual(new Set(Object.values(ids)));
      expect(events.filter((e) => e.type === 'pair.switchover')).toHaveLength(4);
    } finally {
      stream.close();
    }
    const agents = await agentsOf(ids);
    for (const name of NAMES) expect(agents[name].version).toBe('1.0.0');
    expect(agents['g1-main'].active && agents['g2-main'].active).toBe(true);
    expect(checkPairSafety(fleet, members, upgradeRounds)).toEqual([]);
    const after = await t.as(operator).post(`/api/v1/upgrades/${id}/rollback`).expect(409);
    expect(after.body).toMatchObject({ code: 'ROLLED_BACK' });
  }, 120_000);

  it('refuses, naming the agent, when a changed agent has no backup; nothing changes', async () => {
    // solo-1 reports no backup (its upgrade ran without one).
    const noBackup: Behaviour = (name, command) =>
      name === 'solo-1' && command.type === 'upgrade'
        ? { status: 'succeeded', version: command.toVersion }
        : obedient(name, command);
    const { ids, packageId, cluster, fleet } = await setUp(noBackup);
    const created = await t
      .as(operator)
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId, target: { agentIds: [ids['solo-1'], ids['solo-2']] } })
      .expect(201);
    const id = created.body.id as string;
    await fleet.until(id, ['succeeded']);

    const preview = await t.as(operator).post(`/api/v1/upgrades/${id}/rollback/preview`).expect(200);
    expect(preview.body.refusals).toEqual([expect.objectContaining({ code: 'NO_BACKUP', agentIds: [ids['solo-1']] })]);
    const refused = await t.as(operator).post(`/api/v1/upgrades/${id}/rollback`).expect(422);
    expect(refused.body).toMatchObject({ code: 'ROLLBACK_REFUSED' });
    expect(refused.body.message).toContain('solo-1');
    const still = (await t.admin.get(`/api/v1/upgrades/${id}`)).body;
    expect(still.status).toBe('succeeded');
    expect(still.steps.every((s: { round: number }) => s.round === 0)).toBe(true);
    expect((await agentsOf({ 'solo-2': ids['solo-2'] }))['solo-2'].version).toBe('1.1.0');
  }, 60_000);

  /** Three standalone agents, one at a time: solo-1 done, solo-2 holding its upgrade (the command out), solo-3 not started. */
  async function midway() {
    const holds: Behaviour = (name, command) =>
      name === 'solo-2' && command.type === 'upgrade' ? 'later' : obedient(name, command);
    const cluster = await givenCluster(t);
    const { members, ids } = await givenNamedAgents(t, cluster.id, ['solo-1', 'solo-2', 'solo-3']);
    const packageId = await givenPackage(t, cluster.id, {}, operator);
    const fleet = new Fleet(t, members, holds);
    const created = await t
      .as(operator)
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId, target: { all: true }, options: { maxParallel: 1 } })
      .expect(201);
    const id = created.body.id as string;
    await fleet.round();
    await fleet.round();
    expect(fleet.log).toEqual(['solo-1 upgrade', 'solo-2 upgrade']);
    return { id, ids, fleet };
  }

  it('a running upgrade rolls back once its running step ended: what had not started is cancelled, nothing interrupted', async () => {
    const { id, ids, fleet } = await midway();
    const asked = await t.as(operator).post(`/api/v1/upgrades/${id}/rollback`).expect(200);
    expect(asked.body.status).toBe('rolling-back');
    const byAgent = (steps: Array<{ agentId: string; status: string; round: number }>, name: string) =>
      steps.filter((s) => s.agentId === ids[name]).map((s) => `${s.round}:${s.status}`);
    expect(byAgent(asked.body.steps, 'solo-3')).toEqual(['0:cancelled']);
    expect(byAgent(asked.body.steps, 'solo-2')).toEqual(['0:running']);
    // No rollback step while solo-2 is at its upgrade, however many passes.
    await fleet.round();
    await fleet.round();
    expect((await t.admin.get(`/api/v1/upgrades/${id}`)).body.steps.some((s: { round: number }) => s.round === 1)).toBe(
      false,
    );
    expect((await agentsOf({ 'solo-2': ids['solo-2'] }))['solo-2'].upgradeId).toBe(id);

    await fleet.answerLater();
    const done = await fleet.until(id, ['rolled-back', 'rollback-failed']);
    expect(done.status).toBe('rolled-back');
    expect(fleet.log.filter((l) => l.endsWith(' rollback')).sort()).toEqual(['solo-1 rollback', 'solo-2 rollback']);
    const agents = await agentsOf(ids);
    for (const name of ['solo-1', 'solo-2', 'solo-3']) {
      expect(agents[name].version).toBe('1.0.0');
      expect(agents[name].upgradeId).toBeNull();
    }
    // Rolled back on purpose: auto-upgrade leaves them until someone acts.
    const solo1 = (await t.admin.get(`/api/v1/agents/${ids['solo-1']}`)).body;
    expect(solo1.autoUpgradeBlocked).toMatch(/it was rolled back/);
  });

  it('a rollback cancelled before its round started still waits for the step that runs, and holds its agent until then', async () => {
    const { id, ids, fleet } = await midway();
    await t.as(operator).post(`/api/v1/upgrades/${id}/rollback`).expect(200);
    const cancelled = await t.as(operator).post(`/api/v1/upgrades/${id}/cancel`).expect(200);
    expect(cancelled.body.status).toBe('cancelled');
    await fleet.round();
    await fleet.pass();
    const meanwhile = (await t.admin.get(`/api/v1/upgrades/${id}`)).body;
    expect(meanwhile.finishedAt).toBeNull();
    expect((await agentsOf({ 'solo-2': ids['solo-2'] }))['solo-2'].upgradeId).toBe(id);

    await fleet.answerLater();
    await fleet.pass();
    const ended = (await t.admin.get(`/api/v1/upgrades/${id}`)).body;
    expect(ended).toMatchObject({ status: 'cancelled', finishedAt: expect.any(String) });
    expect((await agentsOf({ 'solo-2': ids['solo-2'] }))['solo-2'].upgradeId).toBeNull();
  });

  it('refuses (422, nothing changed) while an agent it would roll back is in another upgrade', async () => {
    const { ids, packageId, cluster, fleet } = await setUp();
    const first = await t
      .as(operator)
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId, target: { agentIds: [ids['solo-1']] } })
      .expect(201);
    await fleet.until(first.body.id, ['succeeded']);
    const newer = await givenPackage(t, cluster.id, { version: '1.2.0', prerequisites: {} }, operator);
    await t
      .as(operator)
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId: newer, target: { agentIds: [ids['solo-1']] }, scheduledAt: '2027-01-01T00:00:00Z' })
      .expect(201);

    const preview = await t.as(operator).post(`/api/v1/upgrades/${first.body.id}/rollback/preview`).expect(200);
    expect(preview.body.refusals).toEqual([
      expect.objectContaining({ code: 'AGENT_IN_UPGRADE', agentIds: [ids['solo-1']] }),
    ]);
    const refused = await t.as(operator).post(`/api/v1/upgrades/${first.body.id}/rollback`).expect(422);
    expect(refused.body).toMatchObject({ code: 'ROLLBACK_REFUSED' });
    expect((await t.admin.get(`/api/v1/upgrades/${first.body.id}`)).body.status).toBe('succeeded');
  });

  it('a scheduled upgrade is cancelled, not rolled back; an unknown upgrade is a 404', async () => {
    const { ids, packageId, cluster } = await setUp();
    const created = await t
      .as(operator)
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId, target: { agentIds: [ids['solo-1']] }, scheduledAt: '2027-01-01T00:00:00Z' })
      .expect(201);
    const refused = await t.as(operator).post(`/api/v1/upgrades/${created.body.id}/rollback`).expect(409);
    expect(refused.body).toMatchObject({ code: 'UPGRADE_NEVER_STARTED' });
    expect(refused.body.message).toMatch(/cancel it instead/);
    await t.as(operator).post(`/api/v1/upgrades/7f1e7c39-2a39-4a3f-9a5c-3d8c8a1b2c3d/rollback`).expect(404);
    // Rolling back by itself needs backups: refused before anything is stored.
    const noBackup = await t
      .as(operator)
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId, target: { agentIds: [ids['solo-2']] }, options: { onFailure: 'rollback', backup: false } })
      .expect(400);
    expect(noBackup.body.message).toMatch(/options.onFailure rollback needs the backups/);
    const listed = await t.admin.get(`/api/v1/clusters/${cluster.id}/upgrades`).expect(200);
    expect(listed.body.total).toBe(1);
  });
});
