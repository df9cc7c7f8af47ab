import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as tar from 'tar';
import { downloadPackage } from './download';
import { Home, Outcome, UpgradeJournal, writeJsonAtomic } from './home';
import { HostCommands, SERVICE_NAME } from './host-commands';
import { Product } from './product';
import { UPGRADE_PHASES, type UpgradeCommandOptions, type UpgradeCommandPayload } from '../protocol/agent-protocol';

const run = promisify(execFile);

/** An upgrade command as the agent receives it: its id beside the payload (src/protocol/agent-protocol.ts). */
export type UpgradeCommand = { id: string } & UpgradeCommandPayload;
export type { UpgradeCommandOptions };

export type { Outcome };
export type Report = (phase: string, percent: number, message?: string) => Promise<void>;

/** agentOptions this agent understands; any other is reported, not silently ignored. */
const KNOWN_AGENT_OPTIONS = ['delayedStartS'];
/** A longer wait than this is refused (it would also overflow the timer). */
const MAX_DELAYED_START_S = 86_400;
export const MAX_NOTES = 20;
export const MAX_NOTE_LENGTH = 500;

/**
 * Runs an upgrade's phases on the home folder. Before `stop` a failure is just a failure; after it,
 * the agent rolls back: data restored from the backup, `current` back to the old version, the old
 * product started, and the outcome is `rolled-back`. The old version is never removed.
 *
 * Every option that was not applied, and why, goes into the outcome's `notes` (and is sent as a
 * progress message when it is known), as does whatever else the operator must know: services
 * stopped and started, web apps replaced by a full package, the reboot to come.
 */
export class UpgradeRunner {
  /** Set when the upgrade succeeded and asked for a reboot this agent can do: the agent reboots once the report is acknowledged. */
  rebootRequested = false;

  constructor(
    private readonly home: Home,
    private readonly product: Product,
    private readonly server: string,
    private readonly token: string,
    private readonly host: HostCommands = new HostCommands(),
  ) {}

  async run(command: UpgradeCommand, report: Report): Promise<Outcome> {
    const phases = command.phases;
    const options = command.options ?? {};
    // The package is downloaded and unpacked before the product is stopped, to keep the downtime short.
    const order = UPGRADE_PHASES.filter((p) => phases.includes(p)) as string[];
    const step = (phase: string) => Math.floor((Math.max(0, order.indexOf(phase)) / order.length) * 100);
    const oldVersion = this.home.currentVersion();
    const oldWebapps = this.home.webappsVersion();
    // What the command changes, as it was: reported after a failure (the web apps may have had none).
    const installedBefore = command.kind === 'webapps' ? oldWebapps : oldVersion;
    const services = Array.isArray(options.stopServices) ? options.stopServices.map(String) : [];
    let stopped = false;
    let backup: string | null = null;
    let journal: UpgradeJournal | null = null;
    let current = 'precheck';
    let outcome: Outcome;
    const notes: string[] = [];
    const note = async (phase: string, text: string) => {
      notes.push(text);
      await report(phase, step(order.includes(phase) ? phase : current), text.slice(0, MAX_NOTE_LENGTH));
    };
    try {
      current = 'precheck';
      await report('precheck', step('precheck'));
      const unknown = Object.keys(options.agentOptions ?? {}).filter((k) => !KNOWN_AGENT_OPTIONS.includes(k));
      if (unknown.length) await note('precheck', `agentOptions not understood and not applied: ${unknown.join(', ')}`);
      if (services.length && !this.host.serviceCommand)
        await note('precheck', `stopServices ${services.join(', ')} not applied: this agent has no --service-command`);
      if (options.rebootAfter && !this.host.rebootCommand)
        await note('precheck', 'rebootAfter not applied: this agent has no --reboot-command; the host is not rebooted');
      const delay = delayedStart(options);
      for (const text of delay.notes) await note('precheck', text);
      if (delay.seconds > 0 && !phases.includes('start'))
        await note('precheck', `delayedStartS ${delay.seconds} not applied: this upgrade does not start the product`);
      for (const text of this.precheck(command, this.host.serviceCommand ? services : [])) await note('precheck', text);

      if (phases.includes('backup')) {
        current = 'backup';
        await report('backup', step('backup'));
        backup = path.join(this.home.backupsDir, new Date().toISOString().replace(/[:.]/g, '-'));
        fs.cpSync(this.home.dataDir, backup, { recursive: true, preserveTimestamps: true });
      }

      current = 'install';
      await report('install', step('install'), 'downloading');
      const file = await downloadPackage({
        url: `${this.server}${command.downloadPath}`,
        token: this.token,
        sha256: command.sha256,
        size: command.size,
        dir: this.home.downloadsDir,
        onProgress: (p) => void report('install', step('install'), `downloaded ${p}%`).catch(() => undefined),
      });
      // Unpacked beside the running version before anything is stopped.
      const target =
        command.kind === 'webapps'
          ? path.join(this.home.dir, 'webapps', command.toVersion)
          : this.home.versionDir(command.toVersion);
      await unpackSafely(file, target);

      current = 'stop';
      await report('stop', step('stop'));
      // From here a crash must be undone on restart: the journal says how (see recoverInterrupted).
      const written: UpgradeJournal = {
        commandId: command.id,
        kind: command.kind,
        oldVersion,
        oldWebapps,
        backup,
        phase: 'stop',
        stoppedServices: [],
      };
      journal = written;
      const saveJournal = () => writeJsonAtomic(this.home.journalFile, written);
      saveJournal();
      if (this.host.serviceCommand && services.length) {
        const done: string[] = [];
        for (const name of services) {
          // Recorded before it is stopped: a crash in the middle still starts it again on restart.
          written.stoppedServices = [...done, name];
          saveJournal();
          await report('stop', step('stop'), `stopping service ${name}`);
          try {
            await this.host.service('stop', name);
          } catch (error) {
            written.stoppedServices = done;
            throw error;
          }
          done.push(name);
        }
        await note('stop', `services stopped before the product: ${done.join(', ')}`);
      }
      await this.product.stop();
      stopped = true;

      if (phases.includes('migrate') && command.migration) {
        current = 'migrate';
        await report('migrate', step('migrate'));
        await runMigration(path.join(target, command.migration), this.home.dataDir, (pid) =>
          writeJsonAtomic(this.home.journalFile, { ...written, phase: 'migrate', migrationPid: pid }),
        );
      }

      if (command.kind === 'webapps') {
        this.home.setWebappsVersion(command.toVersion);
      } else {
        this.home.switchCurrent(command.toVersion);
        // A full package replaces any earlier web-apps upgrade; the journal keeps the old record for a rollback.
        this.home.setWebappsVersion(null);
        if (oldWebapps)
          await note(current, `web apps ${oldWebapps} replaced: a full package replaces any earlier web-apps upgrade`);
      }
      if (phases.includes('start')) {
        current = 'start';
        await report('start', step('start'));
        if (delay.seconds > 0) {
          await report('start', step('start'), `delayed start: waiting ${delay.seconds} s`);
          await new Promise((r) => setTimeout(r, delay.seconds * 1000));
        }
        this.product.start();
      }
      if (written.stoppedServices?.length) {
        for (const text of await startServices(this.host, written.stoppedServices)) await note(current, text);
        written.stoppedServices = [];
        saveJournal();
      }
      if (phases.includes('verify')) {
        current = 'verify';
        await report('verify', step('verify'));
        if (command.kind === 'full') await this.product.verify(command.toVersion);
      }
      fs.rmSync(this.home.journalFile, { force: true });
      outcome = { status: 'succeeded', version: command.toVersion };
    } catch (error) {
      const reason = `${current}: ${(error as Error).message}`;
      const before = installedBefore ? { version: installedBefore } : {};
      if (!stopped) {
        // Services stopped before the failure are started again: nothing is left stopped.
        for (const text of await startServices(this.host, journal?.stoppedServices ?? [])) await note(current, text);
        if (journal) fs.rmSync(this.home.journalFile, { force: true });
        outcome = { status: 'failed', error: reason, ...before };
      } else {
        const rolledBack = await rollBack(this.home, this.product, { ...journal!, phase: current }, this.host);
        for (const text of rolledBack) await note('rollback', text);
        outcome = { status: 'rolled-back', error: reason, ...before };
      }
    }
    if (options.rebootAfter && this.host.rebootCommand) {
      if (outcome.status === 'succeeded') {
        this.rebootRequested = true;
        notes.push(
          `rebootAfter: the host is rebooted with "${this.host.rebootCommand}" once the server has acknowledged this report`,
        );
      } else {
        notes.push('rebootAfter not applied: the upgrade did not succeed; the host is not rebooted');
      }
    }
    return withNotes(outcome, notes);
  }

  /** Throws what stops the upgrade before anything changed; returns what the operator should know. */
  private precheck(command: UpgradeCommand, services: string[]): string[] {
    const notes: string[] = [];
    const installed = command.kind === 'webapps' ? this.home.webappsVersion() : this.home.currentVersion();
    if (command.fromVersion && installed && installed !== command.fromVersion) {
      if (!command.options?.ignoreVersionCheck)
        throw new Error(`runs ${installed}, but the command upgrades from ${command.fromVersion}`);
      notes.push(
        `version check skipped (ignoreVersionCheck): runs ${installed}, but the command upgrades from ${command.fromVersion}`,
      );
    } else if (command.options?.ignoreVersionCheck) {
      notes.push(
        `version check skipped (ignoreVersionCheck); the installed ${command.kind === 'webapps' ? 'web apps' : 'version'} ${installed ?? '(none)'} matches anyway`,
      );
    }
    const bad = services.filter((name) => !SERVICE_NAME.test(name));
    if (bad.length)
      throw new Error(
        `stopServices: ${bad.map((n) => JSON.stringify(n.slice(0, 80))).join(', ')} is not a service name this agent runs a command for`,
      );
    const stats = fs.statfsSync(this.home.dir);
    const freeBytes = stats.bavail * stats.bsize;
    if (freeBytes < command.size * 3)
      throw new Error(
        `${Math.floor(freeBytes / 1048576)} MB free, the package needs about ${Math.ceil((command.size * 3) / 1048576)} MB`,
      );
    return notes;
  }
}

/**
 * The start delay: the first-class `delayedStartS`, else `agentOptions.delayedStartS` (what servers
 * sent before it was an option of its own). A value that cannot be a wait is not applied, and said so.
 */
export function delayedStart(options: UpgradeCommandOptions): { seconds: number; notes: string[] } {
  const notes: string[] = [];
  const valid = (n: unknown): n is number =>
    typeof n === 'number' && Number.isFinite(n) && n >= 0 && n <= MAX_DELAYED_START_S;
  let seconds = 0;
  if (options.delayedStartS !== undefined && options.delayedStartS !== null) {
    if (valid(options.delayedStartS)) seconds = options.delayedStartS;
    else
      notes.push(
        `delayedStartS ${JSON.stringify(options.delayedStartS)} not applied: not a number of seconds from 0 to ${MAX_DELAYED_START_S}`,
      );
  }
  const legacy = options.agentOptions?.delayedStartS;
  if (legacy !== undefined) {
    const asNumber = typeof legacy === 'string' && legacy.trim() !== '' ? Number(legacy) : legacy;
    if (!valid(asNumber))
      notes.push(
        `agentOptions.delayedStartS ${JSON.stringify(legacy)} not applied: not a number of seconds from 0 to ${MAX_DELAYED_START_S}`,
      );
    else if (seconds > 0 && asNumber !== seconds)
      notes.push(
        `agentOptions.delayedStartS ${asNumber} not applied: the option delayedStartS ${seconds} takes its place`,
      );
    else if (seconds === 0) seconds = asNumber;
  }
  return { seconds, notes };
}

/** Starts stopped services again (the last stopped first); returns what happened, as notes. */
export async function startServices(host: HostCommands, names: string[]): Promise<string[]> {
  const started: string[] = [];
  const failed: string[] = [];
  for (const name of [...names].reverse()) {
    try {
      await host.service('start', name);
      started.push(name);
    } catch (error) {
      failed.push(`service ${name} did not start again: ${(error as Error).message}`);
    }
  }
  return [...(started.length ? [`services started again: ${started.join(', ')}`] : []), ...failed];
}

/** The outcome with its notes, bounded as the server takes them (none: no field). */
export function withNotes(outcome: Outcome, notes: string[]): Outcome {
  if (!notes.length) return outcome;
  const bounded = notes.map((n) => (n.length > MAX_NOTE_LENGTH ? `${n.slice(0, MAX_NOTE_LENGTH - 1)}…` : n));
  const kept =
    bounded.length > MAX_NOTES
      ? [
          ...bounded.slice(0, MAX_NOTES - 1),
          `${bounded.length - MAX_NOTES + 1} more notes left out (see the agent's log)`,
        ]
      : bounded;
  return { ...outcome, notes: kept };
}

/**
 * Data back from the backup byte for byte, the old version current again and running, the web-apps
 * record as it was, services stopped for the upgrade started again, the journal gone. Used when a
 * phase after `stop` fails, and on restart after the agent died in one. Returns notes for the report.
 */
export async function rollBack(
  home: Home,
  product: Product,
  journal: UpgradeJournal,
  host: HostCommands = new HostCommands(),
): Promise<string[]> {
  await product.stop();
  if (journal.backup) {
    fs.rmSync(home.dataDir, { recursive: true, force: true });
    fs.cpSync(journal.backup, home.dataDir, { recursive: true, preserveTimestamps: true });
  }
  // Both kinds: a webapps upgrade wrote a new record, a full one removed it.
  home.setWebappsVersion(journal.oldWebapps ?? null);
  if (journal.kind === 'full' && journal.oldVersion) home.switchCurrent(journal.oldVersion);
  if (journal.oldVersion) product.start();
  const notes = journal.stoppedServices?.length ? await startServices(host, journal.stoppedServices) : [];
  fs.rmSync(home.journalFile, { force: true });
  return notes;
}

/** Runs a version's migration script against the data folder; a non-zero exit is a failure with its output. */
export async function runMigration(
  script: string,
  dataDir: string,
  onStart: (pid: number) => void = () => undefined,
): Promise<void> {
  try {
    const running = run(process.execPath, [script, dataDir], { cwd: path.dirname(script), timeout: 10 * 60_000 });
    if (running.child.pid) onStart(running.child.pid);
    await running;
  } catch (error) {
    const e = error as Error & { stderr?: string };
    throw new Error(`migration failed: ${(e.stderr || e.message).trim().slice(0, 500)}`);
  }
}

/**
 * Unpacks into a fresh folder beside the others. Any entry that would land outside it (absolute
 * paths, "..", links) or that is not a plain file or folder refuses the whole package.
 */
export async function unpackSafely(file: string, target: string): Promise<void> {
  const problems: string[] = [];
  await tar.t({
    file,
    onReadEntry: (entry) => {
      const name = entry.path.replace(/^\.\//, '');
      const resolved = path.resolve(target, name);
      if (path.isAbsolute(entry.path) || !(resolved === target || resolved.startsWith(target + path.sep)))
        problems.push(`${entry.path} lands outside the version folder`);
      if (entry.type !== 'File' && entry.type !== 'Directory') problems.push(`${entry.path} is a ${entry.type}`);
    },
  });
  if (problems.length) throw new Error(`unsafe package: ${problems.slice(0, 5).join('; ')}`);
  const temp = `${target}.unpacking`;
  fs.rmSync(temp, { recursive: true, force: true });
  fs.mkdirSync(temp, { recursive: true });
  await tar.x({ file, cwd: temp, strict: true });
  fs.rmSync(target, { recursive: true, force: true });
  fs.renameSync(temp, target);
}
