import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { SchedulerRegistry } from '@nestjs/schedule';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import request from 'supertest';
import { createApp } from '../../src/app.factory';
import { Clock } from '../../src/common/clock';
import { loadConfig } from '../../src/config/app-config';
import { Database } from '../../src/database/database';
import { recordResponses, saveDocumentOnce } from './contract';
import { createTestDatabase, postgresServerUrl } from './postgres';

export type DatabaseKind = 'sqlite' | 'postgres';

/** SQLite always; PostgreSQL too when global-setup found a server. */
export const DATABASES: DatabaseKind[] = postgresServerUrl() ? ['sqlite', 'postgres'] : ['sqlite'];

/** Runs a suite once per available database, named so the output says which ran. */
export function describeEachDatabase(name: string, suite: (kind: DatabaseKind) => void): void {
  for (const kind of DATABASES) describe(`${name} [${kind}]`, () => suite(kind));
}

export const TEST_ADMIN_TOKEN = 'lsk_test-admin-token-0123456789abcdef';

export interface TestAppOptions {
  env?: Record<string, string>;
  clock?: Clock;
  /** Where the temp data folder goes (default: a RAM disk where there is one, else the OS temp folder). */
  tmpRoot?: string;
}

/**
 * A RAM disk when the machine has one (Linux's /dev/shm): the suites make thousands of small
 * commits, each an fsync under synchronous=FULL, which on a disk sets the suite's pace. What they
 * test does not change: a process killed still finds every commit (the page cache survives it).
 */
export const RAM_DISK = fs.existsSync('/dev/shm') ? '/dev/shm' : undefined;

/**
 * The real application on a real port, on a fresh SQLite file in a temp folder or a fresh
 * PostgreSQL database. `restart()` starts a new process image of it on the same data.
 */
export class TestApp {
  private constructor(
    readonly kind: DatabaseKind,
    readonly app: NestFastifyApplication,
    readonly baseUrl: string,
    private readonly storage: { dataDir: string; databaseUrl?: string; dropDatabase?: () => Promise<void> },
    private readonly options: TestAppOptions,
  ) {}

  static async start(kind: DatabaseKind, options: TestAppOptions = {}): Promise<TestApp> {
    const dataDir = fs.mkdtempSync(path.join(options.tmpRoot ?? RAM_DISK ?? os.tmpdir(), 'lockstep-test-'));
    let storage: TestApp['storage'] = { dataDir };
    if (kind === 'postgres') {
      const server = postgresServerUrl();
      if (!server) throw new Error('PostgreSQL is not available to this test run');
      const created = await createTestDatabase(server);
      storage = { dataDir, databaseUrl: created.url, dropDatabase: created.drop };
    }
    return TestApp.boot(kind, storage, options);
  }

  private static async boot(
    kind: DatabaseKind,
    storage: TestApp['storage'],
    options: TestAppOptions,
  ): Promise<TestApp> {
    const config = loadConfig({
      DATA_DIR: storage.dataDir,
      DATABASE_URL: storage.databaseUrl,
      LOCKSTEP_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'fatal',
      // Every test client calls from 127.0.0.1, so per-address limits would count a whole suite as
      // one client; the rate-limit tests set their own (test/hostile-input.e2e-spec.ts).
      PAIRING_RATE_LIMIT: '1000000',
      AUTH_FAILURE_LIMIT: '1000000',
      ...options.env,
    });
    const app = await createApp(config, { clock: options.clock });
    recordResponses(app.getHttpAdapter().getInstance());
    await app.listen(0, '127.0.0.1');
    const address = app.getHttpServer().address() as { port: number };
    const baseUrl = `http://127.0.0.1:${address.port}`;
    await saveDocumentOnce(baseUrl);
    return new TestApp(kind, app, baseUrl, storage, options);
  }

  /**
   * Stops the app's periodic jobs (executor ticks, offline sweep, auto-upgrade), so that every pass
   * a test makes is its own and what a sweep does (or not) is the test's doing.
   */
  stopTimers(): void {
    const registry = this.app.get(SchedulerRegistry);
    for (const name of registry.getIntervals()) registry.deleteInterval(name);
  }

  get dataDir(): string {
    return this.storage.dataDir;
  }

  get db(): Database {
    return this.app.get(Database);
  }

  /** supertest against the running server. */
  http() {
    return request(this.baseUrl);
  }

  /** Requests with a bearer token already set. */
  as(token: string) {
    const http = this.http();
    const auth = (r: request.Test) => r.set('Authorization', `Bearer ${token}`);
    return {
      get: (url: string) => auth(http.get(url)),
      post: (url: string) => auth(http.post(url)),
      patch: (url: string) => auth(http.patch(url)),
      put: (url: string) => auth(http.put(url)),
      delete: (url: string) => auth(http.delete(url)),
    };
  }

  get admin() {
    return this.as(TEST_ADMIN_TOKEN);
  }

  /** Issues an API token with the given role and returns its secret. */
  async tokenFor(role: 'viewer' | 'operator' | 'admin', name = `${role}-token`): Promise<string> {
    const response = await this.admin.post('/api/v1/tokens').send({ name, role }).expect(201);
    return response.body.secret as string;
  }

  /** Stops this instance and starts a new one on the same data, as after a process restart. */
  async restart(options: TestAppOptions = this.options): Promise<TestApp> {
    await this.app.close();
    return TestApp.boot(this.kind, this.storage, options);
  }

  /** A second instance on the same database, as another replica would be; stop it with `stop()`. */
  async sibling(options: TestAppOptions = this.options): Promise<TestApp> {
    return TestApp.boot(this.kind, this.storage, options);
  }

  /** Stops the app and keeps its data. */
  async stop(): Promise<void> {
    await this.app.close();
  }

  /** Stops the app and removes its data. */
  async close(): Promise<void> {
    await this.app.close();
    await this.storage.dropDatabase?.();
    fs.rmSync(this.storage.dataDir, { recursive: true, force: true });
  }
}
