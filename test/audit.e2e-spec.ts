import { generateKeyPairSync } from 'node:crypto';
import { AuditRetention } from '../src/audit/audit-retention';
import { ManualClock } from '../src/common/clock';
import { packageArchive } from './support/archives';
import { givenCluster, givenNamedAgents, givenPackage } from './support/builders';
import { FakeAgent } from './support/fake-agent';
import { Fleet, obedient, type Outcome } from './support/fleet';
import { describeEachDatabase, TestApp } from './support/test-app';

/**
 * The audit trail (docs/audit.md) through HTTP: who did what, refused calls too, Lockstep's own
 * changes as "system", the actor's name on the events a person caused, createdBy and uploadedBy,
 * the filters and paging of GET /api/v1/audit, and retention. (Every audited route x every role
 * is in test/access-matrix.e2e-spec.ts.)
 */
describeEachDatabase('audit trail', (kind) => {
  let t: TestApp;
  let alice: string;
  let aliceId: string;
  const clock = new ManualClock(new Date('2026-06-01T00:00:00.000Z'));

  beforeAll(async () => {
    t = await TestApp.start(kind, { clock });
    alice = await t.tokenFor('operator', 'ops-alice');
    aliceId = (await t.as(alice).get('/api/v1/session').expect(200)).body.tokenId;
  });
  afterAll(() => t.close());

  const audit = async (query: Record<string, string | number>) =>
    (await t.admin.get('/api/v1/audit').query(query).expect(200)).body as {
      items: Array<Record<string, any>>;
      nextBeforeId: number | null;
    };
  /** The records of one request, by the X-Request-Id its answer carried. */
  const recordsOf = async (res: { headers: Record<string, string> }) =>
    (await audit({ requestId: res.headers['x-request-id'] })).items;

  async function setUp() {
    const cluster = await givenCluster(t);
    const { members, ids } = await givenNamedAgents(t, cluster.id, ['a', 'b']);
    return { cluster, ids, fleet: new Fleet(t, members) };
  }

  it('names who uploaded, created and paused, in the record, on the upgrade and package, and on the events', async () => {
    const { cluster, fleet } = await setUp();
    const packageId = await givenPackage(t, cluster.id, {}, alice);
    const pkg = (await t.admin.get(`/api/v1/packages/${packageId}`).expect(200)).body;
    expect(pkg.uploadedBy).toEqual({ tokenId: aliceId, name: 'ops-alice' });

    const created = await t
      .as(alice)
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId, target: { all: true }, options: { maxParallel: 1 } })
      .expect(201);
    const upgradeId = created.body.id;
    expect(created.body.createdBy).toEqual({ tokenId: aliceId, name: 'ops-alice' });
    expect(await recordsOf(created)).toEqual([
      expect.objectContaining({
        action: 'upgrade.create',
        targetType: 'upgrade',
        targetId: upgradeId,
        clusterId: cluster.id,
        outcome: 'ok',
        status: null,
        code: null,
        actor: { kind: 'user', tokenId: aliceId, name: 'ops-alice', role: 'operator', agentId: null },
        summary: expect.stringMatching(/^created an upgrade of 2 agent\(s\) to 1\.1\.0/),
      }),
    ]);

    await fleet.round();
    const paused = await t.as(alice).post(`/api/v1/upgrades/${upgradeId}/pause`).expect(200);
    expect(paused.body.reason).toBe('paused by ops-alice');
    expect(await recordsOf(paused)).toEqual([
      expect.objectContaining({ action: 'upgrade.pause', targetId: upgradeId, outcome: 'ok' }),
    ]);
    await t.as(alice).post(`/api/v1/upgrades/${upgradeId}/resume`).expect(200);
    await fleet.until(upgradeId, ['succeeded']);

    // The events alice caused carry her name; what the agents reported and the executor did, none.
    const history = (await t.admin.get(`/api/v1/upgrades/${upgradeId}/history`).expect(200)).body.items as Array<{
      type: string;
      actor: string | null;
      data: { status?: string };
    }>;
    const statuses = history.filter((e) => e.type === 'upgrade.status').map((e) => [e.data.status, e.actor]);
    expect(statuses).toEqual(
      expect.arrayContaining([
        ['running', 'ops-alice'],
        ['paused', 'ops-alice'],
        ['succeeded', null],
      ]),
    );
    expect(history.filter((e) => e.type === 'task.progress').every((e) => e.actor === null)).toBe(true);

    // The upgrade's whole story, newest first.
    const story = (await audit({ targetId: upgradeId })).items.map((r) => r.action);
    expect(story).toEqual(['upgrade.resume', 'upgrade.pause', 'upgrade.create']);
  });

  it('records the success of every audited route: each x-audit action of the OpenAPI document, made by a person or the agent pairing', async () => {
    const walker = await t.tokenFor('admin', 'walker');
    const as = () => t.as(walker);
    const secrets: string[] = [walker];
    const temp = await as().post('/api/v1/tokens').send({ name: 'temp', role: 'viewer' }).expect(201);
    secrets.push(temp.body.secret);
    await as().delete(`/api/v1/tokens/${temp.body.id}`).expect(200);
    const cluster = (await as().post('/api/v1/clusters').send({ name: 'walk', product: 'acme-agent' }).expect(201))
      .body;
    await as()
      .patch(`/api/v1/clusters/${cluster.id}`)
      .send({ defaultOptions: { maxParallel: 1 } })
      .expect(200);
    const spare = (await as().post('/api/v1/clusters').send({ name: 'walk-spare', product: 'x' }).expect(201)).body;
    await as().delete(`/api/v1/clusters/${spare.id}`).expect(204);
    const publicKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const key = await as()
      .post(`/api/v1/clusters/${cluster.id}/signing-keys`)
      .send({ name: 'k', publicKey })
      .expect(201);
    await as().delete(`/api/v1/clusters/${cluster.id}/signing-keys/${key.body.id}`).expect(204);

    const members: Array<{ name: string; agent: FakeAgent }> = [];
    const join = async (name: string) => {
      const registered = await as()
        .post(`/api/v1/clusters/${cluster.id}/agents`)
        .send({ name, address: `${name}.walk`, role: 'standalone' })
        .expect(201);
      secrets.push(registered.body.pairingKey);
      const agent = await FakeAgent.pair(t, registered.body.pairingKey);
      secrets.push(agent.token);
      await agent.heartbeat();
      members.push({ name, agent });
      return registered.body.id as string;
    };
    const [a, , c] = [await join('a'), await join('b'), await join('c')];
    await as()
      .patch(`/api/v1/agents/${a}`)
      .send({ labels: { rack: 'r1' } })
      .expect(200);
    await as().put(`/api/v1/agents/${c}/auto-upgrade`).send({ enabled: false }).expect(200);
    // c fails its first upgrade (then retry has something to run again); everything else goes well.
    let cUpgrades = 0;
    const fleet = new Fleet(t, members, (name, command): Outcome =>
      name === 'c' && command.type === 'upgrade' && cUpgrades++ === 0
        ? { status: 'failed', error: 'disk full' }
        : obedient(name, command),
    );
    await as().post(`/api/v1/agents/${a}/migrate`).expect(202);
    await fleet.round();

    const packageId = await givenPackage(t, cluster.id, {}, walker);
    const extra = await as()
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', packageArchive({ version: '1.2.0' }), 'p.tar.gz')
      .expect(201);
    await as().delete(`/api/v1/packages/${extra.body.id}`).expect(204);
    const upgrade = await as()
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId, target: { all: true } })
      .expect(201);
    await as().post(`/api/v1/upgrades/${upgrade.body.id}/pause`).expect(200);
    await as().post(`/api/v1/upgrades/${upgrade.body.id}/resume`).expect(200);
    await fleet.until(upgrade.body.id, ['completed-with-errors', 'failed']);
    await as().post(`/api/v1/upgrades/${upgrade.body.id}/retry`).expect(200);
    await fleet.until(upgrade.body.id, ['succeeded']);

    // A late agent, brought up "now", then that upgrade cancelled, the agent re-keyed and removed.
    const d = await join('d');
    const now = await as().post(`/api/v1/agents/${d}/upgrade-now`).expect(201);
    await as().post(`/api/v1/upgrades/${now.body.id}/cancel`).expect(200);
    const rekeyed = await as().post(`/api/v1/agents/${d}/pairing-key`).expect(201);
    secrets.push(rekeyed.body.pairingKey);
    await as().delete(`/api/v1/agents/${d}`).expect(200);
    await as().post(`/api/v1/upgrades/${upgrade.body.id}/rollback`).expect(200);

    const document = (await t.http().get('/api/docs-json').expect(200)).body as {
      paths: Record<string, Record<string, { 'x-audit'?: { action: string } | false }>>;
    };
    const routeActions = new Set(
      Object.values(document.paths).flatMap((ops) =>
        Object.values(ops).flatMap((op) => (op['x-audit'] ? [op['x-audit'].action] : [])),
      ),
    );
    const walkerId = (await as().get('/api/v1/session').expect(200)).body.tokenId;
    const agentIds = new Set(members.map((m) => m.agent.agentId));
    const mine = (await audit({ limit: 1000 })).items.filter(
      (r) => r.outcome === 'ok' && (r.actor.tokenId === walkerId || agentIds.has(r.actor.agentId)),
    );
    expect(routeActions.size).toBe(23);
    expect([...routeActions].filter((action) => !mine.some((r) => r.action === action))).toEqual([]);
    // The pairings are the agents' own; everything else the walker's.
    expect(mine.filter((r) => r.action === 'agent.pair').every((r) => r.actor.kind === 'agent')).toBe(true);
    expect(mine.filter((r) => r.action !== 'agent.pair').every((r) => r.actor.name === 'walker')).toBe(true);
    const text = JSON.stringify(mine);
    expect(secrets.filter((secret) => text.includes(secret))).toEqual([]);
  });

  it('records a refused call, with its code, and nothing else', async () => {
    const { cluster } = await setUp();
    const packageId = await givenPackage(t, cluster.id, {}, alice);
    const created = await t
      .as(alice)
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId, target: { all: true }, scheduledAt: '2027-01-01T00:00:00.000Z' })
      .expect(201);
    const refused = await t.as(alice).post(`/api/v1/upgrades/${created.body.id}/pause`).expect(409);
    expect(await recordsOf(refused)).toEqual([
      expect.objectContaining({
        action: 'upgrade.pause',
        targetId: created.body.id,
        outcome: 'refused',
        status: 409,
        code: 'UPGRADE_STATE',
        actor: expect.objectContaining({ kind: 'user', tokenId: aliceId }),
        summary: expect.stringMatching(/^UPGRADE_STATE: Upgrade .* is scheduled/),
      }),
    ]);

    // A viewer's try: 403, recorded against the viewer's token.
    const viewer = await t.tokenFor('viewer', 'curious-viewer');
    const forbidden = await t.as(viewer).delete(`/api/v1/packages/${packageId}`).expect(403);
    expect(await recordsOf(forbidden)).toEqual([
      expect.objectContaining({
        action: 'package.delete',
        outcome: 'refused',
        status: 403,
        code: 'ROLE_TOO_LOW',
        actor: expect.objectContaining({ kind: 'user', name: 'curious-viewer', role: 'viewer' }),
      }),
    ]);
    expect((await t.admin.get(`/api/v1/packages/${packageId}`).expect(200)).body.status).toBe('reserved');
  });

  it("records Lockstep's own changes as system: a scheduled upgrade's start", async () => {
    const { cluster } = await setUp();
    const packageId = await givenPackage(t, cluster.id, {}, alice);
    const at = new Date(clock.now().getTime() + 3600_000).toISOString();
    const created = await t
      .as(alice)
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId, target: { all: true }, scheduledAt: at })
      .expect(201);
    clock.advance(2 * 3600_000);
    await new Fleet(t, []).pass();
    const started = (await audit({ targetId: created.body.id, action: 'upgrade.start' })).items;
    expect(started).toEqual([
      expect.objectContaining({
        outcome: 'ok',
        requestId: null,
        actor: { kind: 'system', tokenId: null, name: 'scheduler', role: null, agentId: null },
        summary: expect.stringContaining(`scheduled for ${at}`),
      }),
    ]);
    // Lockstep's start names nobody on its event.
    const history = (await t.admin.get(`/api/v1/upgrades/${created.body.id}/history`).expect(200)).body.items;
    const running = history.filter((e: any) => e.type === 'upgrade.status' && e.data.status === 'running');
    expect(running.at(-1).actor).toBeNull();
  });

  it('filters by actor, action, cluster and time, pages newest first, and is for admins only', async () => {
    const bob = await t.tokenFor('admin', 'admin-bob');
    const one = await t.as(bob).post('/api/v1/clusters').send({ name: 'audit-one', product: 'acme-agent' }).expect(201);
    await t.as(bob).patch(`/api/v1/clusters/${one.body.id}`).send({ defaultPolicy: 'backup-first' }).expect(200);
    await t.as(bob).delete(`/api/v1/clusters/${one.body.id}`).expect(204);

    const byBob = await audit({ actor: 'admin-bob' });
    expect(byBob.items.map((r) => r.action)).toEqual(['cluster.delete', 'cluster.update', 'cluster.create']);
    expect(byBob.items[1].summary).toBe('changed cluster "audit-one": defaultPolicy="backup-first"');
    expect((await audit({ actor: byBob.items[0].actor.tokenId, action: 'cluster' })).items).toHaveLength(3);
    expect((await audit({ clusterId: one.body.id, action: 'cluster.update' })).items).toHaveLength(1);
    const later = new Date(clock.now().getTime() + 1000).toISOString();
    expect((await audit({ actor: 'admin-bob', from: later })).items).toEqual([]);
    expect((await audit({ actor: 'admin-bob', to: later })).items).toHaveLength(3);

    // Paged by nextBeforeId: the same three, one at a time, then no next page.
    const first = await audit({ actor: 'admin-bob', limit: 1 });
    const second = await audit({ actor: 'admin-bob', limit: 1, beforeId: first.nextBeforeId! });
    const third = await audit({ actor: 'admin-bob', limit: 1, beforeId: second.nextBeforeId! });
    expect([first, second, third].flatMap((p) => p.items.map((r) => r.action))).toEqual(
      byBob.items.map((r) => r.action),
    );
    expect(third.nextBeforeId).toBeNull();

    await t.as(alice).get('/api/v1/audit').expect(403);
    const bad = await t.admin.get('/api/v1/audit').query({ from: 'yesterday', outcome: 'maybe' }).expect(400);
    expect(bad.body.details.map((d: { field: string }) => d.field).sort()).toEqual(['from', 'outcome']);
  });

  it('deletes records older than AUDIT_RETENTION_DAYS (365 by default)', async () => {
    const before = (await audit({ limit: 1 })).items[0];
    clock.advance(366 * 86400_000);
    const fresh = await t.as(alice).post('/api/v1/clusters').send({ name: 'audit-late', product: 'x' }).expect(403);
    const deleted = await t.app.get(AuditRetention).clean();
    expect(deleted).toBeGreaterThan(0);
    expect((await audit({ targetId: before.targetId ?? '' })).items.filter((r) => r.id === before.id)).toEqual([]);
    // The refusal just made is kept.
    expect(await recordsOf(fresh)).toHaveLength(1);
  });
});
