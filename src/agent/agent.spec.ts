import { BACKUP_NAME } from '../protocol/agent-protocol';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { ReferenceAgent } from './agent';
import { buildPackage } from './build-package';
import { AgentState, Home, readJson, UpgradeJournal, writeJsonAtomic } from './home';
import { unpackSafely } from './upgrade-runner';

const SAMPLE = path.join(__dirname, 'sample-product');

interface Call {
  route: string;
  body: Record<string, any>;
  at: number;
}

/**
 * A stand-in for the server's agent routes: hands out the commands queued in `commands` with every
 * heartbeat until they are reported on, records every call, answers the final reports with the
 * statuses queued in `completeAnswers` (200 once they run out).
 */
class FakeServer {
  readonly calls: Call[] = [];
  commands: Array<Record<string, unknown>> = [];
  completeAnswers: number[] = [];
  /** What heartbeat answers ask for. */
  pollAfterMs = 50;
  /** As a server from before notes: a report carrying them is refused with a 400 naming the field. */
  refuseNotes = false;
  /** Called as each final report arrives, before it is answered. */
  onComplete: (call: Call) => void = () => undefined;
  private readonly server: http.Server;
  private readonly files = new Map<string, Buffer>();
  url = '';

  constructor() {
    this.server = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
      req.on('end', () => this.answer(req, res, raw ? JSON.parse(raw) : {}));
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Serves a package; returns the fields an upgrade command carries about it. */
  serve(id: string, file: string) {
    const bytes = fs.readFileSync(file);
    this.files.set(id, bytes);
    return {
      packageId: id,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      size: bytes.length,
      downloadPath: `/api/v1/agent/packages/${id}/content`,
    };
  }

  reports(commandId: string): Call[] {
    return this.calls.filter((c) => c.route === `complete ${commandId}`);
  }

  messages(commandId: string): string[] {
    return this.calls
      .filter((c) => c.route === `progress ${commandId}` && c.body.message)
      .map((c) => c.body.message as string);
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse, body: Record<string, any>): void {
    const json = (status: number, value: unknown) =>
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(value));
    const url = req.url ?? '';
    const content = /^\/api\/v1\/agent\/packages\/([^/]+)\/content$/.exec(url);
    if (content && req.method === 'GET') {
      const bytes = this.files.get(content[1]);
      if (!bytes) return void json(404, {});
      return void res.writeHead(200, { 'Content-Length': bytes.length }).end(bytes);
    }
    if (url === '/api/v1/agent/pair')
      return void json(201, { agentId: 'a1', clusterId: 'c1', token: 'lsa_test', pollAfterMs: 50 });
    if (url === '/api/v1/agent/heartbeat') {
      this.calls.push({ route: 'heartbeat', body, at: Date.now() });
      return void json(200, { commands: this.commands, hold: false, pollAfterMs: this.pollAfterMs });
    }
    const command = /^\/api\/v1\/agent\/commands\/([^/]+)\/(progress|complete)$/.exec(url);
    if (!command) return void json(404, {});
    const call = { route: `${command[2]} ${command[1]}`, body, at: Date.now() };
    this.calls.push(call);
    if (command[2] === 'progress') return void json(200, {});
    this.onComplete(call);
    if (this.refuseNotes && body.notes)
      return void json(400, { message: 'Invalid request: notes is not a known field; remove it.' });
    const status = this.completeAnswers.shift() ?? 200;
    if (status === 200) this.commands = this.commands.filter((c) => c.id !== command[1]);
    json(status, status === 200 ? {} : { message: 'try again' });
  }
}

async function eventually(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The reference agent in this process against the fake server: what it reports, and when it reboots. */
describe('ReferenceAgent', () => {
  let work: string;
  let server: FakeServer;
  let seed: string;
  let next: string;
  let rebootScript: string;
  let serviceScript: string;
  const running: ReferenceAgent[] = [];

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-agent-'));
    seed = await buildPackage({
      dir: SAMPLE,
      product: 'acme-agent',
      version: '1.0.0',
      migration: 'migrate.js',
      out: path.join(work, 'seed.tar.gz'),
    });
    next = await buildPackage({
      dir: SAMPLE,
      product: 'acme-agent',
      version: '1.1.0',
      migration: 'migrate.js',
      out: path.join(work, 'next.tar.gz'),
    });
    // `reboot FILE`: appends a line to FILE, so a test sees whether, and how often, it ran.
    rebootScript = path.join(work, 'reboot');
    fs.writeFileSync(rebootScript, '#!/bin/sh\necho rebooted >> "$1"\n', { mode: 0o755 });
    // `svc LOG stop|start NAME`: appends the call to LOG.
    serviceScript = path.join(work, 'svc');
    fs.writeFileSync(serviceScript, '#!/bin/sh\necho "$2 $3" >> "$1"\n', { mode: 0o755 });
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  beforeEach(async () => {
    server = new FakeServer();
    await server.listen();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((a) => a.stop()));
    await server.close();
  });

  function startAgent(home: string, options: { rebootCommand?: string; serviceCommand?: string } = {}): ReferenceAgent {
    const agent = new ReferenceAgent({
      server: server.url,
      pairingKey: 'lsp_test_key',
      home,
      seedPackage: seed,
      log: () => undefined,
      ...options,
    });
    running.push(agent);
    void agent.start();
    return agent;
  }

  function upgrade(id: string, options: Record<string, unknown>) {
    return {
      id,
      type: 'upgrade',
      upgradeId: 'u1',
      stepId: 's1',
      ...server.serve('p110', next),
      fromVersion: '1.0.0',
      toVersion: '1.1.0',
      kind: 'full',
      migration: 'migrate.js',
      phases: ['precheck', 'backup', 'install', 'stop', 'migrate', 'start', 'verify'],
      options,
    };
  }

  const lines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n') : []);

  it('reboots once, only after the server acknowledged the report of the upgrade that asked for it; a restarted agent sends the same notes again and does not reboot', async () => {
    const home = path.join(work, 'rebooting');
    const marker = path.join(work, 'rebooted.log');
    const rebootsSeenAtReport: number[] = [];
    server.onComplete = () => rebootsSeenAtReport.push(lines(marker).length);
    server.completeAnswers = [503, 503];
    server.commands = [upgrade('c1', { rebootAfter: true, agentOptions: {} })];
    const agent = startAgent(home, { rebootCommand: `${rebootScript} ${marker}` });

    await eventually(() => lines(marker).length === 1, 'the reboot command to run');
    const reports = server.reports('c1');
    expect(reports.length).toBeGreaterThanOrEqual(3);
    expect(rebootsSeenAtReport.slice(0, 3)).toEqual([0, 0, 0]); // not before the third report was answered 200
    expect(reports[0].body).toEqual({
      status: 'succeeded',
      version: '1.1.0',
      backup: expect.stringMatching(BACKUP_NAME),
      notes: [
        `rebootAfter: the host is rebooted with "${rebootScript} ${marker}" once the server has acknowledged this report`,
      ],
    });
    expect(reports.every((r) => JSON.stringify(r.body) === JSON.stringify(reports[0].body))).toBe(true);
    expect(readJson<AgentState>(path.join(home, 'agent.json'))).toMatchObject({
      rebootAfterAck: null,
      unacknowledged: [],
      done: { c1: reports[0].body },
    });

    // The same command again (a lost answer), to a restarted agent: the same report, no second reboot.
    await agent.stop();
    server.commands = [upgrade('c1', { rebootAfter: true })];
    startAgent(home, { rebootCommand: `${rebootScript} ${marker}` });
    await eventually(() => server.reports('c1').length > reports.length, 'the report sent again');
    expect(server.reports('c1').at(-1)!.body).toEqual(reports[0].body);
    await new Promise((r) => setTimeout(r, 300));
    expect(lines(marker)).toEqual(['rebooted']);
  });

  it('sends a report the server did not take again on the back-off schedule (at most 30 s), not at the heartbeat pace', async () => {
    const home = path.join(work, 'report-retry');
    // The server asks for a heartbeat a minute from now, and answers the report 503 twice.
    server.pollAfterMs = 60_000;
    server.completeAnswers = [503, 503];
    server.commands = [{ id: 'c6', type: 'migrate' }];
    startAgent(home);

    await eventually(() => server.reports('c6').length >= 3, 'the report taken on its third try', 8000);
    const times = server.reports('c6').map((r) => r.at);
    // Retries after 0.5-1 s and 1-2 s (plus the calls themselves): not after the heartbeat's minute.
    expect(times[2] - times[0]).toBeLessThan(5000);
    expect(readJson<AgentState>(path.join(home, 'agent.json'))).toMatchObject({ unacknowledged: [] });
  });

  it('heartbeats carry the version from before an upgrade until it ended, then the new one', async () => {
    const home = path.join(work, 'settled-version');
    // delayedStartS holds the start phase a second after `current` switched to 1.1.0.
    server.commands = [upgrade('c7', { delayedStartS: 1 })];
    startAgent(home);

    await eventually(() => server.reports('c7').length > 0, 'the upgrade report');
    const startAt = server.calls.findIndex((c) => c.route === 'progress c7' && c.body.phase === 'start');
    const reportAt = server.calls.findIndex((c) => c.route === 'complete c7');
    const during = server.calls.slice(startAt, reportAt).filter((c) => c.route === 'heartbeat');
    expect(during.length).toBeGreaterThan(3);
    expect(during.every((c) => c.body.version === '1.0.0')).toBe(true);
    await eventually(
      () => server.calls.slice(reportAt).some((c) => c.route === 'heartbeat' && c.body.version === '1.1.0'),
      'a heartbeat with 1.1.0 after the report',
    );
  });

  it('a server from before notes gets the report without them (they went out as progress messages); agent.json keeps them', async () => {
    const home = path.join(work, 'older-server');
    server.refuseNotes = true;
    server.commands = [upgrade('c2', { agentOptions: { stopSnmp: true } })];
    startAgent(home);

    await eventually(() => server.commands.length === 0, 'the report to be taken');
    // The report and the command seen again with a heartbeat may both go out before the refusal is back: at most two refused.
    const reports = server.reports('c2').map((r) => r.body);
    expect(reports[0]).toEqual({
      status: 'succeeded',
      version: '1.1.0',
      backup: expect.stringMatching(BACKUP_NAME),
      notes: ['agentOptions not understood and not applied: stopSnmp'],
    });
    expect(reports.filter((r) => r.notes).length).toBeLessThanOrEqual(2);
    expect(reports.at(-1)).toEqual({ status: 'succeeded', version: '1.1.0' });
    expect(server.messages('c2')).toContain('agentOptions not understood and not applied: stopSnmp');
    expect(readJson<AgentState>(path.join(home, 'agent.json'))!.done.c2).toEqual(reports[0]);
  });

  it('on restart after a crash mid-upgrade, reports the old version, restores the web apps and starts the stopped services', async () => {
    const dir = path.join(work, 'crashed');
    const home = new Home(dir);
    home.prepare();
    await unpackSafely(seed, home.versionDir('1.0.0'));
    await unpackSafely(next, home.versionDir('1.1.0'));
    home.switchCurrent('1.1.0'); // the dead agent had switched over and removed the web apps record
    const journal: UpgradeJournal = {
      commandId: 'c3',
      kind: 'full',
      oldVersion: '1.0.0',
      oldWebapps: '1.0.5',
      backup: null,
      phase: 'start',
      stoppedServices: ['snmpd'],
    };
    writeJsonAtomic(home.journalFile, journal);
    writeJsonAtomic(
      home.stateFile,
      { server: server.url, agentId: 'a1', token: 'lsa_test', done: {}, running: 'c3' } satisfies AgentState,
      0o600,
    );
    const serviceLog = path.join(work, 'crashed-services.log');
    startAgent(dir, { serviceCommand: `${serviceScript} ${serviceLog}` });

    await eventually(() => server.reports('c3').length > 0, 'the rolled-back report');
    expect(server.reports('c3')[0].body).toEqual({
      status: 'rolled-back',
      version: '1.0.0',
      error: 'the agent stopped during the start phase; on restart it restored the data and 1.0.0',
      notes: ['services started again: snmpd'],
    });
    expect(lines(serviceLog)).toEqual(['start snmpd']);
    expect(home.currentVersion()).toBe('1.0.0');
    expect(home.webappsVersion()).toBe('1.0.5');
    await eventually(
      () =>
        server.calls.some(
          (c) => c.route === 'heartbeat' && c.body.webappsVersion === '1.0.5' && c.body.version === '1.0.0',
        ),
      'a heartbeat with the restored versions',
    );
  });

  it('after a full upgrade the heartbeats report no web apps; a migrate command reports the core version', async () => {
    const dir = path.join(work, 'webapps-then-full');
    new Home(dir).prepare();
    writeJsonAtomic(path.join(dir, 'webapps.json'), { version: '1.0.5' });
    fs.writeFileSync(path.join(dir, 'data', 'records.json'), JSON.stringify({ schema: '1.0.0', records: [{ id: 1 }] }));
    server.commands = [upgrade('c4', {})];
    startAgent(dir);

    await eventually(() => server.reports('c4').length > 0, 'the upgrade report');
    expect(server.reports('c4')[0].body).toEqual({
      status: 'succeeded',
      version: '1.1.0',
      backup: expect.stringMatching(BACKUP_NAME),
      notes: ['web apps 1.0.5 replaced: a full package replaces any earlier web-apps upgrade'],
    });
    const beatsAfter = server.calls.length;
    await eventually(
      () => server.calls.slice(beatsAfter).some((c) => c.route === 'heartbeat'),
      'a heartbeat after the upgrade',
    );
    expect(server.calls.slice(beatsAfter).find((c) => c.route === 'heartbeat')!.body).toMatchObject({
      version: '1.1.0',
      webappsVersion: null,
    });

    server.commands = [{ id: 'c5', type: 'migrate' }];
    await eventually(() => server.reports('c5').length > 0, 'the migration report');
    expect(server.reports('c5')[0].body).toEqual({ status: 'succeeded', version: '1.1.0' });
    expect(server.messages('c5')).toEqual(['migrating data of 1.1.0']);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'data', 'records.json'), 'utf8'))).toMatchObject({
      schema: '1.1.0',
      records: [{ id: 1, migratedTo: '1.1.0' }],
    });
  });
});
