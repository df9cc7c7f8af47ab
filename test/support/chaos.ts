import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ReceivedEvent, StreamClient } from './sse-client';
export { freePort } from './free-port';

/**
 * Harness of the chaos test (test/chaos.e2e-spec.ts): the server built once and run as a real
 * process that can be SIGKILLed and started again on the same data, a seeded random generator, an
 * SSE viewer that resumes with Last-Event-ID after every drop, and a product that keeps its own
 * timeline of when it ran.
 */

const ROOT = path.resolve(__dirname, '..', '..');

/** A small, fast, seedable generator (mulberry32): the same seed gives the same kill schedule. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Builds the server once into a folder of its own under node_modules/.cache (so that a build
 * someone else runs into dist/ meanwhile cannot change the files under a server this test keeps
 * restarting): every file of tsconfig.build.json transpiled as `ts-node --transpile-only` would
 * (main-process.e2e-spec.ts runs the server that way), without the type check `npm run build` adds
 * (`npm test` type-checks; other people's edits in progress must not stop this test). Also writes
 * `preload.js` there: see ServerProcess.
 */
export function buildServer(): { main: string; remove: () => void } {
  // Loaded here, not at the top: only the chaos test needs the compiler in its process.
  const ts = require('typescript') as typeof import('typescript');
  const cache = path.join(ROOT, 'node_modules', '.cache');
  // What an earlier run left behind when it was killed (its process is gone) goes first.
  for (const name of fs.existsSync(cache) ? fs.readdirSync(cache) : []) {
    const pid = /^lockstep-chaos-(\d+)-/.exec(name)?.[1];
    if (pid && Number(pid) !== process.pid && !alive(Number(pid)))
      fs.rmSync(path.join(cache, name), { recursive: true, force: true });
  }
  const outDir = path.join(cache, `lockstep-chaos-${process.pid}-${randomBytes(3).toString('hex')}`);
  const config = ts.getParsedCommandLineOfConfigFile(
    path.join(ROOT, 'tsconfig.build.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  if (!config) throw new Error('tsconfig.build.json could not be read');
  // The package is CommonJS (no "type" in package.json): what tsc emits for nodenext here.
  const options = {
    ...config.options,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    sourceMap: false,
    declaration: false,
    noEmit: false,
  };
  for (const file of config.fileNames) {
    const { outputText } = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
      compilerOptions: options,
      fileName: file,
    });
    const target = path.join(outDir, path.relative(path.join(ROOT, 'src'), file)).replace(/\.ts$/, '.js');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, outputText);
  }
  const main = path.join(outDir, 'main.js');
  if (!fs.existsSync(main)) throw new Error(`the build emitted no ${main}`);
  fs.writeFileSync(path.join(outDir, 'preload.js'), PRELOAD);
  return { main, remove: () => fs.rmSync(outDir, { recursive: true, force: true }) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A spare server process: it loads the server's modules (code only: nothing is created, no
 * database is opened, no port is bound), says "preloaded", and runs main.js when told (SIGUSR2).
 */
const PRELOAD = `'use strict';
const path = require('node:path');
const main = process.argv[2];
require(require.resolve('reflect-metadata', { paths: [path.dirname(main)] }));
require(path.join(path.dirname(main), 'app.factory.js'));
const idle = setInterval(() => undefined, 1 << 30);
process.once('SIGUSR2', () => {
  clearInterval(idle);
  process.argv = [process.argv[0], main]; // as \`node main.js\` sees them
  require(main);
});
process.stdout.write('preloaded\\n');
`;

/**
 * The built server as a real process on a fixed port, SIGKILLed and started again on the same data.
 * To make a restart quick, the next process is spawned as a spare while the current one runs: it
 * loads the modules beforehand (about two thirds of a cold start on a busy machine) and creates
 * the app (config, database, migrations, timers, port) only when started, after the previous
 * process is dead; all it knows then comes from the database, as after any restart.
 */
export class ServerProcess {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private spare: { child: ChildProcess; preloaded: Promise<void>; exited: Promise<void> } | null = null;
  /** The last lines it wrote (both streams), for a failure's message. */
  readonly tail: string[] = [];
  starts = 0;

  constructor(
    readonly main: string,
    readonly port: number,
    readonly env: Record<string, string>,
  ) {}

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  private spawnSpare(): NonNullable<ServerProcess['spare']> {
    const child = spawn(process.execPath, [path.join(path.dirname(this.main), 'preload.js'), this.main], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOST: '127.0.0.1',
        PORT: String(this.port),
        LOG_LEVEL: 'warn',
        LOG_FORMAT: 'text',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let preloadedYet = false;
    let markPreloaded!: () => void;
    const preloaded = new Promise<void>((resolve) => (markPreloaded = resolve));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const label = () => `[start ${preloadedYet && this.child === child ? this.starts : 'spare'}]`;
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString().trimEnd().split('\n')) {
          if (!preloadedYet && line === 'preloaded') {
            preloadedYet = true;
            markPreloaded();
          } else this.tail.push(`${label()} ${line}`);
        }
        if (this.tail.length > 300) this.tail.splice(0, this.tail.length - 300);
      });
    }
    void exited.then(() => markPreloaded()); // a spare that died is noticed by start()
    return { child, preloaded, exited };
  }

  /** Starts a process and resolves, with how long it took (waiting for the spare included), once /health/ready answers 200. */
  async start(timeoutMs = 30_000): Promise<number> {
    if (this.running) throw new Error('the server is already running');
    const started = Date.now();
    const spare = this.spare ?? this.spawnSpare();
    this.spare = null;
    await spare.preloaded;
    const child = spare.child;
    this.child = child;
    this.exited = spare.exited;
    this.starts++;
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`the spare server process died:\n${this.tail.slice(-30).join('\n')}`);
    child.kill('SIGUSR2');
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(
          `the server exited while starting (${child.exitCode ?? child.signalCode}):\n${this.tail.slice(-30).join('\n')}`,
        );
      const ok = await fetch(`${this.baseUrl}/health/ready`, { signal: AbortSignal.timeout(2000) }).then(
        (res) => res.status === 200,
        () => false,
      );
      if (ok) break;
      if (Date.now() - started > timeoutMs)
        throw new Error(`the server was not ready within ${timeoutMs} ms:\n${this.tail.slice(-30).join('\n')}`);
      await sleep(10);
    }
    const took = Date.now() - started;
    this.spare = this.spawnSpare();
    return took;
  }

  /** SIGKILL: no shutdown hook runs, nothing is flushed; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (a clean stop, SIGKILL after 5 s); the spare goes too. */
  async stop(): Promise<void> {
    if (this.spare) {
      this.spare.child.kill('SIGKILL');
      await this.spare.exited;
      this.spare = null;
    }
    if (!this.running) return;
    const child = this.child!;
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.kill('SIGTERM');
    await this.exited;
    clearTimeout(force);
  }
}

/**
 * A TCP relay between the agents and the server that holds a new connection while no server
 * listens (retrying the connect every 25 ms, up to `holdMs`), as a listening socket kept across
 * restarts (systemd socket activation) or a load balancer's connect retry would: a restart costs
 * the agents a slow answer instead of a refused connection, so they do not back off for tens of
 * seconds (the reference agent doubles its wait after each failed call) while the server is
 * killed over and over. A connection open when the server dies is cut at once, both ways, as it
 * would be without the relay: the agent sees its call fail.
 */
export class HoldingRelay {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Connections that had to wait for a server, and the longest wait (ms). */
  held = 0;
  longestHoldMs = 0;
  /** Connections cut by the server's side (its death, or an idle keep-alive it closed). */
  closedByServer = 0;
  port = 0;

  constructor(
    private readonly upstreamPort: number,
    private readonly holdMs = 12_000,
  ) {
    this.server = net.createServer((client) => void this.relay(client));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return `http://127.0.0.1:${this.port}`;
  }

  private async relay(client: net.Socket): Promise<void> {
    this.sockets.add(client);
    client.on('error', () => undefined);
    client.on('close', () => this.sockets.delete(client));
    const started = Date.now();
    let upstream: net.Socket | null = null;
    let waited = false;
    while (!upstream && !client.destroyed) {
      upstream = await new Promise<net.Socket | null>((resolve) => {
        const socket = net.connect(this.upstreamPort, '127.0.0.1');
        socket.once('connect', () => resolve(socket));
        socket.once('error', () => resolve(null));
      });
      if (!upstream) {
        waited = true;
        if (Date.now() - started > this.holdMs) break;
        await sleep(25);
      }
    }
    if (waited) {
      this.held++;
      this.longestHoldMs = Math.max(this.longestHoldMs, Date.now() - started);
    }
    if (!upstream || client.destroyed) {
      upstream?.destroy();
      client.destroy();
      return;
    }
    const server = upstream;
    this.sockets.add(server);
    let clientGone = false;
    const cut = () => {
      if (!clientGone) this.closedByServer++;
      clientGone = true;
    };
    // Its end (FIN, after whatever it sent) is passed on by pipe(); a reset cuts the agent's side at once.
    server.on('end', cut);
    server.on('error', () => {
      cut();
      client.destroy();
    });
    server.on('close', () => this.sockets.delete(server));
    client.on('close', () => {
      clientGone = true;
      server.destroy();
    });
    client.pipe(server);
    server.pipe(client);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/**
 * One viewer of an SSE stream across server restarts: a real EventSource client (StreamClient)
 * per connection; when a connection drops (the server was killed), it is closed before the
 * library's own reconnect (the server asks for 3 s) and a new one is opened at once with
 * Last-Event-ID set to the last event received (0 for the first: everything retained). `events`
 * holds every event of every connection, in the order received.
 */
export class ResumingStream {
  readonly events: ReceivedEvent[] = [];
  /** Connections that opened (the server answered 200 with a stream), and attempts (most fail while the server is down). */
  opened = 0;
  attempts = 0;
  /** The Last-Event-ID sent on each connection that opened. */
  readonly resumedFrom: number[] = [];
  private client: StreamClient | null = null;
  private taken = 0;
  private closed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly retryMs = 100,
  ) {
    this.connect();
    this.timer = setInterval(() => this.pump(), 10);
  }

  get lastId(): number {
    return this.events.at(-1)?.id ?? 0;
  }

  private connect(): void {
    if (this.closed) return;
    this.attempts++;
    this.taken = 0;
    const from = this.lastId;
    const client = new StreamClient(this.url, { token: this.token, lastEventId: from });
    client.opened.then(
      () => {
        this.opened++;
        this.resumedFrom.push(from);
      },
      () => undefined, // refused (not 200): counted as an error below, and tried again
    );
    this.client = client;
  }

  private take(client: StreamClient): void {
    for (; this.taken < client.events.length; this.taken++) this.events.push(client.events[this.taken]);
  }

  private pump(): void {
    const client = this.client;
    if (!client) return;
    this.take(client);
    if (client.errors.length > 0) {
      client.close();
      this.take(client);
      this.client = null;
      setTimeout(() => this.connect(), this.retryMs);
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    if (this.client) {
      this.client.close();
      this.take(this.client);
    }
    this.client = null;
  }
}

/**
 * The product the reference agents run in the chaos test: the sample product (it reports its
 * version in run/health.json) that also appends to HOME/product-timeline.log, itself, when it
 * started serving and when it was told to stop; that is the host's own record of when the product
 * was down, whatever the server believes. Its migration rewrites the data, then runs on (the
 * product is down meanwhile) for at least `minMs` and until the server was killed `need` more
 * times since it began: `killsFile` holds "<kills so far> <need>", kept by the test, which sets
 * need to 0 once it killed enough (a migration ends by `capMs` in any case). So an upgrade lasts as
 * many kills as the test needs, however fast or slow the machine restarts the server.
 */
export function writeTimelineProduct(
  dir: string,
  migration: { minMs: number; killsFile: string; capMs: number },
): void {
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'bin', 'product.js'),
    `'use strict';
const fs = require('node:fs');
const path = require('node:path');
const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'manifest.json'), 'utf8'));
const healthFile = process.env.LOCKSTEP_PRODUCT_HEALTH;
const timeline = path.join(path.dirname(healthFile), '..', 'product-timeline.log');
const mark = (what) => fs.appendFileSync(timeline, Date.now() + ' ' + what + ' ' + manifest.version + ' ' + process.pid + '\\n');
fs.writeFileSync(healthFile + '.tmp', JSON.stringify({ version: manifest.version, pid: process.pid, startedAt: new Date().toISOString() }));
fs.renameSync(healthFile + '.tmp', healthFile);
mark('start');
const alive = setInterval(() => undefined, 60000);
process.on('SIGTERM', () => {
  clearInterval(alive);
  try {
    mark('stop');
    fs.rmSync(healthFile, { force: true });
  } finally {
    process.exit(0);
  }
});
`,
  );
  fs.writeFileSync(
    path.join(dir, 'migrate.js'),
    `'use strict';
const fs = require('node:fs');
const path = require('node:path');
const dataDir = process.argv[2];
const version = JSON.parse(fs.readFileSync(path.join(__dirname, 'manifest.json'), 'utf8')).version;
const file = path.join(dataDir, 'records.json');
const data = JSON.parse(fs.readFileSync(file, 'utf8'));
data.schema = version;
data.records = data.records.map((r) => ({ ...r, migratedTo: version }));
fs.writeFileSync(file, JSON.stringify(data, null, 2));
const state = () => {
  try {
    const [kills, need] = fs.readFileSync(${JSON.stringify(migration.killsFile)}, 'utf8').split(' ').map(Number);
    return { kills: kills || 0, need: need || 0 };
  } catch {
    return { kills: 0, need: 0 };
  }
};
const started = Date.now();
const base = state().kills;
const wait = () => {
  const ran = Date.now() - started;
  const now = state();
  if ((ran >= ${migration.minMs} && now.kills >= base + now.need) || ran >= ${migration.capMs}) console.log('migrated ' + data.records.length + ' records to ' + version);
  else setTimeout(wait, 50);
};
wait();
`,
  );
}

export interface ProductMark {
  at: number;
  what: 'start' | 'stop';
  version: string;
  pid: number;
}

export function readTimeline(home: string): ProductMark[] {
  const file = path.join(home, 'product-timeline.log');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [at, what, version, pid] = line.split(' ');
      return { at: Number(at), what: what as ProductMark['what'], version, pid: Number(pid) };
    });
}

/**
 * The spans within [from, to] during which no product process of a host was running, from its
 * timeline: a process counts from its start mark to its stop mark (or to `to`).
 */
export function downSpans(marks: ProductMark[], from: number, to: number): Array<[number, number]> {
  const running = new Set<number>();
  const spans: Array<[number, number]> = [];
  let downSince: number | null = from;
  for (const mark of [...marks].sort((a, b) => a.at - b.at)) {
    if (mark.at > to) break;
    if (mark.what === 'start') running.add(mark.pid);
    else running.delete(mark.pid);
    if (mark.at < from) {
      downSince = running.size === 0 ? from : null;
      continue;
    }
    if (running.size === 0 && downSince === null) downSince = mark.at;
    if (running.size > 0 && downSince !== null) {
      if (mark.at > downSince) spans.push([downSince, mark.at]);
      downSince = null;
    }
  }
  if (downSince !== null && to > downSince) spans.push([downSince, to]);
  return spans;
}

/** The spans during which both hosts were down at once (each of at least `minMs`). */
export function overlaps(a: Array<[number, number]>, b: Array<[number, number]>, minMs = 0): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [a0, a1] of a) {
    for (const [b0, b1] of b) {
      const start = Math.max(a0, b0);
      const end = Math.min(a1, b1);
      if (end - start > minMs) out.push([start, end]);
    }
  }
  return out;
}

/**
 * Processes left running from `dir` (a product or a migration whose agent was SIGKILLed by
 * AgentProcess.stop's fallback on a busy machine): SIGKILLed by pid, found by the unique temp
 * folder in their command line. Returns how many.
 */
export function killLeftovers(dir: string): number {
  let killed = 0;
  for (const pid of fs.existsSync('/proc') ? fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)) : []) {
    try {
      if (Number(pid) !== process.pid && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) {
        process.kill(Number(pid), 'SIGKILL');
        killed++;
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return killed;
}

/** "2026-12-01T10:00:00.000Z command <uuid>: upgrade" lines of a reference agent's output: the commands it started to carry out. */
export function commandsExecuted(output: string[]): Array<{ at: string; id: string; type: string }> {
  const executed: Array<{ at: string; id: string; type: string }> = [];
  for (const line of output) {
    const m = /^(\S+) command ([0-9a-f-]{36}): (upgrade|switchover|migrate)$/.exec(line.trim());
    if (m) executed.push({ at: m[1], id: m[2], type: m[3] });
  }
  return executed;
}
