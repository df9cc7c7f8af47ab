import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../../test/support/free-port';

export { freePort };

const ROOT = path.resolve(__dirname, '..', '..');

export interface Running {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function waitUntilReady(url: string, child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before it was ready`);
    const ok = await fetch(url)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`not ready in time: ${url}`);
}

function stopper(child: ChildProcess, cleanup?: () => void): () => Promise<void> {
  return async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    cleanup?.();
  };
}

let built = false;

/** Compiles src/ to dist/ once per bench run, so the bench measures what `npm start` runs. */
export function buildOnce(): void {
  if (built) return;
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  built = true;
}

/**
 * Lockstep as its own process, built as `npm start` runs it (node dist/main.js; not ts-node, which
 * loads node:domain and slows every event emitter), on a throwaway SQLite folder unless env says
 * otherwise. `nodeArgs` go to node itself, e.g. ['--cpu-prof'] to profile a run.
 */
export async function startLockstep(
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<Running & { dataDir: string }> {
  const port = await freePort();
  const dataDir = env.DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-'));
  buildOnce();
  // BENCH_SERVER_NODE_ARGS: more arguments for node, e.g. "--require /tmp/diagnostic.js" to look inside a run.
  const extra = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, ...extra, 'dist/main.js'], {
    cwd: ROOT,
    // The whole simulated fleet calls from 127.0.0.1: per-address rate limits would count it as one client.
    env: {
      PATH: process.env.PATH,
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: dataDir,
      PAIRING_RATE_LIMIT: '1000000',
      AUTH_FAILURE_LIMIT: '1000000',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntilReady(`${url}/health/ready`, child);
  return {
    url,
    pid: child.pid!,
    dataDir,
    stop: stopper(child, () => (env.DATA_DIR ? undefined : fs.rmSync(dataDir, { recursive: true, force: true }))),
  };
}

/**
 * The baseline of the heartbeat benches: a bare node:http server that reads each body, parses it
 * as JSON and answers `answer` (a JavaScript expression, evaluated once in the server's process).
 */
export const bareJsonServer = (answer: string) => `
const http = require('node:http');
const answer = ${answer};
http.createServer((req, res) => {
  if (req.url === '/ready') { res.end('ok'); return; }
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    JSON.parse(body);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(answer);
  });
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

/** A plain node:http server in its own process; `script` is the body of a module that listens on PORT. */
export async function startBareServer(script: string): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, ['-e', script], {
    env: { PATH: process.env.PATH, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntilReady(`${url}/ready`, child);
  return { url, pid: child.pid!, stop: stopper(child) };
}

/** Resident set size of a process in bytes, from /proc (Linux). */
export function rssOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  return kb ? Number(kb[1]) * 1024 : NaN;
}
