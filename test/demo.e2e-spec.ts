import { execFile, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { freePort } from './support/free-port';

const ROOT = path.resolve(__dirname, '..');

/** `npm run demo` as a newcomer runs it: real server, six real agents, exit code 0. */
describe('the demo', () => {
  it('upgrades six real agents on the PORT it is given, and says so once, in plain words', async () => {
    const port = await freePort();
    const run = spawnSync(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', path.join(ROOT, 'scripts', 'demo.ts')],
      {
        cwd: ROOT,
        env: { ...process.env, PORT: String(port) },
        encoding: 'utf8',
        timeout: 150_000,
      },
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`Lockstep is up at http://127.0.0.1:${port} `);
    expect(run.stdout).toContain('upgrade succeeded');
    expect(run.stdout.match(/version 1\.1\.0 {2}latest/g)).toHaveLength(6);
    expect(run.stdout).toMatch(/pair-a-main +version 1\.1\.0 +latest +active/);
    // It once printed "switchover switchover", "(when it ended)", and a progress line again when
    // only the agent's message changed.
    const lines = run.stdout.split('\n').filter((line) => line.trim());
    expect(lines.filter((line, i) => lines.indexOf(line) !== i)).toEqual([]);
    expect(lines.filter((line) => /\b([a-z]+)\s+\1\b/i.test(line))).toEqual([]);
    expect(run.stdout).not.toContain('(when it');
    expect(run.stdout).toMatch(
      /switchback pair-a-main +takes back over from pair-a-backup, after the upgrade of pair-a-main, whatever its outcome\n/,
    );
  }, 180_000);

  it('answers --help and --version, and refuses an unknown argument with one line and exit 2', async () => {
    const demo = (...args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          ['-r', 'ts-node/register/transpile-only', path.join(ROOT, 'scripts', 'demo.ts'), ...args],
          { cwd: ROOT, timeout: 60_000 },
          (_error, stdout, stderr) => resolve({ status: child.exitCode, stdout, stderr }),
        );
      });
    const [help, version, bogus] = await Promise.all([
      demo('--help'),
      demo('--version'),
      demo('--fail-migration', 'nobody'),
    ]);
    expect({ status: help.status, stderr: help.stderr }).toEqual({ status: 0, stderr: '' });
    expect(help.stdout).toMatch(/^usage: npm run demo \[-- --fail-migration AGENT\]\n/);
    expect({ status: version.status, stdout: version.stdout }).toEqual({
      status: 0,
      stdout: `${require('../package.json').version}\n`,
    });
    expect(bogus.status).toBe(2);
    expect(bogus.stderr.split('\n')[0]).toBe(
      'lockstep demo: --fail-migration takes one of: pair-a-main, pair-a-backup, pair-b-main, pair-b-backup, solo-1, solo-2',
    );
    expect(bogus.stdout).toBe('');
  }, 90_000);
});
