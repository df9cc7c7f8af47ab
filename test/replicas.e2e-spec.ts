import { slowUpload } from './support/slow-upload';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageArchive } from './support/archives';
import { createTestDatabase, postgresServerUrl, withClient } from './support/postgres';
import { eventually, StreamClient } from './support/sse-client';

const ROOT = path.resolve(__dirname, '..');
const ADMIN = 'lsk_replica-test-admin-0123456789abcdef';
const pg = postgresServerUrl();

/** A Lockstep process, as a replica runs (ts-node here, so the test needs no build). */
class Replica {
  readonly output: string[] = [];
  /** The process's exit: its code, or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  static async start(env: Record<string, string>): Promise<Replica> {
    const port = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (server.address() as net.AddressInfo).port;
        server.close(() => resolve(p));
      });
    });
    const child = spawn(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', path.join(ROOT, 'src', 'main.ts')],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          HOST: '127.0.0.1',
          PORT: String(port),
          LOG_LEVEL: 'warn',
          LOG_FORMAT: 'text',
          LOCKSTEP_ADMIN_TOKEN: ADMIN,
          HEARTBEAT_TIMEOUT_S: '5',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const replica = new Replica(`http://127.0.0.1:${port}`, child);
    for (const s of [child.stdout!, child.stderr!]) s.on('data', (b: Buffer) => replica.output.push(b.toString()));
    await eventually(
      async () => (await fetch(`${replica.url}/health/ready`).catch(() => null))?.ok === true,
      `replica on ${port} to be ready`,
      60_000,
    );
    return replica;
  }

  kill(signal: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode) return Promise.resolve();
    this.child.kill(signal);
    return this.exited.then(() => undefined);
  }
}

/**
 * An agent on the real protocol that talks to whichever replica `base()` names, as behind a load
 * balancer, and records every command it is given.
 */
class HttpAgent {
  readonly commands = new Map<string, { type: string; stepId?: string }>();
  token = '';
  version = '1.0.0';
  constructor(
    readonly name: string,
    private readonly base: () => string,
  ) {}

  private async call(method: string, route: string, body?: unknown): Promise<any> {
    const res = await fetch(`${this.base()}${route}`, {
      method,
      headers: { 'Content-Type': 'application/json', ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`${this.name} ${method} ${route}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }

  async pair(key: string): Promise<void> {
    this.token = (
      await this.call('POST', '/api/v1/agent/pair', {
        pairingKey: key,
        version: this.version,
        facts: { os: 'linux', freeDiskMb: 9000 },
      })
    ).token;
  }

  /** One heartbeat; every new command is recorded and done at once. */
  async beat(): Promise<void> {
    const answer = await this.call('POST', '/api/v1/agent/heartbeat', { version: this.version, busy: false });
    for (const command of answer.commands as Array<Record<string, any>>) {
      if (this.commands.has(command.id)) continue;
      this.commands.set(command.id, { type: command.type, stepId: command.stepId });
      await this.call('POST', `/api/v1/agent/commands/${command.id}/progress`, { phase: 'install', percent: 50 });
      await this.call('POST', `/api/v1/agent/commands/${command.id}/complete`, {
        status: 'succeeded',
        version: command.toVersion,
      });
      this.version = command.toVersion;
    }
  }
}

/** An operator's call to one replica; anything but 2xx throws. */
async function admin(base: string, method: string, route: string, body?: unknown): Promise<any> {
  const res = await fetch(`${base}${route}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/**
 * A cluster of four standalone agents on 1.0.0, made through the replica `target()` names then;
 * the agents speak to whichever replica it names at each call (a test moves them).
 */
async function clusterOfFour(name: string, target: () => string): Promise<{ cluster: any; agents: HttpAgent[] }> {
  const cluster = await admin(target(), 'POST', '/api/v1/clusters', { name, product: 'acme-agent' });
  const agents: HttpAgent[] = [];
  for (let i = 0; i < 4; i++) {
    const registered = await admin(target(), 'POST', `/api/v1/clusters/${cluster.id}/agents`, {
      name: `agent-${i}`,
      address: `agent-${i}.lan`,
      role: 'standalone',
    });
    const agent = new HttpAgent(`agent-${i}`, target);
    await agent.pair(registered.pairingKey);
    await agent.beat();
    agents.push(agent);
  }
  return { cluster, agents };
}

/** An upgrade's steps, as a replica answers them. */
const stepsOf = async (base: string, upgradeId: string) =>
  (await admin(base, 'GET', `/api/v1/upgrades/${upgradeId}`)).steps as Array<{ status: string; attempts: number }>;

/**
 * A package uploaded and an upgrade of every agent started, one unit at a time, through `target`;
 * the agents beat until two of its steps are done (as `watch` reads them from `reader`).
 */
async function halfwayUpgrade(
  target: string,
  reader: string,
  clusterId: string,
  agents: HttpAgent[],
): Promise<{ id: string }> {
  const form = new FormData();
  form.set('mode', 'upload-only');
  form.set('file', new Blob([packageArchive()]), 'p.tar.gz');
  const pkg = (await (
    await fetch(`${target}/api/v1/clusters/${clusterId}/packages`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ADMIN}` },
      body: form,
    })
  ).json()) as { id: string };
  const upgrade = (await admin(target, 'POST', `/api/v1/clusters/${clusterId}/upgrades`, {
    packageId: pkg.id,
    target: { all: true },
    options: { maxParallel: 1, failureThreshold: 0 },
  })) as { id: string };
  await eventually(
    async () => {
      for (const agent of agents) await agent.beat();
      return (await stepsOf(reader, upgrade.id)).filter((s) => s.status === 'succeeded').length >= 2;
    },
    'two steps done through the first replica',
    30_000,
  );
  return upgrade;
}

const describeWithPostgres = pg ? describe : describe.skip;

describeWithPostgres('two replicas on one PostgreSQL [postgres]', () => {
  let db: { url: string; drop: () => Promise<void> };
  let dataDir: string;
  const replicas: Replica[] = [];
  /** Streams a case opened, closed after it even when it fails (an EventSource reconnects forever). */
  const streams: StreamClient[] = [];

  beforeAll(async () => {
    db = await createTestDatabase(pg!);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-replicas-'));
  });
  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.close();
    // Each case starts its own two: one left running would lead (run the executor) in the next.
    await Promise.all(replicas.splice(0).map((r) => r.kill('SIGTERM')));
  });
  afterAll(async () => {
    await db.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** Two replicas sharing the database and DATA_DIR (the package store), as the README says replicas must. */
  const startTwo = async (): Promise<[Replica, Replica]> => {
    const env = { DATABASE_URL: db.url, DATA_DIR: dataDir };
    for (let i = 0; i < 2; i++) replicas.push(await Replica.start(env));
    return [replicas[0], replicas[1]];
  };

  it('a replica killed mid-upgrade loses nothing: the other finishes it, no step twice, no event missed', async () => {
    const [first, second] = await startTwo();

    let target = first.url;
    const { cluster, agents } = await clusterOfFour('replicated', () => target);
    // The viewer is on the second replica from the start; everything else goes to the first.
    const viewer = new StreamClient(`${second.url}/api/v1/clusters/${cluster.id}/events`, {
      token: ADMIN,
      lastEventId: 0,
    });
    await viewer.opened;

    const upgrade = await halfwayUpgrade(target, second.url, cluster.id, agents);
    const steps = () => stepsOf(second.url, upgrade.id);

    await first.kill('SIGKILL');
    target = second.url; // the load balancer sends everything to the survivor
    await eventually(
      async () => {
        for (const agent of agents) await agent.beat();
        return (await admin(second.url, 'GET', `/api/v1/upgrades/${upgrade.id}`)).status === 'succeeded';
      },
      'the second replica to finish the upgrade',
      60_000,
    );

    const final = await steps();
    expect(final.map((s) => s.attempts)).toEqual([1, 1, 1, 1]);
    for (const agent of agents) {
      expect([...agent.commands.values()].filter((c) => c.type === 'upgrade')).toHaveLength(1);
      expect(agent.version).toBe('1.1.0');
    }

    // Every event of the cluster, in order, none missing, none twice.
    const stored = await withClient(db.url, async (c) =>
      (
        await c.query<{ id: string }>('SELECT id FROM events WHERE "clusterId" = $1 ORDER BY id', [cluster.id])
      ).rows.map((r) => Number(r.id)),
    );
    await viewer.waitFor((events) => events.length >= stored.length);
    viewer.close();
    expect(viewer.events.map((e) => e.id)).toEqual(stored);
  }, 180_000);

  it("an agent token revoked through one replica is refused by the other at once (its cache is told), also after the listeners' connections were cut", async () => {
    const [first, second] = await startTwo();
    const cluster = await admin(first.url, 'POST', '/api/v1/clusters', { name: 'revocations', product: 'acme-agent' });
    const registered = await admin(first.url, 'POST', `/api/v1/clusters/${cluster.id}/agents`, {
      name: 'agent-0',
      address: 'agent-0.lan',
      role: 'standalone',
    });
    const agent = new HttpAgent('agent-0', () => second.url);

    /** A new pairing key through the first replica revokes the token the second has just verified and cached. */
    const revokeThroughFirst = async () => {
      const old = agent.token;
      await agent.beat(); // the second replica checks the token now, and keeps it (10 minutes while told of revocations)
      const { pairingKey } = await admin(first.url, 'POST', `/api/v1/agents/${registered.id}/pairing-key`);
      const heartbeat = (token: string) =>
        fetch(`${second.url}/api/v1/agent/heartbeat`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
          body: JSON.stringify({ version: '1.0.0', busy: false }),
        });
      // Agent tokens are cached 10 minutes: only the notification can have made this so soon.
      await eventually(
        async () => (await heartbeat(old)).status === 401,
        'the old token refused by the second replica',
        1000,
      );
      expect(((await (await heartbeat(old)).json()) as { code: string }).code).toBe('TOKEN_REVOKED');
      await agent.pair(pairingKey);
      expect((await heartbeat(agent.token)).status).toBe(200);
    };

    await agent.pair(registered.pairingKey);
    await revokeThroughFirst();

    // Both listeners lose their connection: each forgets what it cached, reconnects and listens again.
    await withClient(db.url, (c) =>
      c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lockstep-listen'"),
    );
    await eventually(
      async () =>
        withClient(
          db.url,
          async (c) =>
            (
              await c.query(
                "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'lockstep-listen'",
              )
            ).rows[0].n === 2,
        ),
      'both replicas to listen again',
      10_000,
    );
    await revokeThroughFirst();
  }, 120_000);

  it('a replica stopped by SIGTERM mid-upgrade: its request in flight is answered, it exits 0 in time, its viewer resumes on the other and misses nothing', async () => {
    // The default grace: what the test does during the stop (the viewer moving, the rest of the
    // upload) must fit in it on a slow machine. The stop ends as soon as the upload is answered.
    const GRACE_S = 10;
    const env = { DATABASE_URL: db.url, DATA_DIR: dataDir };
    // LOG_LEVEL log: the stop's and the leadership's lines are what the test reads.
    const first = await Replica.start({ ...env, LOG_LEVEL: 'log', SHUTDOWN_GRACE_S: String(GRACE_S) });
    replicas.push(first);
    const second = await Replica.start({ ...env, LOG_LEVEL: 'log' });
    replicas.push(second);
    // The first started alone, so it leads: the stop hands the executor over too.
    expect(first.output.join('')).toContain('this replica now runs the periodic jobs');
    expect(second.output.join('')).not.toContain('this replica now runs the periodic jobs');

    let target = first.url;
    const { cluster, agents } = await clusterOfFour('stopped-gracefully', () => target);
    // A viewer of the cluster on the first replica (the one to stop), from its first event; and the
    // same stream read raw, for the bytes it ends with.
    const streamPath = `/api/v1/clusters/${cluster.id}/events`;
    const viewer = new StreamClient(`${first.url}${streamPath}`, { token: ADMIN, lastEventId: 0 });
    streams.push(viewer);
    await viewer.opened;
    const raw = await fetch(`${first.url}${streamPath}`, { headers: { Authorization: `Bearer ${ADMIN}` } });
    expect(raw.status).toBe(200);
    const rawText = raw.text();

    const upgrade = await halfwayUpgrade(target, second.url, cluster.id, agents);
    const steps = () => stepsOf(second.url, upgrade.id);

    // An upload to the first replica, half sent: in flight when the signal comes.
    const upload = slowUpload(
      first.port,
      `/api/v1/clusters/${cluster.id}/packages`,
      ADMIN,
      packageArchive({ version: '1.2.0', prerequisites: { fromVersion: '>=1.0.0 <1.2.0' } }),
    );
    await upload.halfSent;

    expect(viewer.errors).toEqual([]); // the stream has not dropped before
    const signalledAt = Date.now();
    const stopped = first.kill('SIGTERM');
    target = second.url; // the load balancer sends the agents to the other replica from now on

    // The stop ends the viewer's stream at once, with a retry hint of half a second...
    await eventually(() => viewer.errors.length >= 1, "the viewer's stream to end", 5000);
    const endedAt = Date.now();
    expect(await rawText).toMatch(/\nretry: 500\n\n$/);
    // ...which the real client obeys: it tries the first replica again about 500 ms later (not the
    // 3 s the stream opened with), and is refused there (503 SHUTTING_DOWN, or the port is closed).
    await eventually(() => viewer.errors.length >= 2, 'the viewer to try the stopping replica again', 2500);
    expect(Date.now() - endedAt).toBeLessThan(2500);
    // Readiness says the same to a load balancer.
    const ready = await fetch(`${first.url}/health/ready`).then(
      (r) => String(r.status),
      () => 'connection refused',
    );
    expect(['503', 'connection refused']).toContain(ready);
    // The load balancer takes the viewer to the second replica: a new stream there, resuming after
    // the last event it received, as a browser's EventSource does with Last-Event-ID.
    viewer.close();
    const resumedAfter = viewer.lastId!;
    expect(resumedAfter).toBeGreaterThan(0);
    const resumed = new StreamClient(`${second.url}${streamPath}`, { token: ADMIN, lastEventId: resumedAfter });
    streams.push(resumed);
    await resumed.opened;

    // The upload in flight is answered (stored: 201), then the first replica exits 0 within its bound.
    upload.sendRest();
    expect(await upload.answer).toMatchObject({ status: 201, body: { version: '1.2.0', status: 'available' } });
    await stopped;
    expect(await first.exited).toEqual({ code: 0, signal: null });
    const stopMs = Date.now() - signalledAt;
    // Within the grace: the upload's answer, given during the stop, closes its connection, so
    // nothing in flight is left to cut.
    expect(stopMs).toBeLessThan(GRACE_S * 1000);
    const firstLog = first.output.join('');
    expect(firstLog).not.toContain('cutting them');
    expect(firstLog).toContain('SIGTERM received: stopping');
    expect(firstLog).toMatch(/\[Lockstep\] stopped/);

    // The second replica takes the lead and, with the agents now talking to it, finishes the upgrade.
    await eventually(
      async () => {
        for (const agent of agents) await agent.beat();
        return (await admin(second.url, 'GET', `/api/v1/upgrades/${upgrade.id}`)).status === 'succeeded';
      },
      'the second replica to finish the upgrade',
      30_000,
    );
    // The lock the first let go of is taken within the second's next try (every 2 s).
    await eventually(
      () => second.output.join('').includes('this replica now runs the periodic jobs'),
      'the second replica to take the lead',
      5000,
    );
    expect((await steps()).map((s) => s.attempts)).toEqual([1, 1, 1, 1]);
    for (const agent of agents) {
      expect([...agent.commands.values()].filter((c) => c.type === 'upgrade')).toHaveLength(1);
      expect(agent.version).toBe('1.1.0');
    }

    // Across both streams the viewer got every event of the cluster, in order, none missing, none
    // twice: among them the upload's, committed by the first replica after its streams had ended.
    const stored = await withClient(db.url, async (c) =>
      (
        await c.query<{ id: string; type: string }>('SELECT id, type FROM events WHERE "clusterId" = $1 ORDER BY id', [
          cluster.id,
        ])
      ).rows.map((r) => ({ id: Number(r.id), type: r.type })),
    );
    await resumed.waitFor((events) => viewer.events.length + events.length >= stored.length);
    resumed.close();
    const received = [...viewer.events, ...resumed.events].map((e) => ({ id: e.id, type: e.type }));
    expect(received).toEqual(stored);
    expect(viewer.events.length).toBeGreaterThan(0);
    // (What the stream carries is the event as the API shows it; its own fields are under `data`.)
    const uploaded = resumed.events.filter((e) => e.type === 'package.status').map((e) => e.data.data);
    expect(uploaded).toContainEqual(expect.objectContaining({ version: '1.2.0', status: 'available' }));
    expect(resumed.events[0].id).toBeGreaterThan(resumedAfter);
  }, 60_000);
});
