import { BACKUP_NAME, ROLLBACK_PHASES } from '../protocol/agent-protocol';
import { RollbackCommand, RollbackRunner } from './rollback-runner';
import { folderChecksum } from '../testing/folder-checksum';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildPackage } from './build-package';
import { Home, readJson, UpgradeJournal, writeJsonAtomic } from './home';
import { HostCommands, splitCommand } from './host-commands';
import { Product } from './product';
import {
  delayedStart,
  rollBack,
  signatureRefusal,
  unpackSafely,
  UpgradeCommand,
  UpgradeRunner,
  withNotes,
} from './upgrade-runner';
import { generateKeyPairSync } from 'node:crypto';
import { signPackage } from '../protocol/package-signing';

const SAMPLE = path.join(__dirname, 'sample-product');

interface Served {
  id: string;
  sha256: string;
  size: number;
}

/**
 * The upgrade runner on a real home folder: the sample product as a real process, packages built
 * with the package builder and served by a small HTTP server, services and reboots as scripts that
 * write what they were asked to do into a log.
 */
describe('UpgradeRunner', () => {
  let work: string;
  let server: http.Server;
  let baseUrl: string;
  const files = new Map<string, Buffer>();
  const packages: Record<string, Served> = {};
  let serviceScript: string;
  let serviceLog: string;
  let products: Product[] = [];

  async function serve(name: string, file: string): Promise<void> {
    const bytes = fs.readFileSync(file);
    files.set(name, bytes);
    packages[name] = { id: name, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
  }

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-runner-'));
    const webappsDir = path.join(work, 'webapps-src');
    fs.mkdirSync(webappsDir);
    fs.writeFileSync(path.join(webappsDir, 'index.html'), '<h1>acme</h1>');
    const out = (name: string) => path.join(work, `${name}.tar.gz`);
    await buildPackage({
      dir: SAMPLE,
      product: 'acme-agent',
      version: '1.0.0',
      migration: 'migrate.js',
      out: out('seed'),
    });
    await serve(
      'full-1.1.0',
      await buildPackage({
        dir: SAMPLE,
        product: 'acme-agent',
        version: '1.1.0',
        migration: 'migrate.js',
        out: out('full-1.1.0'),
      }),
    );
    await serve(
      'webapps-1.0.6',
      await buildPackage({
        dir: webappsDir,
        product: 'acme-agent',
        version: '1.0.6',
        kind: 'webapps',
        out: out('webapps-1.0.6'),
      }),
    );

    server = http.createServer((req, res) => {
      const body = files.get(path.basename(req.url ?? ''));
      if (!body || req.headers.authorization !== 'Bearer lsa_test') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

    // `svc HEALTH_FILE stop|start NAME`: logs the call and whether the product was up at that moment
    // (its health file there); fails for the names listed in fail-<action>.
    serviceLog = path.join(work, 'services.log');
    serviceScript = path.join(work, 'svc');
    fs.writeFileSync(
      serviceScript,
      [
        '#!/bin/sh',
        'if [ -e "$1" ]; then up=up; else up=down; fi',
        `echo "$2 $3 product-$up" >> "${serviceLog}"`,
        `if grep -qx "$3" "${work}/fail-$2" 2>/dev/null; then echo "$3: no such unit" >&2; exit 5; fi`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(work, { recursive: true, force: true });
  });

  afterEach(async () => {
    await Promise.all(products.map((p) => p.stop()));
    products = [];
    fs.rmSync(serviceLog, { force: true });
    for (const action of ['stop', 'start']) fs.rmSync(path.join(work, `fail-${action}`), { force: true });
  });

  /** A home with 1.0.0 installed and running (and web apps, when given), and a runner on it. */
  async function given(
    opts: { webapps?: string; failMigration?: boolean; serviceCommand?: string; rebootCommand?: string } = {},
  ) {
    const home = new Home(fs.mkdtempSync(path.join(work, 'home-')));
    home.prepare();
    fs.writeFileSync(
      path.join(home.dataDir, 'records.json'),
      JSON.stringify({ schema: '1.0.0', records: [{ id: 1 }] }),
    );
    if (opts.failMigration) fs.writeFileSync(path.join(home.dataDir, 'FAIL_MIGRATION'), 'yes');
    await unpackSafely(path.join(work, 'seed.tar.gz'), home.versionDir('1.0.0'));
    home.switchCurrent('1.0.0');
    if (opts.webapps) home.setWebappsVersion(opts.webapps);
    const product = new Product(home, () => undefined);
    products.push(product);
    product.start();
    await product.verify('1.0.0');
    const runner = new UpgradeRunner(
      home,
      product,
      baseUrl,
      'lsa_test',
      new HostCommands(
        opts.serviceCommand ? `${opts.serviceCommand} ${home.healthFile}` : null,
        opts.rebootCommand ?? null,
      ),
    );
    const messages: Array<[string, string]> = [];
    const report = async (phase: string, _percent: number, message?: string) => {
      if (message && !message.startsWith('downloaded')) messages.push([phase, message]);
    };
    return { home, product, runner, messages, report };
  }

  function command(pkg: string, overrides: Partial<UpgradeCommand> = {}): UpgradeCommand {
    const served = packages[pkg];
    const [kind, toVersion] = pkg.split('-') as ['full' | 'webapps', string];
    return {
      id: `cmd-${Math.random().toString(16).slice(2)}`,
      upgradeId: 'u1',
      stepId: 's1',
      packageId: served.id,
      sha256: served.sha256,
      size: served.size,
      downloadPath: `/packages/${served.id}`,
      fromVersion: null,
      toVersion,
      kind,
      migration: kind === 'full' ? 'migrate.js' : null,
      phases: ['precheck', 'backup', 'install', 'stop', 'migrate', 'start', 'verify'],
      options: {
        rebootAfter: false,
        waitForIdle: true,
        phaseTimeoutS: 1800,
        delayedStartS: 0,
        stopServices: [],
        ignoreVersionCheck: false,
        agentOptions: {},
      },
      ...overrides,
    };
  }

  const serviceCalls = () => (fs.existsSync(serviceLog) ? fs.readFileSync(serviceLog, 'utf8').trim().split('\n') : []);
  const health = (home: Home) => readJson<{ version: string }>(home.healthFile)?.version;

  describe('stopServices', () => {
    it('stops each service before the product and starts them again (last stopped first) once the product runs the new version', async () => {
      const { home, runner, messages, report } = await given({ serviceCommand: serviceScript });
      const outcome = await runner.run(
        command('full-1.1.0', { options: { stopServices: ['snmpd', 'cron.service'] } }),
        report,
      );

      expect(outcome).toEqual({
        status: 'succeeded',
        version: '1.1.0',
        backup: expect.stringMatching(BACKUP_NAME),
        notes: [
          'services stopped before the product: snmpd, cron.service',
          'services started again: cron.service, snmpd',
        ],
      });
      // Stopped while the product still ran; started once it had been switched over.
      expect(serviceCalls().slice(0, 2)).toEqual(['stop snmpd product-up', 'stop cron.service product-up']);
      expect(
        serviceCalls()
          .slice(2)
          .map((l) => l.split(' ').slice(0, 2).join(' ')),
      ).toEqual(['start cron.service', 'start snmpd']);
      expect(fs.readlinkSync(home.currentLink)).toBe(path.join('versions', '1.1.0'));
      expect(health(home)).toBe('1.1.0');
      expect(fs.existsSync(home.journalFile)).toBe(false);
      expect(messages).toContainEqual(['stop', 'stopping service snmpd']);
      expect(messages).toContainEqual(['start', 'services started again: cron.service, snmpd']);
    });

    it('a service that does not stop fails the upgrade before the product is stopped, and the ones already stopped start again', async () => {
      const { home, product, runner, report } = await given({ serviceCommand: serviceScript });
      fs.writeFileSync(path.join(work, 'fail-stop'), 'cron\n');
      const outcome = await runner.run(
        command('full-1.1.0', { options: { stopServices: ['snmpd', 'cron', 'ntpd'] } }),
        report,
      );

      expect(outcome).toMatchObject({ status: 'failed', version: '1.0.0', notes: ['services started again: snmpd'] });
      expect(outcome.error).toMatch(/^stop: .*\/svc \S+ stop cron failed: cron: no such unit$/);
      expect(serviceCalls()).toEqual(['stop snmpd product-up', 'stop cron product-up', 'start snmpd product-up']);
      expect(product.running).toBe(true);
      expect(health(home)).toBe('1.0.0');
      expect(fs.readlinkSync(home.currentLink)).toBe(path.join('versions', '1.0.0'));
      expect(fs.existsSync(home.journalFile)).toBe(false);
    });

    it('a service that does not start again after the upgrade is a note, not a failure', async () => {
      const { home, runner, report } = await given({ serviceCommand: serviceScript });
      fs.writeFileSync(path.join(work, 'fail-start'), 'snmpd\n');
      const outcome = await runner.run(command('full-1.1.0', { options: { stopServices: ['snmpd'] } }), report);

      expect(outcome.status).toBe('succeeded');
      expect(outcome.notes).toEqual([
        'services stopped before the product: snmpd',
        expect.stringMatching(
          /^service snmpd did not start again: .*\/svc \S+ start snmpd failed: snmpd: no such unit$/,
        ),
      ]);
      expect(health(home)).toBe('1.1.0');
    });

    it('a rollback starts the stopped services again', async () => {
      const { home, runner, report } = await given({ serviceCommand: serviceScript, failMigration: true });
      const outcome = await runner.run(command('full-1.1.0', { options: { stopServices: ['snmpd'] } }), report);

      expect(outcome).toMatchObject({
        status: 'rolled-back',
        version: '1.0.0',
        notes: ['services stopped before the product: snmpd', 'services started again: snmpd'],
      });
      expect(outcome.error).toMatch(/^migrate: migration failed/);
      expect(serviceCalls().map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['stop snmpd', 'start snmpd']);
      expect(fs.readlinkSync(home.currentLink)).toBe(path.join('versions', '1.0.0'));
      expect(fs.existsSync(home.journalFile)).toBe(false);
    });

    it('without --service-command the services are left alone and the report says so', async () => {
      const { home, runner, messages, report } = await given();
      const outcome = await runner.run(command('full-1.1.0', { options: { stopServices: ['snmp', 'cron'] } }), report);

      expect(outcome).toEqual({
        status: 'succeeded',
        version: '1.1.0',
        backup: expect.stringMatching(BACKUP_NAME),
        notes: ['stopServices snmp, cron not applied: this agent has no --service-command'],
      });
      expect(messages).toContainEqual([
        'precheck',
        'stopServices snmp, cron not applied: this agent has no --service-command',
      ]);
      expect(serviceCalls()).toEqual([]);
      expect(health(home)).toBe('1.1.0');
    });

    it('a name no service can have is refused before anything is stopped', async () => {
      const { home, runner, report } = await given({ serviceCommand: serviceScript });
      const outcome = await runner.run(command('full-1.1.0', { options: { stopServices: ['snmp; reboot'] } }), report);

      expect(outcome).toMatchObject({ status: 'failed', version: '1.0.0' });
      expect(outcome.error).toMatch(/^precheck: stopServices: "snmp; reboot" is not a service name/);
      expect(serviceCalls()).toEqual([]);
      expect(health(home)).toBe('1.0.0');
    });
  });

  describe('reported version and web apps', () => {
    it('a webapps upgrade reports the web-apps version it installed, and leaves the core alone', async () => {
      const { home, runner, report } = await given({ webapps: '1.0.5' });
      const outcome = await runner.run(command('webapps-1.0.6', { fromVersion: '1.0.5' }), report);

      expect(outcome).toEqual({ status: 'succeeded', version: '1.0.6', backup: expect.stringMatching(BACKUP_NAME) });
      expect(home.webappsVersion()).toBe('1.0.6');
      expect(home.currentVersion()).toBe('1.0.0');
      expect(fs.existsSync(path.join(home.dir, 'webapps', '1.0.6', 'index.html'))).toBe(true);
    });

    it('a failed webapps upgrade reports the web-apps version still installed, or none when there was none', async () => {
      const withWebapps = await given({ webapps: '1.0.5' });
      const refused = await withWebapps.runner.run(
        command('webapps-1.0.6', { fromVersion: '1.0.4' }),
        withWebapps.report,
      );
      expect(refused).toEqual({
        status: 'failed',
        version: '1.0.5',
        error: 'precheck: runs 1.0.5, but the command upgrades from 1.0.4',
      });

      const bare = await given();
      const rolledBack = await bare.runner.run(command('webapps-1.0.6', { migration: 'missing.js' }), bare.report);
      expect(rolledBack.status).toBe('rolled-back');
      expect(rolledBack).not.toHaveProperty('version');
      expect(bare.home.webappsVersion()).toBeNull();
      expect(fs.existsSync(bare.home.webappsFile)).toBe(false);
    });

    it('a full upgrade removes the web apps installed before, and says so', async () => {
      const { home, runner, report } = await given({ webapps: '1.0.5' });
      const outcome = await runner.run(command('full-1.1.0'), report);

      expect(outcome).toEqual({
        status: 'succeeded',
        version: '1.1.0',
        backup: expect.stringMatching(BACKUP_NAME),
        notes: ['web apps 1.0.5 replaced: a full package replaces any earlier web-apps upgrade'],
      });
      expect(fs.existsSync(home.webappsFile)).toBe(false);
      expect(home.webappsVersion()).toBeNull();
    });

    it('a full upgrade rolled back restores the web apps record as it was and reports the old core version', async () => {
      const { home, product, runner, report } = await given({ webapps: '1.0.5', failMigration: true });
      const outcome = await runner.run(command('full-1.1.0'), report);

      expect(outcome).toMatchObject({ status: 'rolled-back', version: '1.0.0' });
      expect(home.webappsVersion()).toBe('1.0.5');
      await product.verify('1.0.0');
    });

    it('a restart after a crash mid-upgrade (rollBack from the journal) restores the web apps and starts the stopped services', async () => {
      const { home, product } = await given({ webapps: '1.0.5' });
      // What the dead agent left: the product stopped, 1.1.0 current, the web apps record removed.
      await product.stop();
      await unpackSafely(path.join(work, 'full-1.1.0.tar.gz'), home.versionDir('1.1.0'));
      home.switchCurrent('1.1.0');
      home.setWebappsVersion(null);
      const journal: UpgradeJournal = {
        commandId: 'c1',
        kind: 'full',
        oldVersion: '1.0.0',
        oldWebapps: '1.0.5',
        backup: null,
        phase: 'start',
        stoppedServices: ['snmpd'],
      };
      writeJsonAtomic(home.journalFile, journal);

      const notes = await rollBack(home, product, journal, new HostCommands(`${serviceScript} ${home.healthFile}`));
      expect(notes).toEqual(['services started again: snmpd']);
      expect(home.webappsVersion()).toBe('1.0.5');
      expect(home.currentVersion()).toBe('1.0.0');
      await product.verify('1.0.0');
      expect(fs.existsSync(home.journalFile)).toBe(false);

      const without = await rollBack(home, product, journal, new HostCommands());
      expect(without).toEqual(['service snmpd did not start again: this agent has no --service-command']);
    });
  });

  describe('ignoreVersionCheck', () => {
    it('refuses a version other than fromVersion unless asked to ignore it, and then says it did', async () => {
      const { home, runner, messages, report } = await given();
      const refused = await runner.run(command('full-1.1.0', { fromVersion: '0.9.0' }), report);
      expect(refused).toEqual({
        status: 'failed',
        version: '1.0.0',
        error: 'precheck: runs 1.0.0, but the command upgrades from 0.9.0',
      });
      expect(home.currentVersion()).toBe('1.0.0');

      const forced = await runner.run(
        command('full-1.1.0', { fromVersion: '0.9.0', options: { ignoreVersionCheck: true } }),
        report,
      );
      expect(forced).toEqual({
        status: 'succeeded',
        version: '1.1.0',
        backup: expect.stringMatching(BACKUP_NAME),
        notes: ['version check skipped (ignoreVersionCheck): runs 1.0.0, but the command upgrades from 0.9.0'],
      });
      expect(messages).toContainEqual(['precheck', forced.notes![0]]);
      expect(home.currentVersion()).toBe('1.1.0');
    });
  });

  describe('delayedStartS', () => {
    it('waits before the product starts, and says so', async () => {
      const { home, runner, report } = await given();
      const seen: Array<[number, string, string | undefined]> = [];
      const timed = async (phase: string, percent: number, message?: string) => {
        seen.push([Date.now(), phase, message]);
        await report(phase, percent, message);
      };
      const outcome = await runner.run(command('full-1.1.0', { options: { delayedStartS: 1 } }), timed);

      expect(outcome).toEqual({ status: 'succeeded', version: '1.1.0', backup: expect.stringMatching(BACKUP_NAME) });
      const waiting = seen.find(([, , m]) => m === 'delayed start: waiting 1 s')!;
      const verify = seen.find(([, p]) => p === 'verify')!;
      expect(waiting[1]).toBe('start');
      expect(verify[0] - waiting[0]).toBeGreaterThanOrEqual(1000);
      expect(health(home)).toBe('1.1.0');
    });

    it('still takes agentOptions.delayedStartS; the option of its own wins over it', () => {
      expect(delayedStart({})).toEqual({ seconds: 0, notes: [] });
      expect(delayedStart({ delayedStartS: 0, agentOptions: { delayedStartS: 3 } })).toEqual({ seconds: 3, notes: [] });
      expect(delayedStart({ agentOptions: { delayedStartS: '2' } })).toEqual({ seconds: 2, notes: [] });
      expect(delayedStart({ delayedStartS: 5, agentOptions: { delayedStartS: 3 } })).toEqual({
        seconds: 5,
        notes: ['agentOptions.delayedStartS 3 not applied: the option delayedStartS 5 takes its place'],
      });
      expect(delayedStart({ delayedStartS: 5, agentOptions: { delayedStartS: 5 } })).toEqual({ seconds: 5, notes: [] });
      expect(delayedStart({ agentOptions: { delayedStartS: 'soon' } })).toEqual({
        seconds: 0,
        notes: ['agentOptions.delayedStartS "soon" not applied: not a number of seconds from 0 to 86400'],
      });
      expect(delayedStart({ agentOptions: { delayedStartS: true } }).seconds).toBe(0);
      expect(delayedStart({ delayedStartS: -1 }).notes).toEqual([
        'delayedStartS -1 not applied: not a number of seconds from 0 to 86400',
      ]);
    });

    it('is reported as not applied when the upgrade does not start the product', async () => {
      const { home, product, runner, report } = await given();
      const outcome = await runner.run(
        command('full-1.1.0', { phases: ['precheck', 'stop', 'install'], options: { delayedStartS: 30 } }),
        report,
      );
      expect(outcome).toEqual({
        status: 'succeeded',
        version: '1.1.0',
        notes: ['delayedStartS 30 not applied: this upgrade does not start the product'],
      });
      expect(product.running).toBe(false);
      expect(home.currentVersion()).toBe('1.1.0');
    });
  });

  describe('rollback of an upgrade (RollbackRunner)', () => {
    const checksum = folderChecksum;

    /** A home upgraded to 1.1.0 by the runner, the data as it was before, and the rollback command for it. */
    async function upgraded() {
      const rig = await given({ webapps: '1.0.5' });
      const before = checksum(rig.home.dataDir);
      const outcome = await rig.runner.run(command('full-1.1.0'), rig.report);
      expect(outcome).toMatchObject({ status: 'succeeded', backup: expect.stringMatching(BACKUP_NAME) });
      expect(checksum(rig.home.dataDir)).not.toBe(before); // the migration changed it
      const rollback: RollbackCommand = {
        id: `rb-${Math.random().toString(16).slice(2)}`,
        upgradeId: 'u1',
        stepId: 's2',
        kind: 'full',
        fromVersion: '1.1.0',
        toVersion: '1.0.0',
        webappsVersion: '1.0.5',
        backup: outcome.backup!,
        phases: [...ROLLBACK_PHASES],
      };
      return { ...rig, before, rollback, rollbacks: new RollbackRunner(rig.home, rig.product) };
    }

    it('brings the data back byte for byte, current and the web apps as before, the old version running; journalled until settled', async () => {
      const { home, before, rollback, rollbacks } = await upgraded();
      const phases: string[] = [];
      const outcome = await rollbacks.run(rollback, async (phase) => void phases.push(phase));

      expect(outcome).toEqual({ status: 'succeeded', version: '1.0.0' });
      expect(phases).toEqual([...ROLLBACK_PHASES]);
      expect(checksum(home.dataDir)).toBe(before);
      expect(home.currentVersion()).toBe('1.0.0');
      expect(home.webappsVersion()).toBe('1.0.5');
      expect(readJson<{ version: string }>(home.healthFile)?.version).toBe('1.0.0');
      expect(fs.existsSync(home.versionDir('1.1.0'))).toBe(true); // versions stay side by side
      expect(rollbacks.interrupted()?.id).toBe(rollback.id);
      rollbacks.settled();
      expect(rollbacks.interrupted()).toBeNull();
    });

    it.each([
      ['a missing backup', { backup: 'gone' }, /backup gone is missing/],
      ['a backup named like a path', { backup: '../data' }, /is not a backup's name/],
      ['a version named like a path', { toVersion: '../../etc' }, /is not a version's name/],
      ['a version no longer installed', { toVersion: '0.9.0' }, /version 0.9.0 is no longer installed/],
    ])('refuses %s before anything stops', async (_why, change, error) => {
      const { home, product, rollback, rollbacks } = await upgraded();
      const outcome = await rollbacks.run({ ...rollback, ...change }, async () => undefined);
      expect(outcome).toMatchObject({ status: 'failed', error: expect.stringMatching(error) });
      expect(outcome.error).toMatch(/nothing was changed$/);
      expect(product.running).toBe(true);
      expect(home.currentVersion()).toBe('1.1.0');
      expect(rollbacks.interrupted()).toBeNull();
    });

    it('an agent that died in the middle finishes the rollback from its journal: the same result', async () => {
      const { home, product, before, rollback, rollbacks } = await upgraded();
      // Died after the data was swapped, before current moved: what the journal and a half-done restore leave.
      writeJsonAtomic(rollbacks.journalFile, rollback);
      await product.stop();
      fs.renameSync(home.dataDir, `${home.dataDir}.replaced`);
      const again = new RollbackRunner(home, product);
      const cut = again.interrupted();
      expect(cut?.id).toBe(rollback.id);
      expect(await again.run(cut!, async () => undefined)).toEqual({ status: 'succeeded', version: '1.0.0' });
      expect(checksum(home.dataDir)).toBe(before);
      expect(home.currentVersion()).toBe('1.0.0');
      expect(fs.existsSync(`${home.dataDir}.replaced`)).toBe(false);
    });
  });

  describe('notes', () => {
    it('names agentOptions not understood, and a reboot it cannot do', async () => {
      const { runner, messages, report } = await given();
      const outcome = await runner.run(
        command('full-1.1.0', {
          options: { rebootAfter: true, agentOptions: { stopSnmp: true, mode: 'fast', delayedStartS: 0 } },
        }),
        report,
      );
      expect(outcome.notes).toEqual([
        'agentOptions not understood and not applied: stopSnmp, mode',
        'rebootAfter not applied: this agent has no --reboot-command; the host is not rebooted',
      ]);
      expect(messages.map(([, m]) => m)).toEqual(expect.arrayContaining(outcome.notes!));
      expect(runner.rebootRequested).toBe(false);
    });

    it('asks for the reboot only when the upgrade succeeded and a --reboot-command is set', async () => {
      const ok = await given({ rebootCommand: '/sbin/reboot now' });
      const succeeded = await ok.runner.run(command('full-1.1.0', { options: { rebootAfter: true } }), ok.report);
      expect(succeeded.notes).toEqual([
        'rebootAfter: the host is rebooted with "/sbin/reboot now" once the server has acknowledged this report',
      ]);
      expect(ok.runner.rebootRequested).toBe(true);

      const bad = await given({ rebootCommand: '/sbin/reboot now', failMigration: true });
      const rolledBack = await bad.runner.run(command('full-1.1.0', { options: { rebootAfter: true } }), bad.report);
      expect(rolledBack.notes).toEqual([
        'rebootAfter not applied: the upgrade did not succeed; the host is not rebooted',
      ]);
      expect(bad.runner.rebootRequested).toBe(false);
    });

    it('an older server that sends fewer options is taken as asking for none of them', async () => {
      const { runner, report } = await given();
      expect(await runner.run(command('full-1.1.0', { options: undefined }), report)).toEqual({
        status: 'succeeded',
        version: '1.1.0',
        backup: expect.stringMatching(BACKUP_NAME),
      });
    });

    it('are bounded as the server takes them: 20 at most, 500 characters each', () => {
      const many = Array.from({ length: 25 }, (_, i) => `note ${i} ${'x'.repeat(i === 0 ? 600 : 0)}`);
      const { notes } = withNotes({ status: 'succeeded' }, many);
      expect(notes).toHaveLength(20);
      expect(notes![0]).toHaveLength(500);
      expect(notes![18]).toBe('note 18 ');
      expect(notes![19]).toBe("6 more notes left out (see the agent's log)");
      expect(withNotes({ status: 'failed' }, [])).toEqual({ status: 'failed' });
    });
  });

  it('splits a configured command on white space, with no shell', () => {
    expect(splitCommand('  sudo   systemctl ')).toEqual(['sudo', 'systemctl']);
    expect(() => splitCommand('  ')).toThrow('the command is empty');
  });
});

describe('signatureRefusal: what the agent installs', () => {
  const SHA = 'ab'.repeat(32);
  const pair = () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    return {
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
  };
  const held = pair();
  const policy = (requireSignedPackages: boolean) => ({
    revision: 3,
    requireSignedPackages,
    keys: [{ id: 'k1', name: 'release', publicKey: held.publicKey }],
  });
  const command = (signature: string | null | undefined, sha256 = SHA) => ({ sha256, signature, toVersion: '1.1.0' });

  it('installs a package signed by a key it holds, required or not', () => {
    for (const required of [true, false])
      expect(signatureRefusal(command(signPackage(SHA, held.privateKey)), policy(required))).toBeNull();
  });

  it('installs an unsigned package only where signatures are not required', () => {
    expect(signatureRefusal(command(null), policy(false))).toBeNull();
    expect(signatureRefusal(command(undefined), policy(false))).toBeNull();
    expect(signatureRefusal(command(null), policy(true))).toMatch(
      /requires signed packages and this package carries no signature/,
    );
  });

  it('refuses a signature by a key it does not hold, or over other bytes, required or not', () => {
    for (const required of [true, false]) {
      expect(signatureRefusal(command(signPackage(SHA, pair().privateKey)), policy(required))).toMatch(
        /does not verify with any of the 1 signing key this agent holds for its cluster \(release\)/,
      );
      expect(signatureRefusal(command(signPackage(SHA, held.privateKey), 'cd'.repeat(32)), policy(required))).toMatch(
        /does not verify/,
      );
    }
  });
});
