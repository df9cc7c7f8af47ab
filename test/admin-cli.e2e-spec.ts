import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource, DataSourceOptions } from 'typeorm';
import { ADMIN_USAGE } from '../src/admin/cli';
import { dataSourceOptions } from '../src/database/database';
import { describeEachDatabase, RAM_DISK, TEST_ADMIN_TOKEN, TestApp } from './support/test-app';

const ROOT = path.resolve(__dirname, '..');
type Run = { code: number | null; stdout: string; stderr: string };

/**
 * Runs the admin CLI as a separate process, as an operator would: through the npm script, or (a
 * little faster) through ts-node directly. The environment holds only what the test sets of
 * Lockstep's variables.
 */
function admin(args: string[], vars: Record<string, string>, { viaNpm = false } = {}): Promise<Run> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    DATABASE_URL: '',
    DATA_DIR: '',
    LOCKSTEP_ADMIN_TOKEN: '',
    ...vars,
  };
  const [command, argv] = viaNpm
    ? ['npm', ['run', '-s', 'admin', '--', ...args]]
    : [process.execPath, ['-r', 'ts-node/register/transpile-only', path.join('src', 'admin', 'main.ts'), ...args]];
  return new Promise((resolve) => {
    const child = spawn(command, argv, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The server's environment: its data folder and, on PostgreSQL, its database (TestApp keeps that to itself). */
function serverVars(t: TestApp): Record<string, string> {
  const { databaseUrl } = (t as unknown as { storage: { databaseUrl?: string } }).storage;
  return { DATA_DIR: t.dataDir, DATABASE_URL: databaseUrl ?? '' };
}

const printedSecret = (run: Run) => /^\s+(lsk_[A-Za-z0-9_-]{43})\s*$/m.exec(run.stdout)?.[1];

/** Revocations reach a server's token cache within its 5 s (README, "Access"); polls until then. */
async function eventually401(t: TestApp, token: string): Promise<string> {
  for (const deadline = Date.now() + 7000; ; await sleep(250)) {
    const res = await t.as(token).get('/api/v1/tokens');
    if (res.status === 401 || Date.now() > deadline) return res.body.code ?? `status ${res.status}`;
  }
}

describeEachDatabase('npm run admin -- reset-token', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await TestApp.start(kind);
  });
  afterAll(() => t.close());

  it('issues an admin token the running server takes at once; --revoke-others revokes every other admin token', async () => {
    await t.admin.get('/api/v1/tokens').expect(200); // the bootstrap token is now in the server's cache

    const first = await admin(['reset-token', '--name', 'on call'], serverVars(t));
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toMatch(/New admin token "on call" \(id [0-9a-f-]{36}\)\. It is shown only this once:/);
    const onCall = printedSecret(first)!;
    expect(onCall).toBeDefined();
    const listed = await t.as(onCall).get('/api/v1/tokens').expect(200);
    expect(listed.body.find((x: { name: string }) => x.name === 'on call')).toMatchObject({
      role: 'admin',
      createdByTokenId: null,
      expiresAt: null,
      revokedAt: null,
    });
    await t.admin.get('/api/v1/tokens').expect(200); // without --revoke-others the others stay

    const second = await admin(['reset-token', '--revoke-others'], serverVars(t));
    expect(second).toMatchObject({ code: 0, stderr: '' });
    expect(second.stdout).toContain('Revoked 2 other admin token(s); running servers stop accepting them within 5 s.');
    const recovered = printedSecret(second)!;
    const after = await t.as(recovered).get('/api/v1/tokens').expect(200);
    expect(after.body.filter((x: { role: string }) => x.role === 'admin').map((x: { name: string }) => x.name)).toEqual(
      ['recovered admin'],
    );
    expect(await eventually401(t, TEST_ADMIN_TOKEN)).toBe('TOKEN_REVOKED');
    expect(await eventually401(t, onCall)).toBe('TOKEN_REVOKED');

    // Both are in the audit trail, as the admin CLI's (docs/audit.md).
    const trail = await t.as(recovered).get('/api/v1/audit').query({ actor: 'admin-cli' }).expect(200);
    expect(trail.body.items.map((r: { summary: string }) => r.summary)).toEqual([
      'npm run admin reset-token issued admin token "recovered admin" and revoked 2 other admin token(s)',
      'npm run admin reset-token issued admin token "on call"',
    ]);
  }, 60_000);
});

describe('npm run admin: usage and refusals [sqlite]', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(RAM_DISK ?? os.tmpdir(), 'lockstep-admin-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('answers --help and bad flags with the usage, and refuses a missing or not fully migrated database, creating nothing', async () => {
    // A database one migration behind this version, as after an upgrade that was never started.
    const behind = path.join(dir, 'behind');
    const options = dataSourceOptions({ type: 'sqlite', file: path.join(behind, 'lockstep.sqlite') });
    const migrations = options.migrations as Array<{ name: string }>;
    const old = await new DataSource({
      ...options,
      migrations: migrations.slice(0, -1),
    } as DataSourceOptions).initialize();
    await old.runMigrations();
    await old.destroy();

    const missing = path.join(dir, 'nothing-here');
    const [help, bad, noDatabase, pending] = await Promise.all([
      admin(['--help'], {}, { viaNpm: true }),
      admin(['reset-token', '--bogus'], {}),
      admin(['reset-token'], { DATA_DIR: missing }),
      admin(['reset-token', '--revoke-others'], { DATA_DIR: behind }),
    ]);
    expect(help).toEqual({ code: 0, stdout: `${ADMIN_USAGE}\n`, stderr: '' });
    // Exactly one line and the usage: no stack trace.
    expect(bad).toEqual({ code: 2, stdout: '', stderr: `lockstep admin: Unknown option '--bogus'\n${ADMIN_USAGE}\n` });
    expect(noDatabase).toEqual({
      code: 1,
      stdout: '',
      stderr: `lockstep admin: there is no Lockstep database at ${path.join(missing, 'lockstep.sqlite')}; set DATA_DIR (or DATABASE_URL) as the server has it. Nothing was created.\n`,
    });
    expect(fs.existsSync(missing)).toBe(false);
    expect(pending).toMatchObject({ code: 1, stdout: '' });
    expect(pending.stderr).toMatch(
      new RegExp(
        `^lockstep admin: .* has 1 pending migration\\(s\\) \\(${migrations.at(-1)!.name}\\); start this version of Lockstep once .*\\n$`,
      ),
    );

    const after = await new DataSource(options).initialize();
    try {
      expect(await after.query('SELECT COUNT(*) AS n FROM "access_tokens"')).toEqual([{ n: 0 }]);
    } finally {
      await after.destroy();
    }
  }, 60_000);
});
