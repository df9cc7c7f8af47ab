import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DataSource, DataSourceOptions } from 'typeorm';
import { describeEachDatabase, RAM_DISK, TEST_ADMIN_TOKEN, TestApp } from './support/test-app';
import { AccessToken } from '../src/auth/access-token.entity';
import { ManualClock } from '../src/common/clock';
import { Database, dataSourceOptions } from '../src/database/database';
import { givenCluster } from './support/builders';
import { createTestDatabase, postgresServerUrl } from './support/postgres';

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
    expect(issued.body).toMatchObject({
      name: 'ci-uploader',
      role: 'operator',
      revokedAt: null,
      secret: expect.stringMatching(/^lsk_/),
    });
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
    expect(res.body).toMatchObject({
      code: 'LAST_ADMIN_TOKEN',
      message: expect.stringMatching(/Issue another admin token first/),
    });
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

describeEachDatabase('tokens that expire', (kind) => {
  let t: TestApp;
  const clock = new ManualClock(new Date('2026-03-01T12:00:00.000Z'));
  const inSeconds = (s: number) => new Date(clock.now().getTime() + s * 1000).toISOString();
  beforeAll(async () => {
    t = await TestApp.start(kind, { clock });
  });
  afterAll(() => t.close());

  it('honours a token until its expiresAt, then answers 401 TOKEN_EXPIRED saying when, even for a token cached moments ago', async () => {
    const expiresAt = inSeconds(60);
    const issued = await t.admin
      .post('/api/v1/tokens')
      .send({ name: 'short-lived', role: 'viewer', expiresAt })
      .expect(201);
    expect(issued.body).toMatchObject({ name: 'short-lived', expiresAt, revokedAt: null });
    await t.as(issued.body.secret).get('/api/v1/clusters').expect(200); // now in the token cache
    clock.advance(59_000);
    await t.as(issued.body.secret).get('/api/v1/clusters').expect(200);
    clock.advance(1_000); // the expiry instant itself; the cache's 5 s have not passed
    const refused = await t.as(issued.body.secret).get('/api/v1/clusters').expect(401);
    expect(refused.body).toMatchObject({
      code: 'TOKEN_EXPIRED',
      message: `This token expired at ${expiresAt}; ask an admin for a new one.`,
    });
  });

  it('voids the stream tickets an expired token issued', async () => {
    const cluster = await givenCluster(t);
    const issued = await t.admin
      .post('/api/v1/tokens')
      .send({ name: 'watcher', role: 'viewer', expiresAt: inSeconds(10) })
      .expect(201);
    const ticket = (
      await t
        .as(issued.body.secret)
        .post('/api/v1/stream-tickets')
        .send({ stream: 'cluster', id: cluster.id })
        .expect(201)
    ).body;
    clock.advance(10_000); // the ticket itself is good for a minute
    const res = await fetch(t.baseUrl + ticket.url);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { code: string }).code).toBe('TICKET_ISSUER_EXPIRED');
  });

  it('shows expiresAt in the list and in one token, null for a token that never expires', async () => {
    const expiresAt = inSeconds(3600);
    const issued = await t.admin
      .post('/api/v1/tokens')
      .send({ name: 'listed', role: 'operator', expiresAt })
      .expect(201);
    const list = await t.admin.get('/api/v1/tokens').expect(200);
    expect(list.body.find((x: { id: string }) => x.id === issued.body.id)).toMatchObject({ expiresAt });
    expect(list.body.find((x: { name: string }) => x.name === 'bootstrap admin')).toMatchObject({ expiresAt: null });
    expect((await t.admin.get(`/api/v1/tokens/${issued.body.id}`).expect(200)).body.expiresAt).toBe(expiresAt);
    const never = await t.admin
      .post('/api/v1/tokens')
      .send({ name: 'explicitly never', role: 'viewer', expiresAt: null })
      .expect(201);
    expect(never.body.expiresAt).toBeNull();
  });

  it.each([
    ['in the past', () => inSeconds(-1), /expiresAt must be in the future/],
    ['now', () => inSeconds(0), /expiresAt must be in the future/],
    ['more than 10 years ahead', () => inSeconds(10 * 366 * 86_400), /expiresAt must be at most 10 years ahead/],
    ['not a date', () => 'next tuesday', /expiresAt must be an ISO-8601 date and time/],
    ['a date that does not exist', () => '2027-02-30T00:00:00Z', /expiresAt must be an ISO-8601 date and time/],
    ['a date without a time', () => '2027-02-01', /expiresAt must be an ISO-8601 date and time/],
    ['a number', () => 1_900_000_000_000, /expiresAt must be an ISO-8601 date and time/],
  ])('refuses an expiresAt %s with a 400 naming the field, and stores nothing', async (_, value, problem) => {
    const before = (await t.admin.get('/api/v1/tokens').expect(200)).body.length;
    const res = await t.admin
      .post('/api/v1/tokens')
      .send({ name: 'refused', role: 'viewer', expiresAt: value() })
      .expect(400);
    expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringMatching(problem) });
    expect(res.body.details).toEqual([{ field: 'expiresAt', problems: [expect.stringMatching(problem)] }]);
    expect((await t.admin.get('/api/v1/tokens').expect(200)).body.length).toBe(before);
  });

  it('counts only unexpired admin tokens as active: the last one cannot be revoked, an expired one can', async () => {
    const issued = await t.admin
      .post('/api/v1/tokens')
      .send({ name: 'temporary admin', role: 'admin', expiresAt: inSeconds(30) })
      .expect(201);
    const bootstrap = (await t.admin.get('/api/v1/tokens').expect(200)).body.find(
      (x: { name: string }) => x.name === 'bootstrap admin',
    );
    clock.advance(30_000);
    const refused = await t.admin.delete(`/api/v1/tokens/${bootstrap.id}`).expect(409);
    expect(refused.body).toMatchObject({
      code: 'LAST_ADMIN_TOKEN',
      message: expect.stringMatching(/expired ones do not count/),
    });
    await t.admin.delete(`/api/v1/tokens/${issued.body.id}`).expect(200);
  });

  it('installs a new admin token at start when every admin token has expired, never bringing back a revoked LOCKSTEP_ADMIN_TOKEN', async () => {
    const temporary = await t.admin
      .post('/api/v1/tokens')
      .send({ name: 'interim admin', role: 'admin', expiresAt: inSeconds(30) })
      .expect(201);
    const bootstrap = (await t.admin.get('/api/v1/tokens').expect(200)).body.find(
      (x: { name: string }) => x.name === 'bootstrap admin',
    );
    await t.as(temporary.body.secret).delete(`/api/v1/tokens/${bootstrap.id}`).expect(200);
    clock.advance(30_000);
    const printed: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => (printed.push(String(chunk)), true));
    try {
      t = await t.restart();
    } finally {
      spy.mockRestore();
    }
    const secret = /^\s+(lsk_[A-Za-z0-9_-]{43})\s*$/m.exec(printed.join(''))?.[1];
    expect(secret).toBeDefined();
    await t.as(secret!).get('/api/v1/tokens').expect(200);
    expect((await t.as(TEST_ADMIN_TOKEN).get('/api/v1/tokens').expect(401)).body.code).toBe('TOKEN_REVOKED');
    expect((await t.as(temporary.body.secret).get('/api/v1/tokens').expect(401)).body.code).toBe('TOKEN_EXPIRED');
  });
});

describeEachDatabase('the token expiry migration', (kind) => {
  it('adds expiresAt to a database made by the earlier migrations, keeping its tokens (they never expire)', async () => {
    let database: { type: 'sqlite'; file: string } | { type: 'postgres'; url: string };
    let cleanup: () => Promise<void>;
    const dir = fs.mkdtempSync(path.join(RAM_DISK ?? os.tmpdir(), 'lockstep-migrate-'));
    if (kind === 'postgres') {
      const created = await createTestDatabase(postgresServerUrl()!);
      database = { type: 'postgres', url: created.url };
      cleanup = async () => {
        await created.drop();
        fs.rmSync(dir, { recursive: true, force: true });
      };
    } else {
      database = { type: 'sqlite', file: path.join(dir, 'lockstep.sqlite') };
      cleanup = async () => fs.rmSync(dir, { recursive: true, force: true });
    }
    try {
      const options = dataSourceOptions(database);
      const all = options.migrations as Array<{ name: string }>;
      const earlier = all.slice(
        0,
        all.findIndex((m) => m.name.startsWith('TokenExpiry')),
      );
      const old = await new DataSource({ ...options, migrations: earlier } as DataSourceOptions).initialize();
      await old.runMigrations();
      const now = new Date().toISOString();
      await old.query(
        'INSERT INTO "access_tokens" ("id", "name", "role", "agentId", "secretHash", "prefix", "createdByTokenId", "createdAt", "revokedAt") VALUES ' +
          (kind === 'postgres' ? '($1, $2, $3, NULL, $4, $5, NULL, $6, NULL)' : '(?, ?, ?, NULL, ?, ?, NULL, ?, NULL)'),
        ['6f0b3c2e-5f8a-4a4e-9d0b-1a2b3c4d5e6f', 'old admin', 'admin', 'a'.repeat(64), 'lsk_old', now],
      );
      await old.destroy();

      const db = await Database.open({ database, dataDir: dir });
      try {
        await expect(db.pendingSchemaChanges()).resolves.toEqual([]);
        const kept = await db.reader.findOneByOrFail(AccessToken, { id: '6f0b3c2e-5f8a-4a4e-9d0b-1a2b3c4d5e6f' });
        expect(kept).toMatchObject({ name: 'old admin', role: 'admin', revokedAt: null, expiresAt: null });
      } finally {
        await db.close();
      }
    } finally {
      await cleanup();
    }
  });
});
