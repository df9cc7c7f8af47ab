/**
 * npm run demo [-- --fail-migration AGENT]
 *
 * Starts Lockstep on a throwaway SQLite folder, six real reference agents (two failover pairs and
 * two standalone) at 1.0.0, builds and uploads a 1.1.0 package whose migration changes their data,
 * previews and runs a backup-first-switchback upgrade while drawing each agent's progress from the
 * upgrade's event stream, prints where everything ended, and removes all it started. It listens on
 * PORT when that is set (on 127.0.0.1), else on any free port.
 */
import 'reflect-metadata';
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EventSource } from 'eventsource';
import { buildPackage } from '../src/agent/build-package';
import { commandLineOrExit, parseCommandLine } from '../src/agent/cli';
import { createApp } from '../src/app.factory';
import { loadConfig } from '../src/config/app-config';

const ROOT = path.resolve(__dirname, '..');
const SAMPLE = path.join(ROOT, 'src', 'agent', 'sample-product');
const AGENTS = [
  { name: 'pair-a-main', role: 'main', failoverGroup: 'pair-a' },
  { name: 'pair-a-backup', role: 'backup', failoverGroup: 'pair-a' },
  { name: 'pair-b-main', role: 'main', failoverGroup: 'pair-b' },
  { name: 'pair-b-backup', role: 'backup', failoverGroup: 'pair-b' },
  { name: 'solo-1', role: 'standalone' },
  { name: 'solo-2', role: 'standalone' },
] as const;

const DEMO_USAGE = `usage: npm run demo [-- --fail-migration AGENT]
Starts Lockstep on a throwaway folder with six reference agents (two failover pairs, two standalone)
on 1.0.0, uploads 1.1.0 and upgrades them backup-first with switchback while printing each agent's
progress, then removes everything it started. Listens on PORT when it is set.

  --fail-migration AGENT    make AGENT's data migration fail, to watch a rollback and the switchback
                            (one of: ${AGENTS.map((a) => a.name).join(', ')})
  -h, --help                this text
  --version                 the version of Lockstep`;

const { 'fail-migration': failMigration } = commandLineOrExit(
  'lockstep demo',
  DEMO_USAGE,
  parseCommandLine(process.argv.slice(2), { 'fail-migration': { type: 'string' } }, (values) => {
    const agent = values['fail-migration'] as string | undefined;
    return agent && !AGENTS.some((a) => a.name === agent)
      ? `--fail-migration takes one of: ${AGENTS.map((a) => a.name).join(', ')}`
      : { 'fail-migration': agent };
  }),
);

const tty = process.stdout.isTTY;
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const say = (s = '') => console.log(s);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-demo-'));
const children: ChildProcess[] = [];
let closeApp: (() => Promise<void>) | null = null;
let cleaning: Promise<void> | null = null;

/** Stops every agent and the server and removes the temp folder; runs once, on any way out. */
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode) return resolve();
            const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
            child.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
    await closeApp?.().catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // `on`, not `once`: a second Ctrl-C (or the one the shell forwards) must not kill the clean-up.
  process.on(signal, () => {
    if (cleaning) return;
    say('\ninterrupted: stopping the agents and the server, removing the temp folder');
    void cleanUp().then(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  // The server, in this process, on a throwaway SQLite folder.
  const admin = `lsk_demo-${randomBytes(16).toString('hex')}`;
  // PORT is read (and refused, if wrong) as the server reads it; unset, any free port will do.
  const port = process.env.PORT?.trim() ? loadConfig({ PORT: process.env.PORT }).port : 0;
  const app = await createApp(
    loadConfig({
      DATA_DIR: path.join(work, 'server'),
      LOCKSTEP_ADMIN_TOKEN: admin,
      HEARTBEAT_TIMEOUT_S: '5',
      LOG_LEVEL: 'fatal',
    }),
  );
  await app.listen(port, '127.0.0.1');
  closeApp = () => app.close();
  const server = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
  const api = async <T = Record<string, any>>(method: string, route: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${server}${route}`, {
      method,
      headers: { Authorization: `Bearer ${admin}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = (await res.json().catch(() => ({}))) as T;
    if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  say(bold(`Lockstep is up at ${server} (data in ${work})`));

  const seed = await buildPackage({
    dir: SAMPLE,
    product: 'acme-agent',
    version: '1.0.0',
    migration: 'migrate.js',
    out: path.join(work, 'acme-agent-1.0.0.tar.gz'),
  });
  const next = await buildPackage({
    dir: SAMPLE,
    product: 'acme-agent',
    version: '1.1.0',
    from: '>=1.0.0 <1.1.0',
    migration: 'migrate.js',
    notes: 'migrates records to 1.1.0',
    out: path.join(work, 'acme-agent-1.1.0.tar.gz'),
  });

  const cluster = await api('POST', '/api/v1/clusters', { name: 'demo', product: 'acme-agent' });
  const ids = new Map<string, string>();
  const homes = new Map<string, string>();
  for (const spec of AGENTS) {
    const registered = await api('POST', `/api/v1/clusters/${cluster.id}/agents`, {
      name: spec.name,
      address: `${spec.name}.demo.lan`,
      role: spec.role,
      ...('failoverGroup' in spec ? { failoverGroup: spec.failoverGroup } : {}),
    });
    ids.set(spec.name, registered.id);
    const home = path.join(work, 'agents', spec.name);
    homes.set(spec.name, home);
    fs.mkdirSync(path.join(home, 'data'), { recursive: true });
    fs.writeFileSync(
      path.join(home, 'data', 'records.json'),
      JSON.stringify({ schema: '1.0.0', records: [{ id: 1, host: spec.name }, { id: 2 }, { id: 3 }] }, null, 2),
    );
    if (spec.name === failMigration)
      fs.writeFileSync(path.join(home, 'data', 'FAIL_MIGRATION'), 'set by --fail-migration');
    const child = spawn(
      process.execPath,
      [
        '-r',
        'ts-node/register/transpile-only',
        path.join(ROOT, 'src', 'agent', 'main.ts'),
        '--server',
        server,
        '--pairing-key',
        registered.pairingKey,
        '--home',
        home,
        '--seed',
        seed,
      ],
      {
        cwd: ROOT,
        stdio: [
          'ignore',
          fs.openSync(path.join(work, `${spec.name}.log`), 'a'),
          fs.openSync(path.join(work, `${spec.name}.log`), 'a'),
        ],
      },
    );
    children.push(child);
  }
  say(
    `started ${AGENTS.length} reference agents (two failover pairs, two standalone) at 1.0.0; waiting for them to pair...`,
  );
  await waitFor(
    async () => {
      const agents = (
        await api<{ items: Array<{ version: string | null; state: string }> }>(
          'GET',
          `/api/v1/clusters/${cluster.id}/agents`,
        )
      ).items;
      return agents.every((a) => a.version === '1.0.0' && a.state === 'idle');
    },
    60_000,
    'the agents to pair and report 1.0.0',
  );

  const form = new FormData();
  form.set('mode', 'upload-only');
  form.set('file', new Blob([fs.readFileSync(next)]), path.basename(next));
  const uploaded = await fetch(`${server}/api/v1/clusters/${cluster.id}/packages`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${admin}` },
    body: form,
  });
  const pkg = (await uploaded.json()) as Record<string, any>;
  if (uploaded.status !== 201) throw new Error(`upload refused: ${JSON.stringify(pkg)}`);
  say(
    `uploaded ${pkg.product} ${pkg.version} (${pkg.size} bytes, sha256 ${String(pkg.sha256).slice(0, 12)}...): ${pkg.status}`,
  );

  const request = { packageId: pkg.id, target: { all: true }, policy: 'backup-first-switchback' };
  const preview = await api('POST', `/api/v1/clusters/${cluster.id}/upgrades/preview`, request);
  const nameOf = new Map([...ids].map(([name, id]) => [id, name]));
  say(
    bold(
      `\nplan (${preview.resolvedPolicy}, ${preview.units} units, ${preview.batches} batch${preview.batches === 1 ? '' : 'es'}):`,
    ),
  );
  for (const line of planLines(preview.steps as PreviewStep[], nameOf)) say(line);
  for (const warning of preview.warnings as Array<{ message: string }>) say(`  warning: ${warning.message}`);

  const upgrade = await api('POST', `/api/v1/clusters/${cluster.id}/upgrades`, request);
  say(bold(`\nupgrade ${upgrade.id}: watching its event stream\n`));
  const finalStatus = await watch(server, admin, upgrade.id, nameOf);

  say(bold(`\nupgrade ${finalStatus}. Where everything ended:`));
  const agents = (await api<{ items: Array<Record<string, any>> }>('GET', `/api/v1/clusters/${cluster.id}/agents`))
    .items;
  for (const spec of AGENTS) {
    const agent = agents.find((a) => a.id === ids.get(spec.name))!;
    const records = JSON.parse(fs.readFileSync(path.join(homes.get(spec.name)!, 'data', 'records.json'), 'utf8')) as {
      schema: string;
    };
    const pair = spec.role === 'standalone' ? '' : agent.active ? 'active ' : 'standby';
    say(
      `  ${spec.name.padEnd(14)} version ${agent.version}  ${agent.versionStatus.padEnd(8)} ${pair.padEnd(7)}  data schema ${records.schema}${records.schema === '1.1.0' ? ' (migrated)' : ' (as before)'}`,
    );
  }
  if (failMigration)
    say(
      `\n${failMigration}'s migration failed on purpose: it rolled back to 1.0.0 with its data restored, and its pair stayed served.`,
    );
}

interface PreviewStep {
  id: string;
  kind: string;
  agentId: string;
  fromAgentId: string | null;
  failoverGroup: string | null;
  batch: number;
  dependsOn: string[];
  runWhen: 'succeeded' | 'failed' | 'ended';
}

/** The plan in words: who does what, and after which step (a preview's step ids are the keys dependsOn names). */
function planLines(steps: PreviewStep[], nameOf: Map<string, string>): string[] {
  const name = (id: string | null) => (id ? (nameOf.get(id) ?? id) : '?');
  const byKey = new Map(steps.map((s) => [s.id, s]));
  const title = (key: string) => {
    const s = byKey.get(key);
    if (!s) return key;
    return s.kind === 'upgrade' ? `the upgrade of ${name(s.agentId)}` : `${s.failoverGroup}'s ${s.kind}`;
  };
  return steps.map((step) => {
    const what =
      step.kind === 'switchover'
        ? `takes over from ${name(step.fromAgentId)}`
        : step.kind === 'switchback'
          ? `takes back over from ${name(step.fromAgentId)}`
          : '';
    const deps = step.dependsOn.map(title).join(' and ');
    // runWhen: a switchback runs once the upgrade before it ended, even a failed one (switchBackOnFailure).
    const when = !deps
      ? ''
      : step.runWhen === 'succeeded'
        ? `after ${deps}`
        : step.runWhen === 'ended'
          ? `after ${deps}, whatever its outcome`
          : `if ${deps} failed`;
    return `  batch ${step.batch}  ${step.kind.padEnd(10)} ${name(step.agentId).padEnd(14)} ${[what, when].filter(Boolean).join(', ')}`.trimEnd();
  });
}

/**
 * Draws one progress line per agent from the upgrade's SSE stream until the upgrade ends. On a
 * terminal the lines are redrawn in place; in a log, a step's line is written when it changed.
 */
function watch(server: string, token: string, upgradeId: string, nameOf: Map<string, string>): Promise<string> {
  const rows = new Map<string, string>([...nameOf.values()].map((name) => [name, 'waiting']));
  const printed = new Map<string, string>(); // per step: its last line in the log
  let drawn = 0;
  const draw = () => {
    if (tty && drawn) process.stdout.write(`\x1b[${drawn}A`);
    for (const [name, text] of rows) process.stdout.write(`${tty ? '\x1b[2K' : ''}  ${name.padEnd(14)} ${text}\n`);
    drawn = rows.size;
  };
  return new Promise((resolve, reject) => {
    const source = new EventSource(`${server}/api/v1/upgrades/${upgradeId}/events?lastEventId=0`, {
      fetch: (input, init) =>
        fetch(input, {
          ...init,
          headers: { ...(init?.headers as Record<string, string>), Authorization: `Bearer ${token}` },
        }),
    });
    const timeout = setTimeout(() => {
      source.close();
      reject(new Error('the upgrade did not end within 3 minutes'));
    }, 180_000);
    source.addEventListener('task.progress', (e) => {
      const d = (JSON.parse(e.data) as { data: Record<string, any> }).data;
      const name = nameOf.get(d.agentId) ?? d.agentId;
      const bar = (p: number) => `[${'#'.repeat(Math.round(p / 5)).padEnd(20, '.')}] ${String(p).padStart(3)}%`;
      const what = d.kind === 'upgrade' ? '' : `${d.kind} `;
      // An upgrade shows its phase; a switchover or switchback is its own one phase, so its kind says it.
      const doing = d.kind === 'upgrade' ? (d.phase ?? 'starting') : d.kind;
      // A rolled-back step's error already begins "rolled back, data intact": the status is not said twice.
      const status = d.error?.startsWith(String(d.status).replace('-', ' '))
        ? d.error
        : `${d.status}${d.waitingFor ? ` for ${d.waitingFor}` : ''}${d.error ? `: ${d.error}` : ''}`;
      rows.set(
        name,
        d.status === 'running'
          ? `${bar(d.percent)} ${doing}`
          : `${d.status === 'succeeded' ? bar(100) : ' '.repeat(26)} ${what}${status}`,
      );
      if (tty) draw();
      else if ((d.status !== 'running' || d.phase) && printed.get(d.stepId) !== rows.get(name)) {
        // Progress that changed only the agent's message (downloaded 50%...) would repeat the line.
        printed.set(d.stepId, rows.get(name)!);
        say(`  ${name.padEnd(14)} ${rows.get(name)}`);
      }
    });
    // The stream ends with the upgrade: `end` comes after its last event (a running step's outcome
    // too), carrying the final status; EventSource would reconnect if it were not closed here.
    source.addEventListener('end', (e) => {
      const d = JSON.parse(e.data) as { status: string };
      clearTimeout(timeout);
      source.close();
      if (tty) draw();
      resolve(d.status);
    });
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

main().then(
  () => cleanUp().then(() => process.exit(0)),
  (error: Error) => {
    console.error(`demo failed: ${error.message}`);
    void cleanUp().then(() => process.exit(1));
  },
);
