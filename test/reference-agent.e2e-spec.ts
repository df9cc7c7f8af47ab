import { createHash, randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildPackage } from '../src/agent/build-package';
import { downloadPackage } from '../src/agent/download';
import { folderChecksum } from '../src/testing/folder-checksum';
import { AgentProcess } from './support/agent-process';
import { givenAgent, givenCluster } from './support/builders';
import { eventually } from './support/sse-client';
import { TestApp } from './support/test-app';

const SAMPLE = path.resolve(__dirname, '..', 'src', 'agent', 'sample-product');

/** The real reference agent as child processes against a real server on SQLite. */
describe('reference agent [sqlite]', () => {
  let t: TestApp;
  let work: string;
  let seed: string;
  let next: string;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    t = await TestApp.start('sqlite', { env: { HEARTBEAT_TIMEOUT_S: '5' } });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-agents-'));
    seed = await buildPackage({
      dir: SAMPLE,
      product: 'acme-agent',
      version: '1.0.0',
      migration: 'migrate.js',
      out: path.join(work, 'acme-1.0.0.tar.gz'),
    });
    next = await buildPackage({
      dir: SAMPLE,
      product: 'acme-agent',
      version: '1.1.0',
      from: '>=1.0.0 <1.1.0',
      migration: 'migrate.js',
      out: path.join(work, 'acme-1.1.0.tar.gz'),
    });
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await t.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** Registers agents, starts each as a process on a home seeded with 1.0.0 and some data, and waits until all report 1.0.0. */
  async function startAgents(
    clusterId: string,
    specs: Array<{
      name: string;
      role?: 'main' | 'backup';
      group?: string;
      busyFile?: string;
      failMigration?: boolean;
      slowMigration?: boolean;
      webapps?: string;
      rebootCommand?: string;
      serviceCommand?: string;
    }>,
  ) {
    const started: Record<string, { id: string; home: string; process: AgentProcess; pairingKey: string }> = {};
    for (const spec of specs) {
      const registered = await givenAgent(t, clusterId, {
        name: spec.name,
        ...(spec.role ? { role: spec.role, failoverGroup: spec.group } : {}),
      });
      const home = path.join(work, spec.name);
      fs.mkdirSync(path.join(home, 'data'), { recursive: true });
      fs.writeFileSync(
        path.join(home, 'data', 'records.json'),
        JSON.stringify({ schema: '1.0.0', records: [{ id: 1, name: spec.name }, { id: 2 }] }),
      );
      if (spec.failMigration) fs.writeFileSync(path.join(home, 'data', 'FAIL_MIGRATION'), 'yes');
      if (spec.slowMigration) fs.writeFileSync(path.join(home, 'data', 'SLOW_MIGRATION'), 'yes');
      if (spec.webapps) fs.writeFileSync(path.join(home, 'webapps.json'), JSON.stringify({ version: spec.webapps }));
      const agent = new AgentProcess({
        server: t.baseUrl,
        pairingKey: registered.pairingKey,
        home,
        seed,
        busyFile: spec.busyFile,
        rebootCommand: spec.rebootCommand,
        serviceCommand: spec.serviceCommand,
      });
      agents.push(agent);
      started[spec.name] = { id: registered.id, home, process: agent, pairingKey: registered.pairingKey };
    }
    await eventually(
      async () => {
        const list = (await t.admin.get(`/api/v1/clusters/${clusterId}/agents`)).body.items as Array<{
          version: string | null;
          state: string;
        }>;
        return list.length === specs.length && list.every((a) => a.version === '1.0.0' && a.state !== 'unknown');
      },
      'every agent paired and reporting 1.0.0',
      30_000,
    );
    return started;
  }

  async function upload(clusterId: string, file: string): Promise<string> {
    const res = await t.admin
      .post(`/api/v1/clusters/${clusterId}/packages`)
      .field('mode', 'upload-only')
      .attach('file', fs.readFileSync(file), path.basename(file));
    if (res.status !== 201) throw new Error(`upload: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.id;
  }

  async function until(upgradeId: string, statuses: string[], timeoutMs = 60_000): Promise<Record<string, any>> {
    let last: Record<string, any> = {};
    await eventually(
      async () => {
        last = (await t.admin.get(`/api/v1/upgrades/${upgradeId}`)).body;
        return statuses.includes(last.status);
      },
      `upgrade ${upgradeId} to reach ${statuses.join('/')}`,
      timeoutMs,
    ).catch((error: Error) => {
      throw new Error(
        `${error.message}; it is ${last.status}: ${JSON.stringify(last.steps?.map((s: Record<string, unknown>) => [s.kind, s.status, s.phase, s.error]))}`,
      );
    });
    return last;
  }

  const records = (home: string) => JSON.parse(fs.readFileSync(path.join(home, 'data', 'records.json'), 'utf8'));
  const health = (home: string) => JSON.parse(fs.readFileSync(path.join(home, 'run', 'health.json'), 'utf8'));

  it('upgrades two failover pairs: new version installed beside the old, data migrated, the main serving again', async () => {
    const c = await givenCluster(t);
    const a = await startAgents(c.id, [
      { name: 'p1-main', role: 'main', group: 'p1' },
      { name: 'p1-backup', role: 'backup', group: 'p1' },
      { name: 'p2-main', role: 'main', group: 'p2' },
      { name: 'p2-backup', role: 'backup', group: 'p2' },
    ]);
    const packageId = await upload(c.id, next);
    const created = await t.admin
      .post(`/api/v1/clusters/${c.id}/upgrades`)
      .send({ packageId, target: { all: true }, policy: 'backup-first-switchback' })
      .expect(201);
    const done = await until(created.body.id, ['succeeded', 'failed', 'completed-with-errors']);
    expect(done.status).toBe('succeeded');

    for (const agent of Object.values(a)) {
      expect(fs.readlinkSync(path.join(agent.home, 'current'))).toBe(path.join('versions', '1.1.0'));
      expect(fs.existsSync(path.join(agent.home, 'versions', '1.0.0', 'bin', 'product.js'))).toBe(true); // the old version stays beside
      expect(records(agent.home)).toMatchObject({
        schema: '1.1.0',
        records: [expect.objectContaining({ migratedTo: '1.1.0' }), expect.objectContaining({ migratedTo: '1.1.0' })],
      });
      expect(health(agent.home).version).toBe('1.1.0');
      expect(fs.readdirSync(path.join(agent.home, 'backups'))).toHaveLength(1);
      expect(fs.statSync(path.join(agent.home, 'agent.json')).mode & 0o777).toBe(0o600);
    }
    // Each backup took over and then handed back: its role file says standby, the main serves.
    const role = (name: string) => JSON.parse(fs.readFileSync(path.join(a[name].home, 'role.json'), 'utf8')).active;
    await eventually(
      () => role('p1-backup') === false && role('p2-backup') === false,
      'the backups to be told they are standby again',
    );
    expect(role('p1-main')).toBe(true);
    expect((await t.admin.get(`/api/v1/agents/${a['p1-main'].id}`)).body).toMatchObject({
      active: true,
      version: '1.1.0',
      versionStatus: 'latest',
    });
  });

  it('rolls back a finished upgrade of a pair and a standalone agent: data byte for byte as before, current on the old version, the main serving', async () => {
    const c = await givenCluster(t);
    const a = await startAgents(c.id, [
      { name: 'r-main', role: 'main', group: 'r' },
      { name: 'r-backup', role: 'backup', group: 'r' },
      { name: 'r-solo' },
    ]);
    const before = Object.fromEntries(
      Object.entries(a).map(([name, agent]) => [name, folderChecksum(path.join(agent.home, 'data'))]),
    );
    const packageId = await upload(c.id, next);
    const created = await t.admin
      .post(`/api/v1/clusters/${c.id}/upgrades`)
      .send({ packageId, target: { all: true }, policy: 'backup-first-switchback' })
      .expect(201);
    expect((await until(created.body.id, ['succeeded', 'failed', 'completed-with-errors'])).status).toBe('succeeded');
    for (const agent of Object.values(a)) expect(records(agent.home).schema).toBe('1.1.0');

    await t.admin.post(`/api/v1/upgrades/${created.body.id}/rollback`).expect(200);
    const done = await until(created.body.id, ['rolled-back', 'rollback-failed']);
    expect(done.status).toBe('rolled-back');
    for (const [name, agent] of Object.entries(a)) {
      expect({ name, data: folderChecksum(path.join(agent.home, 'data')) }).toEqual({ name, data: before[name] });
      expect(fs.readlinkSync(path.join(agent.home, 'current'))).toBe(path.join('versions', '1.0.0'));
      expect(fs.existsSync(path.join(agent.home, 'rollback-journal.json'))).toBe(false);
    }
    await eventually(
      () => Object.values(a).every((agent) => health(agent.home).version === '1.0.0'),
      'the old product running again on every agent',
    );
    // The backup took over while its main went back, then handed back: the main serves, as before.
    const role = (name: string) => JSON.parse(fs.readFileSync(path.join(a[name].home, 'role.json'), 'utf8')).active;
    await eventually(() => role('r-main') === true && role('r-backup') === false, 'the main serving again');
    expect((await t.admin.get(`/api/v1/agents/${a['r-main'].id}`)).body).toMatchObject({
      active: true,
      version: '1.0.0',
    });
    expect((await t.admin.get(`/api/v1/agents/${a['r-backup'].id}`)).body).toMatchObject({
      active: false,
      version: '1.0.0',
    });
  });

  it('a failing migration rolls back: the data byte for byte as before, the old version running', async () => {
    const c = await givenCluster(t);
    const a = await startAgents(c.id, [{ name: 'fragile', failMigration: true }]);
    const before = folderChecksum(path.join(a.fragile.home, 'data'));
    const packageId = await upload(c.id, next);
    const created = await t.admin
      .post(`/api/v1/clusters/${c.id}/upgrades`)
      .send({ packageId, target: { all: true } })
      .expect(201);
    const done = await until(created.body.id, ['failed', 'succeeded']);
    expect(done.status).toBe('failed');
    expect(done.steps[0]).toMatchObject({
      status: 'rolled-back',
      error: expect.stringMatching(/rolled back, data intact: migrate: migration failed/),
    });
    expect(folderChecksum(path.join(a.fragile.home, 'data'))).toBe(before);
    expect(fs.readlinkSync(path.join(a.fragile.home, 'current'))).toBe(path.join('versions', '1.0.0'));
    await eventually(
      () =>
        fs.existsSync(path.join(a.fragile.home, 'run', 'health.json')) && health(a.fragile.home).version === '1.0.0',
      'the old product running again',
    );
    expect((await t.admin.get(`/api/v1/agents/${a.fragile.id}`)).body).toMatchObject({
      version: '1.0.0',
      versionStatus: 'failed',
    });
  });

  it('an upgrade that outlives its phase timeout: the server fails the step, the agent finishes, and its heartbeat on the new version sets the record straight', async () => {
    const c = await givenCluster(t);
    const a = await startAgents(c.id, [{ name: 'unhurried' }]);
    const packageId = await upload(c.id, next);
    // delayedStartS holds the start phase 3 s: past phaseTimeoutS, so the server gives up first.
    const created = await t.admin
      .post(`/api/v1/clusters/${c.id}/upgrades`)
      .send({ packageId, target: { agentIds: [a.unhurried.id] }, options: { phaseTimeoutS: 1, delayedStartS: 3 } })
      .expect(201);
    const commands = async () =>
      (await t.admin.get(`/api/v1/agents/${a.unhurried.id}/commands`)).body.items as Array<Record<string, unknown>>;
    await eventually(
      async () => (await commands())[0]?.status === 'cancelled',
      'the command withdrawn as its phase timed out',
      30_000,
    );

    const done = await until(created.body.id, ['succeeded'], 30_000);
    expect(done.steps[0]).toMatchObject({
      status: 'succeeded',
      error: null,
      note: expect.stringMatching(
        /^finished after the server failed it \(phase \w+ ran longer than phaseTimeoutS \(1s\)\): unhurried reported 1\.1\.0/,
      ),
    });
    expect((await t.admin.get(`/api/v1/agents/${a.unhurried.id}`)).body).toMatchObject({
      version: '1.1.0',
      versionStatus: 'latest',
      state: 'idle',
    });
    expect(health(a.unhurried.home).version).toBe('1.1.0');
    expect((await commands())[0]).toMatchObject({
      status: 'cancelled',
      error: expect.stringMatching(/^cancelled: phase \w+ ran longer than phaseTimeoutS/),
    });
  });

  it('an agent killed mid-migration undoes the upgrade when it starts again: data as before, one product, old version', async () => {
    const c = await givenCluster(t);
    const a = await startAgents(c.id, [{ name: 'crashy', slowMigration: true }]);
    const before = folderChecksum(path.join(a.crashy.home, 'data'));
    const packageId = await upload(c.id, next);
    const created = await t.admin
      .post(`/api/v1/clusters/${c.id}/upgrades`)
      .send({ packageId, target: { all: true } })
      .expect(201);
    await eventually(
      async () => (await t.admin.get(`/api/v1/upgrades/${created.body.id}`)).body.steps[0].phase === 'migrate',
      'the migration to run',
      30_000,
    );
    await eventually(() => records(a.crashy.home).schema === '1.1.0', 'the migration to change the data');

    await a.crashy.process.crash(); // the migration and nothing else is left running
    const restarted = new AgentProcess({
      server: t.baseUrl,
      pairingKey: a.crashy.pairingKey,
      home: a.crashy.home,
      seed,
    });
    agents.push(restarted);
    const done = await until(created.body.id, ['failed', 'succeeded'], 20_000).catch((e: Error) => {
      throw new Error(`${e.message}\nrestarted agent said:\n${restarted.output.join('\n')}`);
    });
    expect(done.steps[0]).toMatchObject({
      status: 'rolled-back',
      error: expect.stringMatching(/stopped during the migrate phase/),
    });
    expect(folderChecksum(path.join(a.crashy.home, 'data'))).toBe(before);
    expect(fs.readlinkSync(path.join(a.crashy.home, 'current'))).toBe(path.join('versions', '1.0.0'));
    expect(fs.existsSync(path.join(a.crashy.home, 'upgrade-journal.json'))).toBe(false);
    await eventually(
      () => fs.existsSync(path.join(a.crashy.home, 'run', 'health.json')) && health(a.crashy.home).version === '1.0.0',
      'the old product running again',
    );
    // One product, the one the new agent started; the migration left behind was stopped.
    const running = (script: string) =>
      fs.readdirSync('/proc').filter((pid) => {
        try {
          const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          return /^\d+$/.test(pid) && cmd.includes(a.crashy.home) && cmd.includes(script);
        } catch {
          return false;
        }
      }).length;
    expect(running('product.js')).toBe(1);
    expect(running('migrate.js')).toBe(0);
  });

  it('a full upgrade replaces the web apps (the server hears none any more) and, asked to, reboots with --reboot-command once it is reported', async () => {
    const c = await givenCluster(t);
    const marker = path.join(work, 'rebooted.log');
    const reboot = path.join(work, 'reboot.sh');
    fs.writeFileSync(reboot, '#!/bin/sh\necho rebooted >> "$1"\n', { mode: 0o755 });
    const a = await startAgents(c.id, [{ name: 'rebooter', webapps: '1.0.5', rebootCommand: `${reboot} ${marker}` }]);
    expect((await t.admin.get(`/api/v1/agents/${a.rebooter.id}`)).body.webappsVersion).toBe('1.0.5');
    const packageId = await upload(c.id, next);
    const created = await t.admin
      .post(`/api/v1/clusters/${c.id}/upgrades`)
      .send({ packageId, target: { all: true }, options: { rebootAfter: true } })
      .expect(201);
    const done = await until(created.body.id, ['succeeded', 'failed', 'completed-with-errors']);
    expect(done.status).toBe('succeeded');

    await eventually(() => fs.existsSync(marker), 'the reboot command to run');
    expect(fs.existsSync(path.join(a.rebooter.home, 'webapps.json'))).toBe(false);
    await eventually(
      async () => (await t.admin.get(`/api/v1/agents/${a.rebooter.id}`)).body.webappsVersion === null,
      'the server to hear that no web apps are installed',
    );
    expect((await t.admin.get(`/api/v1/agents/${a.rebooter.id}`)).body).toMatchObject({
      version: '1.1.0',
      webappsVersion: null,
    });
    await new Promise((r) => setTimeout(r, 500)); // more heartbeats: the reboot is not issued again
    expect(fs.readFileSync(marker, 'utf8')).toBe('rebooted\n');
  }, 60_000);

  it('stops and starts services around the upgrade, waits delayedStartS, and what it did not apply is in the command history', async () => {
    const c = await givenCluster(t);
    const log = path.join(work, 'services.log');
    const svc = path.join(work, 'svc.sh');
    fs.writeFileSync(svc, '#!/bin/sh\necho "$2 $3" >> "$1"\n', { mode: 0o755 });
    const a = await startAgents(c.id, [
      { name: 'with-services', serviceCommand: `${svc} ${log}` },
      { name: 'without-services' },
    ]);
    const packageId = await upload(c.id, next);
    const options = { stopServices: ['snmpd'], delayedStartS: 1, agentOptions: { stopSnmp: true } };
    const created = await t.admin
      .post(`/api/v1/clusters/${c.id}/upgrades`)
      .send({ packageId, target: { all: true }, options })
      .expect(201);
    const done = await until(created.body.id, ['succeeded', 'failed', 'completed-with-errors']);
    expect(done.status).toBe('succeeded');

    expect(fs.readFileSync(log, 'utf8')).toBe('stop snmpd\nstart snmpd\n'); // only the agent that has a service command
    const lastCommand = async (id: string) =>
      (await t.admin.get(`/api/v1/agents/${id}/commands`).expect(200)).body.items[0];
    expect(await lastCommand(a['with-services'].id)).toMatchObject({
      type: 'upgrade',
      status: 'succeeded',
      resultVersion: '1.1.0',
      notes: [
        'agentOptions not understood and not applied: stopSnmp',
        'services stopped before the product: snmpd',
        'services started again: snmpd',
      ],
    });
    expect(await lastCommand(a['without-services'].id)).toMatchObject({
      status: 'succeeded',
      notes: [
        'agentOptions not understood and not applied: stopSnmp',
        'stopServices snmpd not applied: this agent has no --service-command',
      ],
    });
    // The wait before the start is in the upgrade's history, as the agent said it.
    const history = (await t.admin.get(`/api/v1/upgrades/${created.body.id}/history`).expect(200)).body.items as Array<{
      type: string;
      data: Record<string, unknown>;
    }>;
    const messages = history.filter((e) => e.type === 'task.progress').map((e) => e.data.message);
    expect(messages).toContain('delayed start: waiting 1 s');
  }, 60_000);

  it('a webapps package: the agent reports the web-apps version it installed, its core version unchanged', async () => {
    const c = await givenCluster(t);
    const a = await startAgents(c.id, [{ name: 'webapps-host', webapps: '1.0.5' }]);
    const folder = fs.mkdtempSync(path.join(work, 'webapps-'));
    fs.writeFileSync(path.join(folder, 'index.html'), '<h1>acme</h1>');
    const webapps = await buildPackage({
      dir: folder,
      product: 'acme-agent',
      version: '1.0.6',
      kind: 'webapps',
      out: path.join(work, 'acme-webapps-1.0.6.tar.gz'),
    });
    const packageId = await upload(c.id, webapps);
    const created = await t.admin
      .post(`/api/v1/clusters/${c.id}/upgrades`)
      .send({ packageId, target: { all: true } })
      .expect(201);
    const done = await until(created.body.id, ['succeeded', 'failed', 'completed-with-errors']);
    expect(done.status).toBe('succeeded');
    expect((await t.admin.get(`/api/v1/agents/${a['webapps-host'].id}/commands`)).body.items[0]).toMatchObject({
      status: 'succeeded',
      resultVersion: '1.0.6',
    });
    await eventually(
      async () => (await t.admin.get(`/api/v1/agents/${a['webapps-host'].id}`)).body.webappsVersion === '1.0.6',
      'the server to hear web apps 1.0.6',
    );
    expect((await t.admin.get(`/api/v1/agents/${a['webapps-host'].id}`)).body).toMatchObject({
      version: '1.0.0',
      webappsVersion: '1.0.6',
    });
    expect(fs.readFileSync(path.join(a['webapps-host'].home, 'webapps', '1.0.6', 'index.html'), 'utf8')).toBe(
      '<h1>acme</h1>',
    );
  }, 60_000);

  it('a busy agent is upgraded only after its own work ended', async () => {
    const c = await givenCluster(t);
    const busyFile = path.join(work, 'scan-running');
    fs.writeFileSync(busyFile, 'scanning');
    const a = await startAgents(c.id, [{ name: 'scanner', busyFile }]);
    await eventually(
      async () => (await t.admin.get(`/api/v1/agents/${a.scanner.id}`)).body.state === 'busy',
      'the agent to report busy',
    );
    const packageId = await upload(c.id, next);
    const created = await t.admin
      .post(`/api/v1/clusters/${c.id}/upgrades`)
      .send({ packageId, target: { all: true } })
      .expect(201);
    await eventually(
      async () => (await t.admin.get(`/api/v1/upgrades/${created.body.id}`)).body.steps[0].waitingFor === 'idle',
      'the step to wait for idle',
    );
    await eventually(
      () => a.scanner.process.output.some((l) => l.includes('hold: no new work of my own')),
      'the agent to be told to hold',
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(fs.readlinkSync(path.join(a.scanner.home, 'current'))).toBe(path.join('versions', '1.0.0'));

    fs.rmSync(busyFile);
    const done = await until(created.body.id, ['succeeded', 'failed']);
    expect(done.status).toBe('succeeded');
    expect(fs.readlinkSync(path.join(a.scanner.home, 'current'))).toBe(path.join('versions', '1.1.0'));
  });

  it('a download cut in the middle resumes with a byte range and ends with the right sha256', async () => {
    const c = await givenCluster(t);
    const registered = await givenAgent(t, c.id, { name: 'downloader' });
    const paired = await t
      .http()
      .post('/api/v1/agent/pair')
      .send({ pairingKey: registered.pairingKey, version: '1.0.0' })
      .expect(201);
    const folder = fs.mkdtempSync(path.join(work, 'big-'));
    fs.cpSync(SAMPLE, folder, { recursive: true });
    fs.writeFileSync(path.join(folder, 'payload.bin'), randomBytes(512 * 1024));
    const big = await buildPackage({
      dir: folder,
      product: 'acme-agent',
      version: '1.2.0',
      migration: 'migrate.js',
      out: path.join(work, 'acme-1.2.0.tar.gz'),
    });
    const packageId = await upload(c.id, big);
    const pkg = (await t.admin.get(`/api/v1/packages/${packageId}`)).body;

    // A proxy that cuts the first response after half of the file and records the ranges asked for.
    const ranges: Array<string | undefined> = [];
    const proxy = http.createServer((req, res) => {
      ranges.push(req.headers.range);
      const upstream = http.request(`${t.baseUrl}${req.url}`, { headers: req.headers }, (up) => {
        res.writeHead(up.statusCode!, up.headers);
        if (ranges.length === 1) {
          let sent = 0;
          const half = Math.floor(pkg.size / 2);
          up.on('data', (chunk: Buffer) => {
            if (sent >= half) return;
            const part = chunk.subarray(0, half - sent);
            sent += part.length;
            // Half the file reaches the agent, then the connection breaks.
            res.write(part, () => sent >= half && setTimeout(() => res.destroy(), 50));
          });
        } else up.pipe(res);
      });
      upstream.end();
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const dir = fs.mkdtempSync(path.join(work, 'dl-'));
    try {
      const port = (proxy.address() as { port: number }).port;
      const file = await downloadPackage({
        url: `http://127.0.0.1:${port}/api/v1/agent/packages/${packageId}/content`,
        token: paired.body.token,
        sha256: pkg.sha256,
        size: pkg.size,
        dir,
        onProgress: () => undefined,
      });
      expect(createHash('sha256').update(fs.readFileSync(file)).digest('hex')).toBe(pkg.sha256);
      expect(ranges[0]).toBeUndefined();
      expect(ranges[1]).toMatch(new RegExp(`^bytes=${Math.floor(pkg.size / 2)}-$`));
    } finally {
      proxy.close();
    }
  });

  it('a download waits out a server that is restarting (503, connection reset) on the back-off, and gives up at once on a refusal', async () => {
    const c = await givenCluster(t);
    const registered = await givenAgent(t, c.id, { name: 'patient' });
    const paired = await t
      .http()
      .post('/api/v1/agent/pair')
      .send({ pairingKey: registered.pairingKey, version: '1.0.0' })
      .expect(201);
    const packageId = await upload(
      c.id,
      await buildPackage({
        dir: SAMPLE,
        product: 'acme-agent',
        version: '1.3.0',
        migration: 'migrate.js',
        out: path.join(work, 'acme-1.3.0.tar.gz'),
      }),
    );
    const pkg = (await t.admin.get(`/api/v1/packages/${packageId}`)).body;
    // The first call meets a server coming up (503), the second a connection cut before any answer.
    let calls = 0;
    const proxy = http.createServer((req, res) => {
      calls++;
      if (calls === 1) return void res.writeHead(503).end();
      if (calls === 2) return void req.socket.destroy();
      http
        .request(`${t.baseUrl}${req.url}`, { headers: req.headers }, (up) => {
          res.writeHead(up.statusCode!, up.headers);
          up.pipe(res);
        })
        .end();
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as { port: number }).port;
    try {
      const request = { token: paired.body.token, sha256: pkg.sha256, size: pkg.size, onProgress: () => undefined };
      const file = await downloadPackage({
        ...request,
        url: `http://127.0.0.1:${port}/api/v1/agent/packages/${packageId}/content`,
        dir: fs.mkdtempSync(path.join(work, 'dl-')),
      });
      expect(createHash('sha256').update(fs.readFileSync(file)).digest('hex')).toBe(pkg.sha256);
      expect(calls).toBe(3);
      // A package the server does not know is a refusal: one call, no retries.
      calls = 10;
      const missing = downloadPackage({
        ...request,
        url: `http://127.0.0.1:${port}/api/v1/agent/packages/${randomUUID()}/content`,
        dir: fs.mkdtempSync(path.join(work, 'dl-')),
      });
      await expect(missing).rejects.toThrow('download answered 404');
      expect(calls).toBe(11);
    } finally {
      proxy.close();
    }
  });
});
