import { ShutdownState } from '../src/common/graceful-stop';
import { TestApp } from './support/test-app';

/**
 * While the process stops (SIGTERM; test/main-process.e2e-spec.ts runs the real signal), a request
 * that arrives is answered 503 SHUTTING_DOWN before anything runs, readiness included, so a load
 * balancer takes the next ones elsewhere (docs/operations.md, "Stopping").
 */
describe('a request that arrives while Lockstep stops [sqlite]', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start('sqlite');
  }, 60_000);
  afterAll(() => t?.close());

  it('is refused 503 SHUTTING_DOWN in the error shape, with Retry-After and Connection: close; nothing is stored', async () => {
    const state = t.app.get(ShutdownState);
    state.stopping = true;
    try {
      const create = await t.admin.post('/api/v1/clusters').send({ name: 'too-late', product: 'acme-agent' });
      expect(create.status).toBe(503);
      expect(create.headers['retry-after']).toBe('1');
      expect(create.headers.connection).toBe('close');
      expect(create.headers['x-request-id']).toBe(create.body.requestId);
      expect(create.body).toMatchObject({
        statusCode: 503,
        code: 'SHUTTING_DOWN',
        message: expect.stringContaining('nothing was changed'),
      });
      const ready = await t.http().get('/health/ready');
      expect(ready.status).toBe(503);
      expect(ready.body.code).toBe('SHUTTING_DOWN');
    } finally {
      state.stopping = false;
    }
    const clusters = await t.admin.get('/api/v1/clusters').expect(200);
    expect(clusters.body.map((c: { name: string }) => c.name)).not.toContain('too-late');
  });
});
