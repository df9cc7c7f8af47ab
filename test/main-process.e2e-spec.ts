import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** Runs src/main.ts as a real process, the way the README's run command does (minus the build). */
function startMain(env: Record<string, string>): { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<number | string> } {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
    cwd: path.resolve(__dirname, '..'),
    env: { PATH: process.env.PATH, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the lockstep process', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-main-'));
  });
  afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('stops at start with one line naming a bad variable', async () => {
    const run = startMain({ DATA_DIR: dataDir, PORT: 'eighty' });
    expect(await run.exited).toBe(2);
    expect(run.stderr().trim().split('\n')).toEqual(['lockstep: configuration error: PORT must be a whole number from 1 to 65535 (got "eighty")']);
    expect(fs.existsSync(path.join(dataDir, 'lockstep.sqlite'))).toBe(false);
  });

  it('creates its SQLite file, prints a working admin token once, and stops on SIGTERM', async () => {
    const port = await freePort();
    const run = startMain({ DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1' });
    try {
      const token = await waitFor('the admin token banner', () => /^\s+(lsk_[A-Za-z0-9_-]{43})\s*$/m.exec(run.stdout())?.[1]);
      const base = `http://127.0.0.1:${port}`;
      await waitFor('readiness', async () => ((await fetch(`${base}/health/ready`).catch(() => undefined))?.status === 200 ? true : undefined));
      expect(fs.existsSync(path.join(dataDir, 'lockstep.sqlite'))).toBe(true);
      const tokens = await fetch(`${base}/api/v1/tokens`, { headers: { Authorization: `Bearer ${token}` } });
      expect(tokens.status).toBe(200);
      expect(run.stdout().split(token).length - 1).toBe(1); // printed once, and never logged
      run.child.kill('SIGTERM');
      expect(await run.exited).toBeDefined();
      await expect(fetch(`${base}/health/live`)).rejects.toThrow();
    } finally {
      run.child.kill('SIGKILL');
    }
  }, 60000);
});
