/**
 * bench/fleet: a whole fleet against one Lockstep process. 100,000 simulated agents (one client
 * process, a bounded pool of keep-alive connections; bench/support/simulated-fleet.ts) are
 * registered and paired through the API, then each polls at the `pollAfterMs` the server names
 * (AGENT_POLL_S=30 by default, HEARTBEAT_TIMEOUT_S three times that), for `--duration` seconds,
 * while one cluster-wide upgrade runs through one of the clusters (the agents take its commands,
 * report progress and success naming the version installed) and a handful of agents are made to
 * stop. Prints heartbeats/s served against asked (agents / poll interval), p50/p99 latency, the
 * server's RSS and CPU (from /proc/<pid>), how far the upgrade got, and whether any agent went
 * offline that was not made to (the stopped ones must, once HEARTBEAT_TIMEOUT_S passed), beside
 * baselines measured in the same run: the same fleet at the same pace against a bare node:http
 * server answering the same JSON, and the client's own ceiling against it (pollAfterMs 0).
 *
 *   npm run bench:fleet -- [--agents 100000] [--duration 300] [--poll 30] [--clusters N]
 *                          [--connections 256] [--setup-concurrency 64] [--stop 5]
 *   npm run bench:fleet -- --db postgres://postgres@127.0.0.1:5432/test --replicas 2
 *   npm run bench:fleet -- --cpu-prof /tmp/prof   (a V8 CPU profile of each Lockstep process)
 *
 * With --db postgres://..., the bench creates a fresh database next to the one named (and drops it
 * at the end); --replicas N starts N server processes on it, agent i talking to replica i % N.
 * docs/operations.md ("The heartbeat pace") says what AGENT_POLL_S costs.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { packageArchive } from '../test/support/archives';
import { bareJsonServer, rssOf, Running, startBareServer, startLockstep } from './support/processes';
import { SimulatedFleet, Target, target, WindowStats, call } from './support/simulated-fleet';

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '100000' },
    duration: { type: 'string', default: '300' },
    poll: { type: 'string', default: '30' },
    clusters: { type: 'string' },
    connections: { type: 'string', default: '256' },
    'setup-concurrency': { type: 'string', default: '64' },
    stop: { type: 'string', default: '5' },
    'max-parallel': { type: 'string', default: '10%' },
    'phase-delay-ms': { type: 'string', default: '1000' },
    'baseline-duration': { type: 'string' },
    db: { type: 'string', default: 'sqlite' },
    replicas: { type: 'string', default: '1' },
    'cpu-prof': { type: 'string' },
  },
});
const AGENTS = Number(values.agents);
const DURATION_S = Number(values.duration);
const POLL_S = Number(values.poll);
const TIMEOUT_S = 3 * POLL_S; // the least HEARTBEAT_TIMEOUT_S that AGENT_POLL_S allows
const CLUSTERS = Number(values.clusters ?? Math.max(2, Math.ceil(AGENTS / 1000)));
const CONNECTIONS = Number(values.connections);
const SETUP_CONCURRENCY = Number(values['setup-concurrency']);
const STOP = Number(values.stop);
const REPLICAS = Number(values.replicas);
const BASELINE_S = Number(values['baseline-duration'] ?? Math.min(DURATION_S, 30));
const WARMUP_S = 10;
const SWEEP_S = 5; // AgentLiveness sweeps every 5 s (src/cluster/agent-liveness.ts)
const ADMIN = 'lsk_bench-admin-token-000000000000';
const PHASES: Array<[string, number]> = [
  ['precheck', 5],
  ['install', 50],
  ['verify', 90],
];
if (REPLICAS > 1 && values.db === 'sqlite') throw new Error('--replicas needs PostgreSQL: pass --db postgres://...');
if (!(AGENTS > STOP && CLUSTERS >= 2 && POLL_S >= 1 && DURATION_S > 0))
  throw new Error(
    'need --agents > --stop, --clusters >= 2 (one is upgraded, the stopped agents are in the others), --poll >= 1, --duration > 0',
  );

const BARE_SERVER = bareJsonServer(
  'JSON.stringify({ commands: [], hold: false, pollAfterMs: Number(process.env.POLL_MS) })',
);

// ---------------------------------------------------------------------------------------------
// Measuring a process from /proc

const CLK_TCK = 100; // USER_HZ on Linux
/** CPU seconds of a process (all its threads), or with `thread` of one of its threads (the main one: the event loop). */
function cpuSecondsOf(pid: number, thread?: number): number {
  const stat = fs.readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime
}

/** Samples the RSS of `pids` every second; CPU from start to stop. */
class ProcessMeter {
  private peak: number[];
  private last: number[];
  private cpuStart: number[];
  private loopCpuStart: number[];
  private wallStart = performance.now();
  private timer: NodeJS.Timeout;
  constructor(private readonly pids: number[]) {
    this.peak = pids.map(() => 0);
    this.last = pids.map(() => 0);
    this.cpuStart = pids.map((pid) => cpuSecondsOf(pid));
    this.loopCpuStart = pids.map((pid) => cpuSecondsOf(pid, pid));
    this.sample();
    this.timer = setInterval(() => this.sample(), 1000);
  }
  private sample(): void {
    this.pids.forEach((pid, k) => {
      const rss = rssOf(pid);
      this.last[k] = rss;
      this.peak[k] = Math.max(this.peak[k], rss);
    });
  }
  stop(): Array<{ cpuPercent: number; loopCpuPercent: number; peakRss: number; lastRss: number }> {
    clearInterval(this.timer);
    this.sample();
    const wall = (performance.now() - this.wallStart) / 1000;
    return this.pids.map((pid, k) => ({
      cpuPercent: ((cpuSecondsOf(pid) - this.cpuStart[k]) / wall) * 100,
      // The main thread's own: how near the event loop is to a whole core (the rest is SQLite's
      // checkpoint thread, the WAL syncs, the garbage collector's helpers).
      loopCpuPercent: ((cpuSecondsOf(pid, pid) - this.loopCpuStart[k]) / wall) * 100,
      peakRss: this.peak[k],
      lastRss: this.last[k],
    }));
  }
}

const MB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const sleep = (millis: number) => new Promise((r) => setTimeout(r, millis));

interface Measured {
  seconds: number;
  served: number;
  asked: number;
  stats: WindowStats;
}

function describe(m: Measured): string {
  const s = m.stats;
  const urgent = s.urgent
    ? ` (${((s.heartbeats - s.urgent) / m.seconds).toFixed(0)}/s at the idle pace + ${(s.urgent / m.seconds).toFixed(0)}/s a second apart: agents with a command or held)`
    : '';
  return (
    `${(s.heartbeats / m.seconds).toFixed(0)} heartbeats/s served${urgent}, ${m.asked.toFixed(0)}/s asked (agents / poll interval): ${(((s.heartbeats - s.urgent) / m.seconds / m.asked) * 100).toFixed(0)}% of it at the idle pace\n` +
    `    latency from due p50 ${ms(s.fromDue.percentile(50))} ms p99 ${ms(s.fromDue.percentile(99))} ms, on the wire p50 ${ms(s.onWire.percentile(50))} ms p99 ${ms(s.onWire.percentile(99))} ms   errors ${s.errors} non-2xx ${s.non2xx}`
  );
}

// ---------------------------------------------------------------------------------------------
// Baselines: the same fleet against a bare node:http server

async function baseline(pollMs: number, seconds: number): Promise<Measured & { serverCpu: number }> {
  const server = await startBareServer(BARE_SERVER.replace('Number(process.env.POLL_MS)', String(pollMs)));
  const fleet = new SimulatedFleet(AGENTS, {
    targets: [target(server.url, CONNECTIONS)],
    connections: CONNECTIONS,
    phaseDelayMs: 0,
    phases: [],
  });
  try {
    for (let i = 0; i < AGENTS; i++) fleet.add(`a${i}`, `lsa_baseline-${i}`, '1.0.0', pollMs === 0 ? 0 : pollMs);
    fleet.start();
    await sleep(pollMs === 0 ? 2000 : 1000);
    fleet.resetStats();
    const meter = new ProcessMeter([server.pid]);
    const start = performance.now();
    await sleep(seconds * 1000);
    const stats = fleet.resetStats();
    const [cpu] = meter.stop();
    const elapsed = (performance.now() - start) / 1000;
    return {
      seconds: elapsed,
      served: stats.heartbeats / elapsed,
      asked: pollMs === 0 ? NaN : AGENTS / (pollMs / 1000),
      stats,
      serverCpu: cpu.cpuPercent,
    };
  } finally {
    await fleet.close();
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Lockstep

async function admin(t: Target, method: string, path: string, body?: unknown): Promise<any> {
  const answer = await call(t, method, path, ADMIN, body);
  if (answer.status >= 300) throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

interface Servers {
  replicas: Running[];
  cleanup(): Promise<void>;
}

async function startServers(): Promise<Servers> {
  const env: Record<string, string> = {
    LOCKSTEP_ADMIN_TOKEN: ADMIN,
    AGENT_POLL_S: String(POLL_S),
    HEARTBEAT_TIMEOUT_S: String(TIMEOUT_S),
  };
  const nodeArgs = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [];
  if (values.db === 'sqlite') {
    const one = await startLockstep(env, nodeArgs);
    return { replicas: [one], cleanup: () => one.stop() };
  }
  // A fresh database beside the one named, dropped at the end (as bench/heartbeat does).
  const name = `lockstep_bench_fleet_${randomBytes(4).toString('hex')}`;
  const pg = new Client({ connectionString: values.db });
  await pg.connect();
  await pg.query(`CREATE DATABASE ${name}`);
  const url = new URL(values.db!);
  url.pathname = `/${name}`;
  const replicas: Running[] = [];
  const cleanup = async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await pg.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await pg.end();
  };
  try {
    // One at a time: the first runs the migrations.
    for (let i = 0; i < REPLICAS; i++)
      replicas.push(await startLockstep({ ...env, DATABASE_URL: url.toString() }, nodeArgs));
  } catch (error) {
    await cleanup();
    throw error;
  }
  return { replicas, cleanup };
}

/** A set-up call, tried again (up to 5 times, a second apart) on a network error, 429 or 5xx. */
async function setupCall(t: Target, method: string, path: string, token: string, body: unknown): Promise<any> {
  for (let attempt = 1; ; attempt++) {
    const answer = await call(t, method, path, token, body).catch((error: Error) => ({
      status: 0,
      body: error.message,
    }));
    if (answer.status > 0 && answer.status < 300) return answer.body;
    if (attempt === 5 || (answer.status >= 300 && answer.status < 500 && answer.status !== 429))
      throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
    setupRetries++;
    await sleep(1000);
  }
}
let setupRetries = 0;

async function uploadPackage(url: string, clusterId: string): Promise<string> {
  const form = new FormData();
  form.set('mode', 'upload-only');
  form.set('file', new Blob([packageArchive()]), 'package.tar.gz');
  const res = await fetch(`${url}/api/v1/clusters/${clusterId}/packages`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN}` },
    body: form,
  });
  if (!res.ok) throw new Error(`upload: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** Runs `work(n)` for n in [0, count), `concurrency` at a time, printing progress every 15 s. */
async function inParallel(
  count: number,
  concurrency: number,
  label: string,
  work: (n: number) => Promise<void>,
  extra: () => string,
): Promise<number> {
  const start = performance.now();
  let next = 0;
  let done = 0;
  let lastReport = start;
  const worker = async () => {
    for (let n = next++; n < count; n = next++) {
      await work(n);
      done++;
      const now = performance.now();
      if (now - lastReport > 15_000) {
        lastReport = now;
        console.log(
          `  set-up: ${done} agents ${label} in ${((now - start) / 1000).toFixed(0)} s (${(done / ((now - start) / 1000)).toFixed(0)}/s)${extra()}`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return (performance.now() - start) / 1000;
}

/**
 * Registers every agent, then pairs them, through the API, `SETUP_CONCURRENCY` calls at a time per
 * replica (agent n on replica n % replicas, in cluster n % clusters). A registered agent that never
 * paired is never offline, so registering first keeps the heartbeat load out of that half; an agent
 * starts polling as soon as it is paired, as a real one would, so the load grows while the rest pair.
 */
async function setUp(
  targets: Target[],
  clusterIds: string[],
  fleet: SimulatedFleet,
  clusterOf: Uint16Array,
): Promise<{ registerS: number; pairS: number }> {
  const keys: string[] = new Array(AGENTS);
  const concurrency = SETUP_CONCURRENCY * targets.length;
  const registerS = await inParallel(
    AGENTS,
    concurrency,
    'registered',
    async (n) => {
      const registered = await setupCall(
        targets[n % targets.length],
        'POST',
        `/api/v1/clusters/${clusterIds[n % clusterIds.length]}/agents`,
        ADMIN,
        { name: `agent-${n}`, address: `agent-${n}.bench`, role: 'standalone' },
      );
      keys[n] = registered.pairingKey;
    },
    () => '',
  );
  const pairS = await inParallel(
    AGENTS,
    concurrency,
    'paired',
    async (n) => {
      const paired = await setupCall(targets[n % targets.length], 'POST', '/api/v1/agent/pair', '', {
        pairingKey: keys[n],
        version: '1.0.0',
        facts: { os: 'linux', arch: 'x64', freeDiskMb: 51200, memoryMb: 8192 },
      });
      clusterOf[fleet.add(paired.agentId, paired.token, '1.0.0', paired.pollAfterMs)] = n % clusterIds.length;
    },
    () => `, ${fleet.totalHeartbeats} heartbeats so far`,
  );
  return { registerS, pairS };
}

const WHERE = values.db === 'sqlite' ? 'SQLite' : `PostgreSQL, ${REPLICAS} replica(s)`;

/**
 * Watches for agents that go offline without being made to: every 10 s, each cluster's offline
 * agents (?state=offline, on the agents' (clusterId, state) index), and again at the end. Not
 * GET /api/v1/clusters: its version counts read every agent's row, about 450 ms on the event loop
 * at 100,000 agents, which would be the bench's own doing in every latency figure.
 */
class OfflineMonitor {
  readonly stopped = new Set<string>();
  private readonly seenOffline = new Set<string>();
  calls = 0;
  private busy = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly t: Target,
    private readonly clusterIds: string[],
  ) {
    this.timer = setInterval(() => void this.check(), 10_000);
  }

  madeToStop(agentId: string): void {
    this.stopped.add(agentId);
  }

  private async check(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const clusterId of this.clusterIds)
        for (const id of await offlineIn(this.t, clusterId)) if (!this.stopped.has(id)) this.seenOffline.add(id);
      this.calls++;
    } catch (error) {
      console.error(`monitor: ${(error as Error).message}`);
    } finally {
      this.busy = false;
    }
  }

  /** Stops watching; returns the agents offline now, and those that went offline without being made to. */
  async finish(): Promise<{ offlineNow: Set<string>; unexpected: Set<string> }> {
    this.stop();
    const offlineNow = new Set<string>();
    for (const id of this.clusterIds) for (const agentId of await offlineIn(this.t, id)) offlineNow.add(agentId);
    const unexpected = new Set([...this.seenOffline, ...[...offlineNow].filter((id) => !this.stopped.has(id))]);
    return { offlineNow, unexpected };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

interface Run {
  servers: Servers;
  targets: Target[];
  fleet: SimulatedFleet;
  clusterOf: Uint16Array;
  clusterIds: string[];
  packageId: string;
  monitor: OfflineMonitor;
}

interface Window {
  seconds: number;
  stats: WindowStats;
  serverFigures: ReturnType<ProcessMeter['stop']>;
  clientCpuS: number;
  loadAtStart: number;
  loadAtEnd: number;
  victims: number[];
  stoppedAt: number;
  upgradeId: string;
  upgradeCluster: number;
}

/** The measured window: a handful of agents stop, the upgrade starts, the rest poll on. */
async function measureWindow(run: Run): Promise<Window> {
  const { fleet, clusterOf, targets, clusterIds } = run;
  const victims: number[] = [];
  for (let i = fleet.size - 1; i >= 0 && victims.length < STOP; i--) if (clusterOf[i] !== 0) victims.push(i);
  for (const i of victims) {
    fleet.stopAgent(i);
    run.monitor.madeToStop(fleet.ids[i]);
  }
  const stoppedAt = performance.now();
  const meter = new ProcessMeter(run.servers.replicas.map((r) => r.pid));
  const clientCpu = process.cpuUsage();
  fleet.resetStats();
  const loadAtStart = loadavg()[0];
  const windowStart = performance.now();
  const upgrade = await admin(targets[0], 'POST', `/api/v1/clusters/${clusterIds[0]}/upgrades`, {
    packageId: run.packageId,
    target: { all: true },
    options: { maxParallel: values['max-parallel'] },
  });
  const upgradeCluster = fleet.ids.filter((_, i) => clusterOf[i] === 0).length;
  console.log(
    `window: ${DURATION_S} s from now; ${victims.length} agents stopped; upgrade ${upgrade.id} of cluster fleet-0 (${upgradeCluster} agents, maxParallel ${values['max-parallel']}) started`,
  );
  let lastProgress = performance.now();
  while (performance.now() - windowStart < DURATION_S * 1000) {
    await sleep(Math.min(1000, DURATION_S * 1000 - (performance.now() - windowStart)));
    if (performance.now() - lastProgress >= 30_000) {
      lastProgress = performance.now();
      const s = fleet.stats;
      const seconds = (performance.now() - windowStart) / 1000;
      console.log(
        `  ${seconds.toFixed(0)} s: ${(s.heartbeats / seconds).toFixed(0)} heartbeats/s, ${s.commandsTaken} commands taken, latency from due p99 so far ${ms(s.fromDue.percentile(99))} ms`,
      );
    }
  }
  const seconds = (performance.now() - windowStart) / 1000;
  const loadAtEnd = loadavg()[0];
  const stats = fleet.resetStats();
  const serverFigures = meter.stop();
  const clientUse = process.cpuUsage(clientCpu);
  return {
    seconds,
    stats,
    serverFigures,
    clientCpuS: (clientUse.user + clientUse.system) / 1e6,
    loadAtStart,
    loadAtEnd,
    victims,
    stoppedAt,
    upgradeId: upgrade.id,
    upgradeCluster,
  };
}

/** Prints the window's figures beside the baselines. */
function printFigures(
  run: Run,
  w: Window,
  bare: Measured & { serverCpu: number },
  ceiling: Measured,
  setupLine: string,
) {
  const live = AGENTS - w.victims.length;
  const lockstep: Measured = {
    seconds: w.seconds,
    served: w.stats.heartbeats / w.seconds,
    asked: live / POLL_S,
    stats: w.stats,
  };
  const clientMem = process.memoryUsage();
  const replicas = run.servers.replicas;
  console.log('');
  console.log(
    `bare node:http, same fleet and pace (baseline, ${bare.seconds.toFixed(0)} s): ${describe(bare)}   server CPU ${bare.serverCpu.toFixed(0)}% of one core`,
  );
  console.log(
    `bare node:http, pollAfterMs 0 (the client's ceiling, ${ceiling.seconds.toFixed(0)} s): ${ceiling.served.toFixed(0)} heartbeats/s, on the wire p50 ${ms(ceiling.stats.onWire.percentile(50))} ms p99 ${ms(ceiling.stats.onWire.percentile(99))} ms`,
  );
  console.log(`lockstep (${WHERE}, ${w.seconds.toFixed(0)} s): ${describe(lockstep)}`);
  w.serverFigures.forEach((f, k) =>
    console.log(
      `  server${replicas.length > 1 ? ` replica ${k + 1}` : ''} (pid ${replicas[k].pid}): CPU ${f.cpuPercent.toFixed(0)}% of one core (${((f.cpuPercent * 10) / (w.stats.heartbeats / w.seconds / replicas.length)).toFixed(2)} ms a heartbeat, all its work counted; the event loop's thread ${f.loopCpuPercent.toFixed(0)}%), RSS ${MB(f.lastRss)} at the end (peak ${MB(f.peakRss)})`,
    ),
  );
  console.log(
    `  client: CPU ${((w.clientCpuS / w.seconds) * 100).toFixed(0)}% of one core, RSS ${MB(clientMem.rss)} (heap ${MB(clientMem.heapUsed)}) for ${AGENTS} agents`,
  );
  console.log(
    `  machine: load average ${w.loadAtStart.toFixed(1)} at the window's start, ${w.loadAtEnd.toFixed(1)} at its end, on ${cpus().length} cores (other processes included)`,
  );
  console.log(`  ${setupLine}`);
}

/** Checks while the fleet still polls: the upgrade's progress, and which agents are offline. */
async function printChecks(run: Run, w: Window): Promise<void> {
  const { targets, fleet, clusterOf, clusterIds } = run;
  const { offlineNow, unexpected } = await run.monitor.finish();
  const stoppedOffline = [...run.monitor.stopped].filter((id) => offlineNow.has(id)).length;
  const dueOfflineS = TIMEOUT_S + SWEEP_S + 2;
  const stoppedForS = (performance.now() - w.stoppedAt) / 1000;
  const finalUpgrade = await admin(targets[0], 'GET', `/api/v1/upgrades/${w.upgradeId}`);
  const byStatus: Record<string, number> = {};
  for (const step of (finalUpgrade.steps ?? []) as Array<{ status: string }>)
    byStatus[step.status] = (byStatus[step.status] ?? 0) + 1;
  const upgradedClient = fleet.versions.filter((v, i) => clusterOf[i] === 0 && v === '1.1.0').length;
  const clusterView: Array<{ id: string; versions: Record<string, number> }> = await admin(
    targets[0],
    'GET',
    '/api/v1/clusters',
  );
  const serverVersions = clusterView.find((c) => c.id === clusterIds[0])?.versions ?? {};
  console.log(
    `upgrade of fleet-0 (${w.upgradeCluster} agents): ${finalUpgrade.status}, ${finalUpgrade.percent}% after ${w.seconds.toFixed(0)} s; steps ${JSON.stringify(byStatus)}; ` +
      `${w.stats.commandsTaken} commands taken, ${w.stats.reportsFailed} reports failed; ${upgradedClient} agents report 1.1.0 (server: ${JSON.stringify(serverVersions)})`,
  );
  console.log(
    `offline not made to: ${unexpected.size}${unexpected.size ? ` (${[...unexpected].slice(0, 5).join(', ')}${unexpected.size > 5 ? ', ...' : ''})` : ''}   (?state=offline in every cluster: ${run.monitor.calls} times, every 10 s, and at the end)`,
  );
  const victims = w.victims.length;
  console.log(
    stoppedForS >= dueOfflineS
      ? `made to stop: ${victims}, offline ${stoppedOffline} of them after ${stoppedForS.toFixed(0)} s (due after HEARTBEAT_TIMEOUT_S ${TIMEOUT_S} s + sweep): ${stoppedOffline === victims ? 'all' : 'NOT all'}`
      : `made to stop: ${victims}, offline ${stoppedOffline} of them after ${stoppedForS.toFixed(0)} s: not checkable, the window is shorter than HEARTBEAT_TIMEOUT_S ${TIMEOUT_S} s + sweep (pass --poll ${Math.max(1, Math.floor((stoppedForS - SWEEP_S - 2) / 3))} or a longer --duration)`,
  );
}

async function createClusters(targets: Target[], url: string): Promise<{ clusterIds: string[]; packageId: string }> {
  const clusterIds: string[] = [];
  for (let c = 0; c < CLUSTERS; c++)
    clusterIds.push(
      (await admin(targets[0], 'POST', '/api/v1/clusters', { name: `fleet-${c}`, product: 'acme-agent' })).id,
    );
  return { clusterIds, packageId: await uploadPackage(url, clusterIds[0]) };
}

async function main(): Promise<void> {
  console.log(
    `bench/fleet: ${AGENTS} agents in ${CLUSTERS} clusters polling every ${POLL_S} s (AGENT_POLL_S=${POLL_S}, HEARTBEAT_TIMEOUT_S=${TIMEOUT_S}) against Lockstep on ${WHERE}, ` +
      `${DURATION_S} s measured; ${CONNECTIONS} keep-alive connections per server; ${cpus().length} cores`,
  );

  // Baselines first, with nothing else running.
  const bare = await baseline(POLL_S * 1000, BASELINE_S);
  const ceiling = await baseline(0, 5);

  const servers = await startServers();
  const targets = servers.replicas.map((r) => target(r.url, CONNECTIONS));
  const fleet = new SimulatedFleet(AGENTS, {
    targets,
    connections: CONNECTIONS,
    phaseDelayMs: Number(values['phase-delay-ms']),
    phases: PHASES,
  });
  let monitor: OfflineMonitor | undefined;
  try {
    const { clusterIds, packageId } = await createClusters(targets, servers.replicas[0].url);
    const clusterOf = new Uint16Array(AGENTS);
    fleet.start();
    const { registerS, pairS } = await setUp(targets, clusterIds, fleet, clusterOf);
    const setupLine = `set-up ${(registerS + pairS).toFixed(1)} s for ${AGENTS} agents through the API, ${SETUP_CONCURRENCY} calls at a time per server: registered in ${registerS.toFixed(1)} s (${(AGENTS / registerS).toFixed(0)}/s), paired in ${pairS.toFixed(1)} s (${(AGENTS / pairS).toFixed(0)}/s, the paired ones polling meanwhile: ${fleet.totalHeartbeats} heartbeats); ${setupRetries} calls tried again`;
    console.log(setupLine);
    monitor = new OfflineMonitor(targets[0], clusterIds);
    const run: Run = { servers, targets, fleet, clusterOf, clusterIds, packageId, monitor };
    await sleep(WARMUP_S * 1000);
    const window = await measureWindow(run);
    printFigures(run, window, bare, ceiling, setupLine);
    await printChecks(run, window);
  } finally {
    monitor?.stop();
    await fleet.close();
    await servers.cleanup();
  }
}

/** Ids of a cluster's agents whose state is offline, every page. */
async function offlineIn(t: Target, clusterId: string): Promise<string[]> {
  const ids: string[] = [];
  for (let offset = 0; ; offset += 5000) {
    const page: { items: Array<{ id: string }>; total: number } = await admin(
      t,
      'GET',
      `/api/v1/clusters/${clusterId}/agents?state=offline&limit=5000&offset=${offset}`,
    );
    ids.push(...page.items.map((a) => a.id));
    if (page.items.length < 5000) return ids;
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
