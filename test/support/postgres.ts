import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** Set by global-setup when a PostgreSQL server is available to the e2e suites. */
export const PG_URL_ENV = 'LOCKSTEP_TEST_PG_URL';

export function postgresServerUrl(): string | undefined {
  return process.env[PG_URL_ENV] || undefined;
}

/** Creates an empty database on the test server, so every suite starts from nothing. */
export async function createTestDatabase(serverUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `lockstep_t_${randomBytes(6).toString('hex')}`;
  await withClient(serverUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () =>
      withClient(serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

export async function withClient<T>(url: string, body: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}
