import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ShutdownState } from '../src/common/graceful-stop';
import { EventStreams } from '../src/progress/event-streams';
import { packageArchive } from './support/archives';
import { freePort } from './support/free-port';
import { givenCluster, givenNamedAgents } from './support/builders';
import { Fleet, obedient } from './support/fleet';
import { TestApp } from './support/test-app';

/**
 * The `lockstep` command line (src/cli) as a real child process against a real server, as a build
 * pipeline runs it: output is not a terminal, so the byte bar and the agents' bars become lines.
 * Fake agents answer commands over the real protocol (test/support/fleet.ts) while `watch` follows.
 */
const ROOT = path.resolve(__dirname, '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('the lockstep command line [sqlite]', () => {
  let t: TestApp;
  let work: string;
  let operator: string;
  let cluster: { id: string; name: string };
  let fleet: Fleet;

  /** Starts `lockstep ...args`; the token comes from the environment, as the docs show. */
  const launch = (args: string[], env: Record<string, string | undefined> = {}) => {
    const child = spawn(
      process.execPath,
      ['-r', require.resolve('ts-node/register/transpile-only'), path.join(ROOT, 'src', 'cli', 'main.ts'), ...args],
      {
        cwd: work,
        env: {
          PATH: process.env.PATH,
          TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json'),
          LOCKSTEP_URL: t.baseUrl,
          LOCKSTEP_TOKEN: operator,
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const run: Run = { code: null, stdout: '', stderr: '' };
    child.stdout.on('data', (chunk: Buffer) => (run.stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
    const done = new Promise<Run>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve({ ...run, code }));
    });
    /** Resolves once stderr shows `text` (or the command ended). */
    const printed = (text: string) =>
      new Promise<void>((resolve) => {
        const check = () => (run.stderr.includes(text) ? resolve() : undefined);
        child.stderr.on('data', check);
        void done.then(() => resolve());
        check();
      });
    return { done, printed };
  };

  /** Runs `lockstep ...args` to its exit. */
  const lockstep = (args: string[], env: Record<string, string | undefined> = {}): Promise<Run> =>
    launch(args, env).done;

  /** The exit code, with what the command printed when it is not the one expected. */
  const exitsWith = (run: Run, code: number) =>
    expect(`exit ${run.code}\n${run.stderr}`).toMatch(new RegExp(`^exit ${code}\n`));

  /** Writes a package for acme-agent `version` to the work folder; returns its file name. */
  const packageFile = (version: string, fields: Record<string, unknown> = {}) => {
    const file = `acme-agent-${version}.tar.gz`;
    fs.writeFileSync(path.join(work, file), packageArchive({ version, ...fields }));
    return file;
  };

  /** Starts an upgrade through the CLI (--json), returns its id. */
  const start = async (args: string[]): Promise<string> => {
    const run = await lockstep(['upgrades', 'start', '--cluster', cluster.name, '--json', ...args]);
    exitsWith(run, 0);
    return (JSON.parse(run.stdout) as { id: string }).id;
  };

  /** `watch` in the background while the fleet answers commands until the upgrade stops. */
  const watchWhileFleetRuns = async (id: string, until: string[], extra: string[] = []): Promise<Run> => {
    const watching = launch(['upgrades', 'watch', id, ...extra]);
    // The agents move once the watcher follows, so that it sees every step, not just the end.
    await watching.printed(`watching upgrade ${id}`);
    await fleet.until(id, until);
    return watching.done;
  };

  beforeAll(async () => {
    t = await TestApp.start('sqlite');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-cli-'));
    operator = await t.tokenFor('operator', 'cli');
    cluster = await givenCluster(t);
    const { members } = await givenNamedAgents(t, cluster.id, ['app-1', 'app-2', 'g1-main', 'g1-backup']);
    fleet = new Fleet(t, members);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('uploads with progress lines (not a terminal), then says the same bytes are already there', async () => {
    const file = packageFile('1.1.0', { prerequisites: { fromVersion: '>=1.0.0 <1.1.0' } });
    const first = await lockstep(['packages', 'upload', file, '--cluster', cluster.name]);
    exitsWith(first, 0);
    expect(first.stdout).toMatch(/^uploaded: acme-agent 1\.1\.0 \(full\), available, id [0-9a-f-]{36}$/m);
    expect(first.stderr).toMatch(/^upload 100% \(\d+ of \d+ bytes\)$/m);
    expect(first.stderr).not.toMatch(/\x1b\[/); // no terminal control codes in a log

    const again = await lockstep(['packages', 'upload', file, '--cluster', cluster.id, '--json']);
    exitsWith(again, 0);
    expect(JSON.parse(again.stdout)).toMatchObject({ version: '1.1.0', status: 'available' });
  }, 60_000);

  it('prints a prerequisite refusal as the server words it, with a row per agent, and exits 1', async () => {
    const file = packageFile('3.0.0', { prerequisites: { fromVersion: '>=2.0.0' } });
    const run = await lockstep(['packages', 'upload', file, '--cluster', cluster.name]);
    exitsWith(run, 1);
    expect(run.stderr).toContain("PREREQUISITES_UNMET: 4 agents of the cluster fail the package's prerequisites");
    for (const name of ['app-1', 'app-2', 'g1-main', 'g1-backup'])
      expect(run.stderr).toMatch(new RegExp(`^${name}\\s+fromVersion\\s+>=2\\.0\\.0\\s+1\\.0\\.0\\s+fails$`, 'm'));
    const list = await lockstep(['packages', 'list', '--cluster', cluster.name, '--json']);
    expect((JSON.parse(list.stdout) as Array<{ version: string }>).map((p) => p.version)).toEqual(['1.1.0']);
  }, 60_000);

  it('previews the plan by batch, with the switchover, and creates nothing', async () => {
    const run = await lockstep([
      'upgrades',
      'preview',
      '--cluster',
      cluster.name,
      '--package',
      '1.1.0',
      '--policy',
      'backup-first',
    ]);
    exitsWith(run, 0);
    expect(run.stdout).toMatch(/^policy backup-first: 3 unit\(s\) in \d+ batch\(es\)$/m);
    expect(run.stdout).toMatch(/^batch 1$/m);
    expect(run.stdout).toMatch(/^ {2}switchover {2}g1-backup takes over from g1-main$/m);
    const list = await lockstep(['upgrades', 'list', '--cluster', cluster.name, '--json']);
    expect(JSON.parse(list.stdout)).toEqual([]);
  }, 60_000);

  it('lists and previews agents by label (--label, repeatable), and says when no agent carries it', async () => {
    const ids = Object.fromEntries(
      (await t.admin.get(`/api/v1/clusters/${cluster.id}/agents`).expect(200)).body.items.map(
        (a: { name: string; id: string }) => [a.name, a.id],
      ),
    );
    await t.admin
      .patch(`/api/v1/agents/${ids['app-1']}`)
      .send({ labels: { site: 'eu-1', tier: 'web' } })
      .expect(200);
    await t.admin
      .patch(`/api/v1/agents/${ids['app-2']}`)
      .send({ labels: { site: 'eu-1', tier: 'db' } })
      .expect(200);
    try {
      const listed = await lockstep(['agents', 'list', '--cluster', cluster.name, '--label', 'site=eu-1', '--json']);
      exitsWith(listed, 0);
      expect((JSON.parse(listed.stdout) as Array<{ name: string }>).map((a) => a.name).sort()).toEqual([
        'app-1',
        'app-2',
      ]);
      const both = await lockstep([
        'agents',
        'list',
        '--cluster',
        cluster.name,
        '--label',
        'site=eu-1',
        '--label',
        'tier=db',
      ]);
      exitsWith(both, 0);
      expect(both.stdout).toMatch(/^app-2 .* site=eu-1,tier=db /m);
      expect(both.stdout).not.toMatch(/^app-1 /m);

      const preview = await lockstep([
        'upgrades',
        'preview',
        '--cluster',
        cluster.name,
        '--package',
        '1.1.0',
        '--label',
        'tier=web',
      ]);
      exitsWith(preview, 0);
      expect(preview.stdout.match(/^ {2}upgrade {5}\S+$/gm)).toEqual(['  upgrade     app-1']);

      const none = await lockstep([
        'upgrades',
        'preview',
        '--cluster',
        cluster.name,
        '--package',
        '1.1.0',
        '--label',
        'site=eu-9',
      ]);
      exitsWith(none, 1);
      expect(none.stderr).toContain('No agent of this cluster has labels site=eu-9');
      const twice = await lockstep([
        'agents',
        'list',
        '--cluster',
        cluster.name,
        '--label',
        'site=a',
        '--label',
        'site=b',
      ]);
      exitsWith(twice, 2);
      expect(twice.stderr).toContain('site given twice (a and b)');
    } finally {
      for (const id of [ids['app-1'], ids['app-2']]) await t.admin.patch(`/api/v1/agents/${id}`).send({ labels: {} });
    }
  }, 60_000);

  it('starts an upgrade and watches it to success: exit 0, a line per agent as it moves', async () => {
    const id = await start(['--package', '1.1.0', '--policy', 'backup-first']);
    const run = await watchWhileFleetRuns(id, ['succeeded']);
    exitsWith(run, 0);
    expect(run.stderr).toMatch(new RegExp(`^upgrade ${id} succeeded at 100%$`, 'm'));
    for (const name of ['app-1', 'app-2', 'g1-main', 'g1-backup'])
      expect(run.stderr).toMatch(new RegExp(`^${name}: succeeded`, 'm'));
    const clusterNow = await lockstep(['clusters', 'show', cluster.name, '--json']);
    expect(JSON.parse(clusterNow.stdout)).toMatchObject({ consistent: true, versions: { '1.1.0': 4 } });
  }, 120_000);

  it('watches a failing upgrade to a non-zero exit, each event a JSON line with --json', async () => {
    const file = packageFile('1.2.0', { prerequisites: { fromVersion: '>=1.1.0 <1.2.0' } });
    exitsWith(await lockstep(['packages', 'upload', file, '--cluster', cluster.name]), 0);
    const id = await start(['--package', '1.2.0', '--agents', 'app-1']);
    fleet.behaviour = (name, command) =>
      command.type === 'upgrade'
        ? { status: 'rolled-back', error: 'verify failed: port 8080 closed' }
        : obedient(name, command);
    try {
      const run = await watchWhileFleetRuns(id, ['failed'], ['--json']);
      exitsWith(run, 3);
      const events = run.stdout
        .trim()
        .split('\n')
        .map(
          (line) => JSON.parse(line) as { id: number; type: string; upgradeId?: string; data: Record<string, unknown> },
        );
      expect(events.at(-1)).toMatchObject({ type: 'end', data: { status: 'failed', upgradeId: id } });
      // Every line but the end is an event as the API shows it (EventDto), the step's error in it.
      const failedStep = events.find((e) => e.type === 'task.progress' && e.data.error !== null);
      expect(failedStep).toMatchObject({
        upgradeId: id,
        data: { error: expect.stringContaining('verify failed: port 8080 closed') },
      });
    } finally {
      fleet.behaviour = obedient;
    }
  }, 120_000);

  it('stops watching at a canary pause with its own exit code, so a pipeline can gate on it', async () => {
    const file = packageFile('1.2.1', { prerequisites: { fromVersion: '>=1.1.0 <1.2.1' } });
    exitsWith(await lockstep(['packages', 'upload', file, '--cluster', cluster.name]), 0);
    const id = await start(['--package', '1.2.1', '--agents', 'app-2,g1-main,g1-backup', '--option', 'canary=1']);
    const run = await watchWhileFleetRuns(id, ['paused']);
    exitsWith(run, 6);
    expect(run.stderr).toMatch(new RegExp(`^upgrade ${id} paused at \\d+%: .*canary`, 'mi'));
    const resumed = await lockstep(['upgrades', 'resume', id]);
    exitsWith(resumed, 0);
    expect(resumed.stdout).toMatch(new RegExp(`^upgrade ${id} (running|scheduled)`, 'm'));
    await fleet.until(id, ['succeeded']);
  }, 120_000);

  it('rolls an upgrade back: --preview prints the steps and changes nothing; watch exits 9 once rolled back', async () => {
    const other = await givenCluster(t);
    const { members } = await givenNamedAgents(t, other.id, ['r-main', 'r-backup']);
    const own = new Fleet(t, members);
    exitsWith(await lockstep(['packages', 'upload', packageFile('1.1.0'), '--cluster', other.name]), 0);
    const started = await lockstep(['upgrades', 'start', '--cluster', other.name, '--package', '1.1.0', '--json']);
    exitsWith(started, 0);
    const id = (JSON.parse(started.stdout) as { id: string }).id;
    await own.until(id, ['succeeded']);

    const preview = await lockstep(['upgrades', 'rollback', id, '--preview']);
    exitsWith(preview, 0);
    // The standby first, a switchover to it, then the member that served, which takes back over.
    const rows = preview.stdout.split('\n').filter((l) => /^\s*1\s/.test(l));
    expect(rows.map((l) => l.trim().split(/\s+/).slice(1, 3).join(' '))).toEqual([
      'rollback r-backup',
      'switchover r-backup',
      'rollback r-main',
      'switchover r-main',
    ]);
    expect((await t.admin.get(`/api/v1/upgrades/${id}`)).body.status).toBe('succeeded');

    const rolled = await lockstep(['upgrades', 'rollback', id]);
    exitsWith(rolled, 0);
    expect(rolled.stdout).toMatch(new RegExp(`^upgrade ${id} rolling-back: 4 rollback step\\(s\\) planned`, 'm'));
    const watching = launch(['upgrades', 'watch', id]);
    await watching.printed(`watching upgrade ${id}`);
    await own.until(id, ['rolled-back']);
    const watched = await watching.done;
    exitsWith(watched, 9);
    expect(watched.stderr).toMatch(new RegExp(`^upgrade ${id} rolled-back`, 'm'));
    exitsWith(await lockstep(['upgrades', 'rollback', id]), 1);
  }, 120_000);

  it('keeps watching across a replica that stops: a 503 SHUTTING_DOWN is retried, resuming with Last-Event-ID', async () => {
    const file = packageFile('1.3.0', { prerequisites: { fromVersion: '>=1.1.0 <1.3.0' } });
    exitsWith(await lockstep(['packages', 'upload', file, '--cluster', cluster.name]), 0);
    const id = await start(['--package', '1.3.0', '--agents', 'app-1']);
    const watching = launch(['upgrades', 'watch', id, '--timeout', '60']);
    await watching.printed(`watching upgrade ${id}`);
    // What a stopping process does to its viewers and to the reconnects that follow.
    const shutdown = t.app.get(ShutdownState);
    shutdown.stopping = true;
    t.app.get(EventStreams, { strict: false }).beforeApplicationShutdown();
    await watching.printed('the server answered 503');
    shutdown.stopping = false;
    await watching.printed('reconnected; resuming after event');
    await fleet.until(id, ['succeeded']);
    const run = await watching.done;
    exitsWith(run, 0);
    expect(run.stderr).toMatch(new RegExp(`^upgrade ${id} succeeded at 100%$`, 'm'));
  }, 120_000);

  it('explains what is missing: no token (8), an unknown cluster (1), a wrong command line (2), no server (7)', async () => {
    const noToken = await lockstep(['clusters', 'list'], { LOCKSTEP_TOKEN: undefined });
    exitsWith(noToken, 8);
    expect(noToken.stderr).toContain('set LOCKSTEP_TOKEN');

    const unknown = await lockstep(['agents', 'list', '--cluster', 'no-such-cluster']);
    exitsWith(unknown, 1);
    expect(unknown.stderr).toContain('no cluster named "no-such-cluster"');

    const revoked = await lockstep(['clusters', 'list'], { LOCKSTEP_TOKEN: 'lsk_not-a-token-00000000000000000000' });
    exitsWith(revoked, 8);
    expect(revoked.stderr).toContain('TOKEN_UNKNOWN: This token is not known to Lockstep');

    const closedPort = await freePort(); // nothing listens there
    const down = await lockstep(['clusters', 'list'], { LOCKSTEP_URL: `http://127.0.0.1:${closedPort}` });
    exitsWith(down, 7);
    expect(down.stderr).toContain(`cannot reach Lockstep at http://127.0.0.1:${closedPort}: ECONNREFUSED`);

    const wrong = await lockstep(['upgrades', 'start', '--cluster', cluster.name]);
    exitsWith(wrong, 2);
    expect(wrong.stderr).toContain("required option '--package <package>' not specified");
  }, 60_000);

  it('lists agents for scripts with --json, filtered by state', async () => {
    const run = await lockstep(['agents', 'list', '--cluster', cluster.name, '--state', 'idle', '--json']);
    exitsWith(run, 0);
    const agents = JSON.parse(run.stdout) as Array<{ name: string; state: string }>;
    expect(agents.map((a) => a.name).sort()).toEqual(['app-1', 'app-2', 'g1-backup', 'g1-main']);
    expect(new Set(agents.map((a) => a.state))).toEqual(new Set(['idle']));
  }, 60_000);
});
