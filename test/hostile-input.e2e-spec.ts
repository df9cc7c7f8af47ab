import { givenCluster, givenPackage, givenPairedAgent } from './support/builders';
import { describeEachDatabase, TestApp } from './support/test-app';

/**
 * Issue 20, item 8: bad input that used to answer 500 (a 500 is a bug) now gets a 4xx naming
 * what to fix, and nothing is stored from it.
 */
describeEachDatabase('hostile input (issue 20, item 8)', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await TestApp.start(kind);
  });
  afterAll(() => t.close());

  it('JSON nested 1,500 levels deep is refused with 400, not a stack overflow', async () => {
    const deep = '{"facts":'.repeat(1500) + '{}' + '}'.repeat(1500);
    const res = await t.http().post('/api/v1/agent/pair').set('Content-Type', 'application/json').send(deep);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'JSON_TOO_DEEP', message: expect.stringMatching(/nests objects or arrays more than 64 levels deep/) });
  });

  it.each(['gzip', 'deflate', 'br'])('a corrupt body sent as Content-Encoding %s is a 400, on any path', async (encoding) => {
    for (const path of ['/api/v1/agent/pair', '/api/v1/clusters']) {
      const res = await t.admin.post(path).set('Content-Type', 'application/json').set('Content-Encoding', encoding).send(Buffer.from('not compressed at all'));
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/Content-Encoding|compressed/i);
    }
  });

  it('cluster defaultOptions with null values are refused and nothing is stored', async () => {
    const cluster = await givenCluster(t);
    const res = await t.admin.patch(`/api/v1/clusters/${cluster.id}`).send({ defaultOptions: { maxParallel: null } });
    expect(res.status).toBe(400);
    expect(res.body.details).toEqual([expect.objectContaining({ field: 'defaultOptions.maxParallel' })]);
    const created = await t.admin.post('/api/v1/clusters').send({ name: `nulls-${kind}`, product: 'acme-agent', defaultOptions: { waitForIdle: null } });
    expect(created.status).toBe(400);
    // The cluster's defaults are intact: a preview still plans.
    await givenPairedAgent(t, cluster.id, { name: 'a' });
    const packageId = await givenPackage(t, cluster.id);
    await t.admin.post(`/api/v1/clusters/${cluster.id}/upgrades/preview`).send({ packageId, target: { all: true } }).expect(200);
  });

  it('upgrade options with null values are refused', async () => {
    const cluster = await givenCluster(t);
    await givenPairedAgent(t, cluster.id, { name: 'a' });
    const packageId = await givenPackage(t, cluster.id);
    const res = await t.admin.post(`/api/v1/clusters/${cluster.id}/upgrades/preview`).send({ packageId, target: { all: true }, options: { failureThreshold: null } });
    expect(res.status).toBe(400);
    expect(res.body.details).toEqual([expect.objectContaining({ field: 'options.failureThreshold' })]);
  });

  it.each(['20261201T020000Z', '2026-W49-2', '2026-335', '2026-12-01'])('scheduledAt %s (not a date and time JavaScript reads as such) is a 400', async (scheduledAt) => {
    const cluster = await givenCluster(t);
    await givenPairedAgent(t, cluster.id, { name: 'a' });
    const packageId = await givenPackage(t, cluster.id);
    const res = await t.admin.post(`/api/v1/clusters/${cluster.id}/upgrades`).send({ packageId, target: { all: true }, scheduledAt });
    expect(res.status).toBe(400);
    expect(res.body.details).toEqual([{ field: 'scheduledAt', problems: ['scheduledAt must be an ISO-8601 date and time such as 2026-12-01T02:00:00Z'] }]);
    expect((await t.admin.get(`/api/v1/clusters/${cluster.id}/upgrades`).expect(200)).body.total).toBe(0);
  });

  it('an offset past any list is a 400', async () => {
    const res = await t.admin.get('/api/v1/clusters/00000000-0000-4000-8000-000000000000/upgrades').query({ offset: '99999999999999999999' });
    expect(res.status).toBe(400);
    expect(res.body.details).toEqual([expect.objectContaining({ field: 'offset' })]);
  });

  it('an upgrade (or preview) without a target is a 400 naming target', async () => {
    const cluster = await givenCluster(t);
    await givenPairedAgent(t, cluster.id, { name: 'a' });
    const packageId = await givenPackage(t, cluster.id);
    for (const path of ['upgrades', 'upgrades/preview']) {
      const res = await t.admin.post(`/api/v1/clusters/${cluster.id}/${path}`).send({ packageId });
      expect(res.status).toBe(400);
      expect(res.body.details).toEqual([expect.objectContaining({ field: 'target' })]);
    }
  });

  it('an agent reporting facts as an array, or a version with a stray newline, is refused and nothing changes (item 9)', async () => {
    const cluster = await givenCluster(t);
    const { registered, agent } = await givenPairedAgent(t, cluster.id, { name: 'reporter' });
    const before = (await t.admin.get(`/api/v1/agents/${registered.id}`).expect(200)).body;
    const facts = await agent.heartbeat({ facts: [] as never });
    expect(facts.status).toBe(400);
    expect(facts.body.details).toEqual([expect.objectContaining({ field: 'facts' })]);
    const version = await agent.heartbeat({ facts: before.facts, version: '1.0.1\n' });
    expect(version.status).toBe(400);
    expect(version.body.details).toEqual([expect.objectContaining({ field: 'version' })]);
    const after = (await t.admin.get(`/api/v1/agents/${registered.id}`).expect(200)).body;
    expect({ version: after.version, facts: after.facts }).toEqual({ version: before.version, facts: before.facts });
  });
});
