import { slowUpload } from './support/slow-upload';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageArchive } from './support/archives';
import { freePort } from './support/free-port';

const ROOT = path.resolve(__dirname, '..');

/** Runs src/main.ts as a real process, the way the README's run command does (minus the build). */
function startMain(
  env: Record<string, string>,
  args: string[] = [],
  preload: string[] = [],
): { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<number | string> } {
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', ...preload.flatMap((p) => ['-r', p]), 'src/main.ts', ...args],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Whether a process of this id still runs (signal 0 only checks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30000,
): Promise<T> {
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

  /**
   * node dist/main.js --version used to start a server on 8080. The command line is read before
   * anything else: PORT here is invalid and DATA_DIR is left uncreated, so an answer proves the
   * environment was not read, and a preload reports any module of the app or of Nest that was loaded.
   */
  it('answers --version, --help and a wrong argument without loading the app', async () => {
    const probe = path.join(dataDir, 'loaded-modules.js');
    fs.writeFileSync(
      probe,
      `process.on('exit', () => { const app = Object.keys(require.cache).filter((m) => /@nestjs|app\\.factory|app-config/.test(m)); if (app.length) process.stderr.write('loaded: ' + app.join(', ') + '\\n'); });\n`,
    );
    const env = { DATA_DIR: path.join(dataDir, 'never-created'), PORT: 'eighty' };
    const [version, help, wrong] = [
      startMain(env, ['--version'], [probe]),
      startMain(env, ['--help'], [probe]),
      startMain(env, ['--port', '9090'], [probe]),
    ];
    expect(await version.exited).toBe(0);
    expect([version.stdout(), version.stderr()]).toEqual([
      `${(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}\n`,
      '',
    ]);
    expect(await help.exited).toBe(0);
    expect(help.stderr()).toBe('');
    expect(help.stdout()).toMatch(/^usage: node dist\/main\.js \[--help \| --version\]/);
    expect(help.stdout()).toContain('"Configuration" table in README.md');
    expect(await wrong.exited).toBe(2);
    expect(wrong.stdout()).toBe('');
    expect(wrong.stderr()).toBe(
      "lockstep: Unknown option '--port'; the server takes only --help and --version, its settings come from the environment\n",
    );
    expect(fs.existsSync(env.DATA_DIR)).toBe(false);
  }, 30000);

  it('stops at start with one line naming a bad variable', async () => {
    const run = startMain({ DATA_DIR: dataDir, PORT: 'eighty' });
    expect(await run.exited).toBe(2);
    expect(run.stderr().trim().split('\n')).toEqual([
      'lockstep: configuration error: PORT must be a whole number from 1 to 65535 (got "eighty")',
    ]);
    expect(fs.existsSync(path.join(dataDir, 'lockstep.sqlite'))).toBe(false);
  });

  it('creates its SQLite file, prints a working admin token once, and stops on SIGTERM', async () => {
    const port = await freePort();
    const run = startMain({
      DATA_DIR: dataDir,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'json',
    });
    try {
      const token = await waitFor(
        'the admin token banner',
        () => /^\s+(lsk_[A-Za-z0-9_-]{43})\s*$/m.exec(run.stdout())?.[1],
      );
      const base = `http://127.0.0.1:${port}`;
      await waitFor('readiness', async () =>
        (await fetch(`${base}/health/ready`).catch(() => undefined))?.status === 200 ? true : undefined,
      );
      expect(fs.existsSync(path.join(dataDir, 'lockstep.sqlite'))).toBe(true);
      const tokens = await fetch(`${base}/api/v1/tokens`, { headers: { Authorization: `Bearer ${token}` } });
      expect(tokens.status).toBe(200);
      expect(run.stdout().split(token).length - 1).toBe(1); // printed once, and never logged
      // Every JSON log line: an ISO-8601 timestamp and a string message; the access log's entry in fields of their own.
      await waitFor('the access log line', () => (run.stdout().includes('"path":"/api/v1/tokens"') ? true : undefined));
      const lines = run
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.length).toBeGreaterThan(5);
      for (const line of lines)
        expect(line).toMatchObject({
          timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
          message: expect.any(String),
        });
      expect(lines).toContainEqual(
        expect.objectContaining({
          context: 'HTTP',
          method: 'GET',
          path: '/api/v1/tokens',
          status: 200,
          message: expect.stringContaining('path=/api/v1/tokens'),
        }),
      );
      run.child.kill('SIGTERM');
      // Nest's shutdown hooks ran (executor stopped, buffered heartbeats written, streams ended,
      // HTTP then the database closed), promptly with nothing in flight, and it exited 0.
      const stopping = Date.now();
      expect(await run.exited).toBe(0);
      expect(Date.now() - stopping).toBeLessThan(5000);
      await expect(fetch(`${base}/health/live`)).rejects.toThrow();
      expect(run.stdout()).toMatch(/"context":"Lockstep","message":"SIGTERM received: stopping/);
      expect(run.stdout()).toMatch(/"context":"Lockstep","message":"stopped"/);
      expect(run.stderr()).toBe('');
    } finally {
      run.child.kill('SIGKILL');
    }
  }, 60000);

  /**
   * `npm start` as `docker stop` or systemd meet it: the SIGTERM goes to npm, which hands it to its
   * script's process. The scripts run as package.json writes them (prestart, then start), in a
   * folder holding a copy of it, the build pointed at one empty file and a dist/main.js that loads
   * src/main.ts (compiling the real dist takes 20 s). With "npm run build && node dist/main.js" the
   * shell took the signal and died, and node went on serving, orphaned.
   */
  it('on SIGTERM refuses new requests, ends event streams with a retry hint, and answers the request in flight', async () => {
    const port = await freePort();
    const admin = 'lsk_graceful-stop-test-0000000000000000';
    const run = startMain({
      DATA_DIR: dataDir,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOCKSTEP_ADMIN_TOKEN: admin,
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'log',
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      const auth = { Authorization: `Bearer ${admin}` };
      await waitFor('readiness', async () =>
        (await fetch(`${base}/health/ready`).catch(() => undefined))?.status === 200 ? true : undefined,
      );
      const cluster = (await (
        await fetch(`${base}/api/v1/clusters`, {
          method: 'POST',
          headers: { ...auth, 'Content-Type': 'application/json' },
          body: JSON.stringify({ name: 'stop', product: 'acme-agent' }),
        })
      ).json()) as { id: string };

      // A viewer of the cluster's events, and an upload whose body is half sent when the signal comes.
      const stream = await fetch(`${base}/api/v1/clusters/${cluster.id}/events`, { headers: auth });
      expect(stream.status).toBe(200);
      const streamed = stream.text();
      const upload = slowUpload(port, `/api/v1/clusters/${cluster.id}/packages`, admin, packageArchive());
      await upload.halfSent;

      run.child.kill('SIGTERM');
      await waitFor('the stop to begin', () => (run.stdout().includes('SIGTERM received') ? true : undefined));
      // A new request is not taken: the port is closed, or (on a connection already open) 503
      // SHUTTING_DOWN, which test/graceful-stop.e2e-spec.ts checks in detail.
      const late = await fetch(`${base}/api/v1/clusters`, { headers: auth }).then(
        (res) => res.status,
        () => 'connection refused',
      );
      expect([503, 'connection refused']).toContain(late);
      expect(await streamed).toMatch(/\nretry: 500\n\n$/);

      upload.sendRest();
      expect(await upload.answer).toMatchObject({ status: 201, body: { version: '1.1.0', status: 'available' } });
      expect(await run.exited).toBe(0);
      expect(run.stdout()).toMatch(/"message":"stopped"/);
    } finally {
      run.child.kill('SIGKILL');
    }
  }, 60000);

  it('npm start hands SIGTERM on to the server: the port closes and the node process is gone', async () => {
    const app = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-npm-start-'));
    const pidFile = path.join(app, 'server.pid');
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(app, 'package.json'));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(app, 'node_modules'), 'dir');
    fs.writeFileSync(path.join(app, 'empty.ts'), 'export {};\n');
    fs.writeFileSync(
      path.join(app, 'tsconfig.build.json'),
      JSON.stringify({ compilerOptions: { noEmit: true, types: [] }, files: ['empty.ts'] }),
    );
    fs.mkdirSync(path.join(app, 'dist'));
    fs.writeFileSync(
      path.join(app, 'dist', 'main.js'),
      [
        `require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));`,
        `require(${JSON.stringify(path.join(ROOT, 'node_modules', 'ts-node'))}).register({ transpileOnly: true, project: ${JSON.stringify(path.join(ROOT, 'tsconfig.json'))} });`,
        `require(${JSON.stringify(path.join(ROOT, 'src', 'main.ts'))});`,
      ].join('\n'),
    );
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const npm = spawn('npm', ['start'], {
      cwd: app,
      env: {
        ...process.env,
        DATABASE_URL: '',
        LOCKSTEP_ADMIN_TOKEN: '',
        DATA_DIR: dataDir,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stdout!.on('data', (d) => (output += d));
    npm.stderr!.on('data', (d) => (output += d));
    const npmExited = new Promise<void>((resolve) => npm.on('exit', () => resolve()));
    let serverPid: number | undefined;
    try {
      await waitFor(
        'readiness',
        async () => ((await fetch(`${base}/health/ready`).catch(() => undefined))?.status === 200 ? true : undefined),
        45000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}; npm start printed:\n${output}`);
      });
      serverPid = Number(fs.readFileSync(pidFile, 'utf8'));
      expect(alive(serverPid)).toBe(true);

      npm.kill('SIGTERM');
      await waitFor('the server process to end', () => (alive(serverPid!) ? undefined : true), 5000);
      await expect(fetch(`${base}/health/live`)).rejects.toThrow();
      await waitFor('npm to exit', () => (npm.exitCode !== null || npm.signalCode !== null ? true : undefined), 5000);
      await npmExited;
    } finally {
      npm.kill('SIGKILL');
      if (serverPid && alive(serverPid)) process.kill(serverPid, 'SIGKILL');
      fs.rmSync(app, { recursive: true, force: true });
    }
  }, 60000);
});
