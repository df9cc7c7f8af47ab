import { describeEachDatabase, TEST_ADMIN_TOKEN, TestApp } from './support/test-app';
import { AccessToken } from '../src/auth/access-token.entity';

describeEachDatabase('API tokens and access', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await TestApp.start(kind);
  });
  afterAll(() => t.close());

  it('answers 401 without a token, saying how to send one', async () => {
    const res = await t.http().get('/api/v1/tokens').expect(401);
    expect(res.body).toMatchObject({ statusCode: 401, error: 'Unauthorized', code: 'TOKEN_MISSING' });
    expect(res.body.message).toMatch(/Authorization: Bearer/);
  });

  it('answers 401 for a malformed header and for an unknown token', async () => {
    const malformed = await t.http().get('/api/v1/tokens').set('Authorization', 'Token abc').expect(401);
    expect(malformed.body.code).toBe('TOKEN_MALFORMED');
    const unknown = await t.as('lsk_not-a-real-token-at-all').get('/api/v1/tokens').expect(401);
    expect(unknown.body).toMatchObject({ code: 'TOKEN_UNKNOWN', message: expect.stringMatching(/not known/) });
  });

  it('issues a token whose secret is shown once and stored only as a hash', async () => {
    const issued = await t.admin.post('/api/v1/tokens').send({ name: 'ci-uploader', role: 'operator' }).expect(201);
    expect(issued.body).toMatchObject({ name: 'ci-uploader', role: 'operator', revokedAt: null, secret: expect.stringMatching(/^lsk_/) });
    const listed = await t.admin.get('/api/v1/tokens').expect(200);
    const entry = listed.body.find((x: { id: string }) => x.id === issued.body.id);
    expect(entry).toMatchObject({ name: 'ci-uploader', prefix: issued.body.secret.slice(0, 8) });
    expect(JSON.stringify(listed.body)).not.toContain(issued.body.secret);
    const row = await t.db.reader.findOneByOrFail(AccessToken, { id: issued.body.id });
    expect(row.secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(row)).not.toContain(issued.body.secret);
    await t.as(issued.body.secret).get('/health/live').expect(200);
  });

  it('answers 403 with the reason when the role is too low', async () => {
    const viewer = await t.tokenFor('viewer');
    const operator = await t.tokenFor('operator');
    for (const token of [viewer, operator]) {
      const res = await t.as(token).get('/api/v1/tokens').expect(403);
      expect(res.body).toMatchObject({ statusCode: 403, error: 'Forbidden', code: 'ROLE_TOO_LOW' });
      expect(res.body.message).toMatch(/needs the admin role/);
    }
  });

  it('stops honouring a revoked token at once, and says it was revoked', async () => {
    const admin2 = await t.tokenFor('admin', 'second admin');
    await t.as(admin2).get('/api/v1/tokens').expect(200); // now cached
    const list = await t.admin.get('/api/v1/tokens').expect(200);
    const id = list.body.find((x: { name: string }) => x.name === 'second admin').id;
    const revoked = await t.admin.delete(`/api/v1/tokens/${id}`).expect(200);
    expect(revoked.body.revokedAt).toEqual(expect.any(String));
    const res = await t.as(admin2).get('/api/v1/tokens').expect(401);
    expect(res.body.code).toBe('TOKEN_REVOKED');
    // Revoking again changes nothing.
    await t.admin.delete(`/api/v1/tokens/${id}`).expect(200);
    const all = await t.admin.get('/api/v1/tokens?includeRevoked=true').expect(200);
    expect(all.body.map((x: { id: string }) => x.id)).toContain(id);
    const active = await t.admin.get('/api/v1/tokens').expect(200);
    expect(active.body.map((x: { id: string }) => x.id)).not.toContain(id);
  });

  it('refuses to revoke the last admin token', async () => {
    const list = await t.admin.get('/api/v1/tokens').expect(200);
    const admins = list.body.filter((x: { role: string }) => x.role === 'admin');
    expect(admins).toHaveLength(1);
    const res = await t.admin.delete(`/api/v1/tokens/${admins[0].id}`).expect(409);
    expect(res.body).toMatchObject({ code: 'LAST_ADMIN_TOKEN', message: expect.stringMatching(/Issue another admin token first/) });
    await t.admin.get('/api/v1/tokens').expect(200);
  });

  it('answers 404 for an unknown token id and 400 for an id that is not a UUID', async () => {
    await t.admin.delete('/api/v1/tokens/6f0b3c2e-5f8a-4a4e-9d0b-1a2b3c4d5e6f').expect(404);
    const res = await t.admin.get('/api/v1/tokens/42').expect(400);
    expect(res.body.details).toEqual([{ field: 'id', problems: ['id must be a UUID'] }]);
  });
});

describeEachDatabase('tokens across a restart', (kind) => {
  it('keeps every token and creates no second bootstrap admin', async () => {
    let t = await TestApp.start(kind);
    try {
      const viewer = await t.tokenFor('viewer', 'kept');
      t = await t.restart();
      await t.as(viewer).get('/health/ready').expect(200);
      const list = await t.admin.get('/api/v1/tokens').expect(200);
      expect(list.body.map((x: { name: string }) => x.name).sort()).toEqual(['bootstrap admin', 'kept']);
      expect(TEST_ADMIN_TOKEN).toBeTruthy();
    } finally {
      await t.close();
    }
  });
});
