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
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
  ) {}

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
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill(signal);
    });
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

const describeWithPostgres = pg ? describe : describe.skip;

describeWithPostgres('two replicas on one PostgreSQL [postgres]', () => {
  let db: { url: string; drop: () => Promise<void> };
  let dataDir: string;
  const replicas: Replica[] = [];

  beforeAll(async () => {
    db = await createTestDatabase(pg!);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-replicas-'));
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.kill('SIGTERM')));
    await db.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('a replica killed mid-upgrade loses nothing: the other finishes it, no step twice, no event missed', async () => {
    // Both share the database and DATA_DIR (the package store), as the README says replicas must.
    const env = { DATABASE_URL: db.url, DATA_DIR: dataDir };
    const first = await Replica.start(env);
    replicas.push(first);
    const second = await Replica.start(env);
    replicas.push(second);
    const admin = async (base: string, method: string, route: string, body?: unknown): Promise<any> => {
      const res = await fetch(`${base}${route}`, {
        method,
        headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };

    let target = first.url;
    const cluster = await admin(target, 'POST', '/api/v1/clusters', { name: 'replicated', product: 'acme-agent' });
    const agents: HttpAgent[] = [];
    for (let i = 0; i < 4; i++) {
      const registered = await admin(target, 'POST', `/api/v1/clusters/${cluster.id}/agents`, {
        name: `agent-${i}`,
        address: `agent-${i}.lan`,
        role: 'standalone',
      });
      const agent = new HttpAgent(`agent-${i}`, () => target);
      await agent.pair(registered.pairingKey);
      await agent.beat();
      agents.push(agent);
    }
    // The viewer is on the second replica from the start; everything else goes to the first.
    const viewer = new StreamClient(`${second.url}/api/v1/clusters/${cluster.id}/events`, {
      token: ADMIN,
      lastEventId: 0,
    });
    await viewer.opened;

    const form = new FormData();
    form.set('mode', 'upload-only');
    form.set('file', new Blob([packageArchive()]), 'p.tar.gz');
    const pkg: any = await (
      await fetch(`${target}/api/v1/clusters/${cluster.id}/packages`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${ADMIN}` },
        body: form,
      })
    ).json();
    const upgrade = await admin(target, 'POST', `/api/v1/clusters/${cluster.id}/upgrades`, {
      packageId: pkg.id,
      target: { all: true },
      options: { maxParallel: 1, failureThreshold: 0 },
    });

    const steps = async () =>
      (await admin(second.url, 'GET', `/api/v1/upgrades/${upgrade.id}`)).steps as Array<{
        status: string;
        attempts: number;
      }>;
    await eventually(
      async () => {
        for (const agent of agents) await agent.beat();
        return (await steps()).filter((s) => s.status === 'succeeded').length >= 2;
      },
      'two steps done through the first replica',
      30_000,
    );

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
});
