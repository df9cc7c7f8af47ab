import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CONTRACT_DIR_ENV } from './contract';
import { PG_URL_ENV, withClient } from './postgres';

/** Why there was no PostgreSQL, for the summary reporter (it runs in this process: test/support/summary-reporter.js). */
const PG_MISSING_ENV = 'LOCKSTEP_TEST_PG_MISSING';

/**
 * Finds a PostgreSQL for the e2e suites: the server in TEST_DATABASE_URL when it is set, else a
 * testcontainers container when a Docker engine answers, else none (the PostgreSQL suites are
 * skipped, and this says so).
 */
export default async function globalSetup(): Promise<void> {
  const say = (line: string) => process.stdout.write(`\n[lockstep e2e] ${line}\n`);
  // Where the suites' answers are collected for the contract check at the end (./contract.ts).
  process.env[CONTRACT_DIR_ENV] = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-contract-'));
  let docker = 'not tried';
  const url = (await fromContainer(say, (why) => (docker = why))) ?? (await fromEnvironment(say));
  if (url) {
    process.env[PG_URL_ENV] = url;
    delete process.env[PG_MISSING_ENV];
    say(`e2e suites run on SQLite and on PostgreSQL (${redact(url)})`);
  } else {
    delete process.env[PG_URL_ENV];
    process.env[PG_MISSING_ENV] = `TEST_DATABASE_URL is unset, and testcontainers found no Docker engine (${docker})`;
    say(
      'e2e suites run on SQLite only: PostgreSQL SKIPPED (no Docker engine for testcontainers, and TEST_DATABASE_URL is unset)',
    );
  }
}

async function fromContainer(say: (line: string) => void, failed: (why: string) => void): Promise<string | undefined> {
  if (process.env.TEST_DATABASE_URL) return undefined; // an explicit server wins; no need to probe Docker
  try {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer('postgres:16-alpine')
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust', POSTGRES_DB: 'test' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    (globalThis as { __lockstepPg?: { stop(): Promise<unknown> } }).__lockstepPg = container;
    say('started PostgreSQL in a container (testcontainers)');
    return `postgres://postgres@${container.getHost()}:${container.getMappedPort(5432)}/test`;
  } catch (error) {
    const why = (error as Error).message.split('\n')[0];
    say(`testcontainers: ${why}`);
    failed(why);
    return undefined;
  }
}

async function fromEnvironment(say: (line: string) => void): Promise<string | undefined> {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) return undefined;
  try {
    await withClient(url, (c) => c.query('SELECT 1'));
    return url;
  } catch (error) {
    say(`TEST_DATABASE_URL does not answer (${(error as Error).message}); PostgreSQL suites cannot run`);
    throw new Error(`TEST_DATABASE_URL is set but PostgreSQL does not answer at ${redact(url)}`);
  }
}

const redact = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
