import { describeEachDatabase, TEST_ADMIN_TOKEN, TestApp } from './support/test-app';

describeEachDatabase('HTTP contract', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await TestApp.start(kind, { env: { MAX_JSON_BODY_BYTES: '2048' } });
  });
  afterAll(() => t.close());

  it('serves health without a token', async () => {
    await t.http().get('/health/live').expect(200, { status: 'ok' });
    const ready = await t.http().get('/health/ready').expect(200);
    expect(ready.body).toMatchObject({ status: 'ok', info: { database: { status: 'up', type: kind } } });
  });

  it('serves the OpenAPI description without a token, with the bearer scheme and named enums', async () => {
    const doc = await t.http().get('/api/docs-json').expect(200);
    expect(doc.body.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.body.components.schemas.UserRole).toMatchObject({ enum: ['viewer', 'operator', 'admin'] });
    expect(doc.body.paths['/api/v1/tokens'].post.security).toEqual([{ bearer: [] }]);
    await t.http().get('/api/docs').expect(200).expect('Content-Type', /html/);
  });

  it('gives every response an X-Request-Id, and keeps the caller’s own', async () => {
    const generated = await t.http().get('/health/live');
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const own = await t.http().get('/api/v1/tokens').set('X-Request-Id', 'trace-42');
    expect(own.headers['x-request-id']).toBe('trace-42');
    expect(own.body.requestId).toBe('trace-42');
    // An event stream writes its own head past Fastify: the id is on it too.
    const clusterId = (await t.admin.post('/api/v1/clusters').send({ name: 'ids', product: 'acme-agent' }).expect(201))
      .body.id;
    const controller = new AbortController();
    const stream = await fetch(`${t.baseUrl}/api/v1/clusters/${clusterId}/events`, {
      headers: { Authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'X-Request-Id': 'stream-7' },
      signal: controller.signal,
    });
    expect({
      status: stream.status,
      id: stream.headers.get('x-request-id'),
      type: stream.headers.get('content-type'),
    }).toEqual({ status: 200, id: 'stream-7', type: 'text/event-stream; charset=utf-8' });
    controller.abort();
  });

  it('reads JSON that starts with a byte order mark, as some Windows tools send it', async () => {
    const res = await t.admin
      .post('/api/v1/tokens')
      .set('Content-Type', 'application/json')
      .send('\uFEFF{"name":"bom","role":"viewer"}')
      .expect(201);
    expect(res.body).toMatchObject({ name: 'bom', role: 'viewer' });
  });

  it('names a bad field in a 400', async () => {
    const res = await t.admin.post('/api/v1/tokens').send({ name: 'x', role: 'root' }).expect(400);
    expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request', code: 'VALIDATION_FAILED' });
    expect(res.body.details).toEqual([{ field: 'role', problems: ['role must be one of: viewer, operator, admin'] }]);
    expect(res.body.message).toMatch(/role must be one of/);
  });

  it('refuses an unknown field, naming it, and stores nothing', async () => {
    const before = await t.admin.get('/api/v1/tokens').expect(200);
    const res = await t.admin.post('/api/v1/tokens').send({ name: 'x', role: 'viewer', expires: 'never' }).expect(400);
    expect(res.body.details).toEqual([{ field: 'expires', problems: ['expires is not a known field; remove it'] }]);
    const after = await t.admin.get('/api/v1/tokens').expect(200);
    expect(after.body).toHaveLength(before.body.length);
  });

  it('names every missing field at once', async () => {
    const res = await t.admin.post('/api/v1/tokens').send({}).expect(400);
    expect(res.body.details.map((d: { field: string }) => d.field).sort()).toEqual(['name', 'role']);
  });

  it('answers 400 for malformed JSON and 413 for a body above the limit', async () => {
    const bad = await t.admin
      .post('/api/v1/tokens')
      .set('Content-Type', 'application/json')
      .send('{"name": ')
      .expect(400);
    expect(bad.body).toMatchObject({ code: 'MALFORMED_JSON', requestId: expect.any(String) });
    const big = await t.admin
      .post('/api/v1/tokens')
      .send({ name: 'x'.repeat(4096), role: 'viewer' })
      .expect(413);
    expect(big.body).toMatchObject({
      statusCode: 413,
      code: 'BODY_TOO_LARGE',
      message: expect.stringMatching(/2048 bytes/),
    });
  });

  it('answers an unknown route with 404 in the same error shape', async () => {
    const res = await t.admin.get('/api/v1/nothing-here').expect(404);
    expect(res.body).toMatchObject({
      statusCode: 404,
      code: 'NO_SUCH_ROUTE',
      message: expect.stringMatching(/api\/docs/),
    });
  });

  it('leaves no difference between the entities and the migrated schema', async () => {
    await expect(t.db.pendingSchemaChanges()).resolves.toEqual([]);
  });
});
