import { Agent } from '../src/cluster/agent.entity';
import { givenAgent, givenCluster, givenPairedAgent } from './support/builders';
import { describeEachDatabase, TestApp } from './support/test-app';

describeEachDatabase('clusters', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await TestApp.start(kind);
  });
  afterAll(() => t.close());

  it('creates a cluster with the documented defaults, and only for admins', async () => {
    const res = await t.admin.post('/api/v1/clusters').send({ name: 'prod-eu', product: 'acme-agent' }).expect(201);
    expect(res.body).toMatchObject({
      name: 'prod-eu',
      product: 'acme-agent',
      targetVersion: null,
      defaultPolicy: 'simultaneous',
      versions: {},
      consistent: true,
      agentCount: 0,
      defaultOptions: { maxParallel: 0, waitForIdle: true, backup: true, migrate: true, agentOptions: {} },
    });
    const operator = await t.tokenFor('operator');
    const refused = await t
      .as(operator)
      .post('/api/v1/clusters')
      .send({ name: 'x', product: 'acme-agent' })
      .expect(403);
    expect(refused.body.message).toMatch(/admin role/);
  });

  it('refuses a second cluster with the same name', async () => {
    const c = await givenCluster(t);
    const res = await t.admin.post('/api/v1/clusters').send({ name: c.name, product: 'acme-agent' }).expect(409);
    expect(res.body).toMatchObject({ code: 'CLUSTER_NAME_TAKEN', message: expect.stringContaining(c.name) });
  });

  it('names bad fields, nested ones included', async () => {
    const res = await t.admin
      .post('/api/v1/clusters')
      .send({
        name: 'x',
        product: 'acme agent!',
        defaultPolicy: 'yolo',
        defaultOptions: { maxParallel: '150%', colour: 'red' },
      })
      .expect(400);
    expect(res.body.details.map((d: { field: string }) => d.field).sort()).toEqual([
      'defaultOptions.colour',
      'defaultOptions.maxParallel',
      'defaultPolicy',
      'product',
    ]);
  });

  it('lets admins change the default policy and merge default options', async () => {
    const c = await givenCluster(t, { defaultOptions: { maxParallel: '25%' } });
    const res = await t.admin
      .patch(`/api/v1/clusters/${c.id}`)
      .send({ defaultPolicy: 'backup-first', defaultOptions: { canary: 1 } })
      .expect(200);
    expect(res.body).toMatchObject({
      defaultPolicy: 'backup-first',
      defaultOptions: { maxParallel: '25%', canary: 1, waitForIdle: true },
    });
    const operator = await t.tokenFor('operator');
    await t.as(operator).patch(`/api/v1/clusters/${c.id}`).send({ defaultPolicy: 'simultaneous' }).expect(403);
  });

  it('summarises versions and consistency across its agents', async () => {
    const c = await givenCluster(t);
    await givenPairedAgent(t, c.id, {}, { version: '1.0.0' });
    await givenPairedAgent(t, c.id, {}, { version: '1.0.0' });
    const got = await t.admin.get(`/api/v1/clusters/${c.id}`).expect(200);
    expect(got.body).toMatchObject({
      versions: { '1.0.0': 2 },
      consistent: true,
      agentCount: 2,
      states: { idle: 2 },
      versionStatuses: { latest: 2 },
    });
    await givenPairedAgent(t, c.id, {}, { version: '1.1.0' });
    await givenAgent(t, c.id); // registered, never paired: version unknown
    const mixed = await t.admin.get(`/api/v1/clusters/${c.id}`).expect(200);
    expect(mixed.body).toMatchObject({
      versions: { '1.0.0': 2, '1.1.0': 1 },
      consistent: false,
      agentCount: 4,
      states: { idle: 3, unknown: 1 },
      versionStatuses: { outdated: 2, latest: 1, unknown: 1 },
    });
    const viewer = await t.tokenFor('viewer');
    const listed = await t.as(viewer).get('/api/v1/clusters').expect(200);
    expect(listed.body.find((x: { id: string }) => x.id === c.id).versions).toEqual({ '1.0.0': 2, '1.1.0': 1 });
  });

  it('deletes a cluster only once it is empty, saying what is left', async () => {
    const c = await givenCluster(t);
    const a = await givenAgent(t, c.id);
    const refused = await t.admin.delete(`/api/v1/clusters/${c.id}`).expect(409);
    expect(refused.body).toMatchObject({ code: 'CLUSTER_NOT_EMPTY', message: expect.stringContaining('1 agent') });
    await t.admin.delete(`/api/v1/agents/${a.id}`).expect(200);
    await t.admin.delete(`/api/v1/clusters/${c.id}`).expect(204);
    await t.admin.get(`/api/v1/clusters/${c.id}`).expect(404);
  });
});

describeEachDatabase('agents', (kind) => {
  let t: TestApp;
  let clusterId: string;
  beforeAll(async () => {
    t = await TestApp.start(kind);
    clusterId = (await givenCluster(t)).id;
  });
  afterAll(() => t.close());

  it('registers an agent with a one-time pairing key; it is unknown until it pairs', async () => {
    const operator = await t.tokenFor('operator');
    const res = await t
      .as(operator)
      .post(`/api/v1/clusters/${clusterId}/agents`)
      .send({ name: 'edge-1', address: '10.0.0.1', role: 'standalone' })
      .expect(201);
    expect(res.body).toMatchObject({
      name: 'edge-1',
      address: '10.0.0.1',
      role: 'standalone',
      failoverGroup: null,
      active: true,
      state: 'unknown',
      versionStatus: 'unknown',
      autoUpgrade: true,
      remoteUpgrade: true,
      pairingKey: expect.stringMatching(/^lsp_/),
    });
    const row = await t.db.reader.findOneByOrFail(Agent, { id: res.body.id });
    expect(row.pairingKeyHash).not.toContain(res.body.pairingKey);
    const got = await t.as(operator).get(`/api/v1/agents/${res.body.id}`).expect(200);
    expect(got.body.pairingKey).toBeUndefined();
  });

  it('validates pairs: main and backup need a group, standalone has none, one of each per group', async () => {
    const noGroup = await t.admin
      .post(`/api/v1/clusters/${clusterId}/agents`)
      .send({ name: 'm', address: 'm.lan', role: 'main' })
      .expect(400);
    expect(noGroup.body.details).toEqual([
      { field: 'failoverGroup', problems: ['failoverGroup is required for role main'] },
    ]);
    const standaloneInGroup = await t.admin
      .post(`/api/v1/clusters/${clusterId}/agents`)
      .send({ name: 's', address: 's.lan', role: 'standalone', failoverGroup: 'g' })
      .expect(400);
    expect(standaloneInGroup.body.details[0].field).toBe('failoverGroup');

    const main = await givenAgent(t, clusterId, { role: 'main', failoverGroup: 'pair-a' });
    const backup = await givenAgent(t, clusterId, { role: 'backup', failoverGroup: 'pair-a' });
    expect(main).toMatchObject({ active: true, failoverGroup: 'pair-a' });
    expect(backup).toMatchObject({ active: false, failoverGroup: 'pair-a' });
    const second = await t.admin
      .post(`/api/v1/clusters/${clusterId}/agents`)
      .send({ name: 'm2', address: 'm2.lan', role: 'main', failoverGroup: 'pair-a' })
      .expect(409);
    expect(second.body).toMatchObject({ code: 'GROUP_ROLE_TAKEN', message: expect.stringContaining(main.name) });
  });

  it('refuses a second agent on one address, naming the first', async () => {
    const first = await givenAgent(t, clusterId, { address: '10.9.9.9' });
    const res = await t.admin
      .post(`/api/v1/clusters/${clusterId}/agents`)
      .send({ name: 'dup', address: '10.9.9.9', role: 'standalone' })
      .expect(409);
    expect(res.body).toMatchObject({ code: 'ADDRESS_TAKEN', details: { agentId: first.id } });
  });

  it('refuses a bad address and an unknown cluster', async () => {
    const bad = await t.admin
      .post(`/api/v1/clusters/${clusterId}/agents`)
      .send({ name: 'x', address: 'not an address', role: 'standalone' })
      .expect(400);
    expect(bad.body.details).toEqual([
      { field: 'address', problems: ['address must be a host name or an IP address'] },
    ]);
    await t.admin
      .post('/api/v1/clusters/00000000-0000-4000-8000-000000000000/agents')
      .send({ name: 'x', address: 'x.lan', role: 'standalone' })
      .expect(404);
  });

  it('lists agents with filters and paging', async () => {
    const c = await givenCluster(t);
    await givenAgent(t, c.id, { role: 'main', failoverGroup: 'g1' });
    await givenAgent(t, c.id, { role: 'backup', failoverGroup: 'g1' });
    await givenPairedAgent(t, c.id, {}, { busy: true });
    const all = await t.admin.get(`/api/v1/clusters/${c.id}/agents`).expect(200);
    expect(all.body).toMatchObject({ total: 3, limit: 500, offset: 0 });
    const backups = await t.admin.get(`/api/v1/clusters/${c.id}/agents?role=backup`).expect(200);
    expect(backups.body.items.map((a: { role: string }) => a.role)).toEqual(['backup']);
    const group = await t.admin.get(`/api/v1/clusters/${c.id}/agents?failoverGroup=g1`).expect(200);
    expect(group.body.total).toBe(2);
    const busy = await t.admin.get(`/api/v1/clusters/${c.id}/agents?state=busy`).expect(200);
    expect(busy.body.total).toBe(1);
    const page = await t.admin.get(`/api/v1/clusters/${c.id}/agents?limit=1&offset=1`).expect(200);
    expect(page.body).toMatchObject({ total: 3, limit: 1, offset: 1 });
    expect(page.body.items).toHaveLength(1);
    const bad = await t.admin.get(`/api/v1/clusters/${c.id}/agents?state=sleeping&limit=0`).expect(400);
    expect(bad.body.details.map((d: { field: string }) => d.field).sort()).toEqual(['limit', 'state']);
  });

  it('lets operators change an agent, re-checking its placement', async () => {
    const a = await givenAgent(t, clusterId);
    const operator = await t.tokenFor('operator');
    const res = await t
      .as(operator)
      .patch(`/api/v1/agents/${a.id}`)
      .send({ name: 'renamed', address: '10.1.2.3' })
      .expect(200);
    expect(res.body).toMatchObject({ name: 'renamed', address: '10.1.2.3' });
    const toMain = await t.as(operator).patch(`/api/v1/agents/${a.id}`).send({ role: 'main' }).expect(400);
    expect(toMain.body.details[0].field).toBe('failoverGroup');
  });

  it('lets only admins toggle auto-upgrade, and says so', async () => {
    const a = await givenAgent(t, clusterId);
    const operator = await t.tokenFor('operator');
    const refused = await t
      .as(operator)
      .put(`/api/v1/agents/${a.id}/auto-upgrade`)
      .send({ enabled: false })
      .expect(403);
    expect(refused.body.message).toBe('Only admins may turn auto-upgrade on or off; ask an admin.');
    const res = await t.admin.put(`/api/v1/agents/${a.id}/auto-upgrade`).send({ enabled: false }).expect(200);
    expect(res.body.autoUpgrade).toBe(false);
  });

  it('refuses to remove an agent held by an upgrade, naming the upgrade', async () => {
    const a = await givenAgent(t, clusterId);
    const upgradeId = '11111111-2222-4333-8444-555555555555';
    // The upgrades module marks the agents it holds; here the column is set directly.
    await t.db.transaction((tx) => tx.em.update(Agent, { id: a.id }, { upgradeId }));
    const res = await t.admin.delete(`/api/v1/agents/${a.id}`).expect(409);
    expect(res.body).toMatchObject({
      code: 'AGENT_IN_UPGRADE',
      details: { upgradeId },
      message: expect.stringContaining(upgradeId),
    });
  });
});
