import { type Dispatcher, Pool } from 'undici';

/**
 * Many simulated agents in one process, speaking the agent protocol (docs/agent-protocol.md) over
 * a bounded pool of keep-alive connections per server. Each agent polls at the `pollAfterMs` its
 * last answer named, counted from that answer (as the reference agent does), takes each command
 * once, reports progress per phase and then success naming the version it installed, and reports
 * the old version on its heartbeats until then.
 *
 * State per agent is kept in flat arrays (token, version, due time), so 100,000 agents cost a few
 * tens of MB. Due agents wait in a ring buffer until one of the `connections` slots is free: the
 * latency "from due" is what the agent lives through (queueing in this client included), "on the
 * wire" is from the request's start to its answer.
 */

export interface Target {
  origin: string;
  pool: Pool;
}

/**
 * A pool of keep-alive connections to one server. undici, not node:http's client: it costs about
 * a third of the CPU per call, and the simulator shares the machine with the server it measures.
 */
export function target(url: string, connections: number): Target {
  // A few more sockets than heartbeat slots, so command reports are never stuck behind heartbeats.
  return { origin: url, pool: new Pool(url, { connections: connections + 16, pipelining: 1 }) };
}

interface Answer {
  status: number;
  body: any;
}

/** One JSON call (with a bearer token unless `token` is empty); rejects on a network error only (any status resolves). */
export async function call(t: Target, method: string, path: string, token: string, body?: unknown): Promise<Answer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const answer = await t.pool.request({
    method: method as Dispatcher.HttpMethod,
    path,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: payload,
  });
  const text = await answer.body.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: kept as text
  }
  return { status: answer.statusCode, body: parsed };
}

/** Latencies in milliseconds, in a growable typed array (a million samples are 8 MB). */
export class Samples {
  private data = new Float64Array(1 << 16);
  count = 0;
  add(ms: number): void {
    if (this.count === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.count++] = ms;
  }
  percentile(p: number): number {
    if (this.count === 0) return NaN;
    const sorted = this.data.slice(0, this.count).sort();
    return sorted[Math.min(this.count - 1, Math.floor((p / 100) * this.count))];
  }
}

/** What a window of the run saw. */
export interface WindowStats {
  heartbeats: number;
  /** Of them, those that came a second after the last (the agent had a command or was held). */
  urgent: number;
  errors: number;
  non2xx: number;
  commandsTaken: number;
  reportsFailed: number;
  fromDue: Samples;
  onWire: Samples;
}

const newStats = (): WindowStats => ({
  heartbeats: 0,
  urgent: 0,
  errors: 0,
  non2xx: 0,
  commandsTaken: 0,
  reportsFailed: 0,
  fromDue: new Samples(),
  onWire: new Samples(),
});

interface Command {
  id: string;
  type: string;
  toVersion?: string;
  version?: string;
}

const SLOT_MS = 20;
const SLOTS = 8192; // 164 s of slots; a later due time waits its turn for more rounds

export interface FleetOptions {
  /** The servers; agent i talks to servers[i % servers.length]. */
  targets: Target[];
  /** Heartbeats in flight at most, per server. */
  connections: number;
  /** Seconds between a command's progress reports (one per phase), then its end. */
  phaseDelayMs: number;
  phases: Array<[string, number]>;
}

export class SimulatedFleet {
  readonly tokens: string[] = [];
  readonly ids: string[] = [];
  readonly versions: string[] = [];
  private due: Float64Array;
  private started: Float64Array;
  private flags: Uint8Array; // 1: stopped, 2: removed
  private urgent: Uint8Array; // the last answer asked for the next heartbeat in a second
  private queues: Int32Array[];
  private heads: number[];
  private tails: number[];
  private inflight: number[];
  private wheel: number[][] = Array.from({ length: SLOTS }, () => []);
  private wheelCursor = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly takenCommands = new Set<string>();
  private readonly reportsInFlight = new Set<Promise<void>>();
  stats: WindowStats = newStats();
  /** Whole-run counts (not reset with the window). */
  totalHeartbeats = 0;

  constructor(
    capacity: number,
    private readonly options: FleetOptions,
  ) {
    this.due = new Float64Array(capacity);
    this.started = new Float64Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.urgent = new Uint8Array(capacity);
    this.queues = options.targets.map(() => new Int32Array(capacity + 1));
    this.heads = options.targets.map(() => 0);
    this.tails = options.targets.map(() => 0);
    this.inflight = options.targets.map(() => 0);
  }

  get size(): number {
    return this.tokens.length;
  }

  serverOf(i: number): number {
    return i % this.options.targets.length;
  }

  /** Adds a paired agent; its first heartbeat comes within `firstWithinMs` (agents start at random times). */
  add(id: string, token: string, version: string, firstWithinMs: number): number {
    const i = this.tokens.length;
    this.ids.push(id);
    this.tokens.push(token);
    this.versions.push(version);
    this.schedule(i, performance.now() + Math.random() * firstWithinMs);
    return i;
  }

  start(): void {
    this.wheelCursor = Math.floor(performance.now() / SLOT_MS);
    this.timer = setInterval(() => this.tick(), SLOT_MS);
  }

  /** Stops the agent for good: it never calls again. */
  stopAgent(i: number): void {
    this.flags[i] |= 1;
  }

  /** Starts a new measuring window; returns the one that ends. */
  resetStats(): WindowStats {
    const ended = this.stats;
    this.stats = newStats();
    return ended;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (let i = 0; i < this.flags.length; i++) this.flags[i] |= 1;
    await Promise.allSettled([...this.reportsInFlight]);
    for (const t of this.options.targets) void t.pool.destroy();
  }

  private schedule(i: number, at: number): void {
    this.due[i] = at;
    const slot = Math.max(Math.floor(at / SLOT_MS), this.wheelCursor);
    this.wheel[slot % SLOTS].push(i);
  }

  private tick(): void {
    const nowSlot = Math.floor(performance.now() / SLOT_MS);
    for (; this.wheelCursor <= nowSlot; this.wheelCursor++) {
      const bucket = this.wheel[this.wheelCursor % SLOTS];
      if (bucket.length === 0) continue;
      const later: number[] = [];
      const limit = (this.wheelCursor + 1) * SLOT_MS;
      for (const i of bucket) {
        if (this.flags[i]) continue;
        if (this.due[i] >= limit)
          later.push(i); // due in a later round of the wheel
        else this.enqueue(i);
      }
      this.wheel[this.wheelCursor % SLOTS] = later;
    }
    for (let s = 0; s < this.options.targets.length; s++) this.pump(s);
  }

  private enqueue(i: number): void {
    const s = this.serverOf(i);
    const q = this.queues[s];
    q[this.tails[s]] = i;
    this.tails[s] = (this.tails[s] + 1) % q.length;
  }

  private pump(s: number): void {
    const q = this.queues[s];
    while (this.inflight[s] < this.options.connections && this.heads[s] !== this.tails[s]) {
      const i = q[this.heads[s]];
      this.heads[s] = (this.heads[s] + 1) % q.length;
      if (this.flags[i]) continue;
      this.inflight[s]++;
      void this.heartbeat(i).finally(() => {
        this.inflight[s]--;
        this.pump(s);
      });
    }
  }

  private async heartbeat(i: number): Promise<void> {
    const t = this.options.targets[this.serverOf(i)];
    const sent = performance.now();
    let next = 1000; // after an error: try again in a second
    try {
      const answer = await call(t, 'POST', '/api/v1/agent/heartbeat', this.tokens[i], {
        version: this.versions[i],
        busy: false,
      });
      const now = performance.now();
      if (answer.status === 200) {
        this.stats.heartbeats++;
        if (this.urgent[i]) this.stats.urgent++;
        this.totalHeartbeats++;
        this.stats.fromDue.add(now - this.due[i]);
        this.stats.onWire.add(now - sent);
        next = answer.body.pollAfterMs;
        this.urgent[i] = next <= 1000 ? 1 : 0;
        if (answer.body.removed) this.flags[i] |= 2;
        for (const command of answer.body.commands as Command[]) this.take(i, command);
      } else {
        this.stats.non2xx++;
      }
    } catch {
      this.stats.errors++;
    }
    if (!this.flags[i]) this.schedule(i, performance.now() + next);
  }

  /** Runs a command once: a progress report per phase, `phaseDelayMs` apart, then its end. */
  private take(i: number, command: Command): void {
    if (this.takenCommands.has(command.id)) return;
    this.takenCommands.add(command.id);
    this.stats.commandsTaken++;
    const run = (async () => {
      const t = this.options.targets[this.serverOf(i)];
      const sleep = () => new Promise((r) => setTimeout(r, this.options.phaseDelayMs));
      const report = async (path: string, body: unknown) => {
        for (let attempt = 0; attempt < 5; attempt++) {
          if (this.flags[i] & 1) return false;
          const answer = await call(t, 'POST', path, this.tokens[i], body).catch(() => ({
            status: 0,
            body: undefined,
          }));
          if (answer.status === 200) return true;
          if (answer.status !== 0 && answer.status < 500) break;
          await sleep();
        }
        this.stats.reportsFailed++;
        return false;
      };
      const installed = command.type === 'upgrade' ? command.toVersion! : this.versions[i];
      for (const [phase, percent] of command.type === 'upgrade' ? this.options.phases : []) {
        await sleep();
        if (!(await report(`/api/v1/agent/commands/${command.id}/progress`, { phase, percent }))) return;
      }
      await sleep();
      if (await report(`/api/v1/agent/commands/${command.id}/complete`, { status: 'succeeded', version: installed }))
        this.versions[i] = installed;
    })();
    this.reportsInFlight.add(run);
    void run.finally(() => this.reportsInFlight.delete(run));
  }
}
