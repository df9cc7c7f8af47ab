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
import { findSigningKey, type SigningPolicy } from '../protocol/package-signing';

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
    const attempt = new Attempt(command, report, this.home);
    let outcome: Outcome;
    try {
      const delay = await this.precheckPhase(attempt);
      await this.backupPhase(attempt);
      const target = await this.installPhase(attempt);
      await this.stopPhase(attempt);
      await this.migratePhase(attempt, target);
      await this.switchVersion(attempt);
      await this.startPhase(attempt, delay.seconds);
      await this.verifyPhase(attempt);
      fs.rmSync(this.home.journalFile, { force: true });
      outcome = {
        status: 'succeeded',
        version: command.toVersion,
        ...(attempt.backup ? { backup: path.basename(attempt.backup) } : {}),
      };
    } catch (error) {
      outcome = await this.undo(attempt, error as Error);
    }
    this.noteReboot(attempt, outcome);
    return withNotes(outcome, attempt.notes);
  }

  /** What will not be applied is said now; what stops the upgrade throws before anything changed. */
  private async precheckPhase(attempt: Attempt): Promise<{ seconds: number }> {
    const { command, options, services } = attempt;
    await attempt.enter('precheck');
    const unknown = Object.keys(options.agentOptions ?? {}).filter((k) => !KNOWN_AGENT_OPTIONS.includes(k));
    if (unknown.length)
      await attempt.note('precheck', `agentOptions not understood and not applied: ${unknown.join(', ')}`);
    if (services.length && !this.host.serviceCommand)
      await attempt.note(
        'precheck',
        `stopServices ${services.join(', ')} not applied: this agent has no --service-command`,
      );
    if (options.rebootAfter && !this.host.rebootCommand)
      await attempt.note(
        'precheck',
        'rebootAfter not applied: this agent has no --reboot-command; the host is not rebooted',
      );
    const delay = delayedStart(options);
    for (const text of delay.notes) await attempt.note('precheck', text);
    if (delay.seconds > 0 && !attempt.phases.includes('start'))
      await attempt.note(
        'precheck',
        `delayedStartS ${delay.seconds} not applied: this upgrade does not start the product`,
      );
    for (const text of this.precheck(command, this.host.serviceCommand ? services : []))
      await attempt.note('precheck', text);
    return delay;
  }

  private async backupPhase(attempt: Attempt): Promise<void> {
    if (!attempt.phases.includes('backup')) return;
    await attempt.enter('backup');
    attempt.backup = path.join(this.home.backupsDir, new Date().toISOString().replace(/[:.]/g, '-'));
    fs.cpSync(this.home.dataDir, attempt.backup, { recursive: true, preserveTimestamps: true });
  }

  /** Downloads the package and unpacks it beside the running version, before anything is stopped; returns the folder. */
  private async installPhase(attempt: Attempt): Promise<string> {
    const { command } = attempt;
    await attempt.enter('install', 'downloading');
    const file = await downloadPackage({
      url: `${this.server}${command.downloadPath}`,
      token: this.token,
      sha256: command.sha256,
      size: command.size,
      dir: this.home.downloadsDir,
      onProgress: (p) => void attempt.report('install', `downloaded ${p}%`).catch(() => undefined),
    });
    const refusal = signatureRefusal(command, this.home.signingPolicy());
    if (refusal) {
      fs.rmSync(file, { force: true });
      throw new Error(refusal);
    }
    const target =
      command.kind === 'webapps'
        ? path.join(this.home.dir, 'webapps', command.toVersion)
        : this.home.versionDir(command.toVersion);
    await unpackSafely(file, target);
    return target;
  }

  /** From here a crash must be undone on restart: the journal says how (see recoverInterrupted). */
  private async stopPhase(attempt: Attempt): Promise<void> {
    await attempt.enter('stop');
    const journal: UpgradeJournal = {
      commandId: attempt.command.id,
      kind: attempt.command.kind,
      oldVersion: attempt.oldVersion,
      oldWebapps: attempt.oldWebapps,
      backup: attempt.backup,
      phase: 'stop',
      stoppedServices: [],
    };
    attempt.journal = journal;
    this.saveJournal(journal);
    if (this.host.serviceCommand && attempt.services.length) await this.stopServices(attempt, journal);
    await this.product.stop();
    attempt.stopped = true;
  }

  private async stopServices(attempt: Attempt, journal: UpgradeJournal): Promise<void> {
    const done: string[] = [];
    for (const name of attempt.services) {
      // Recorded before it is stopped: a crash in the middle still starts it again on restart.
      journal.stoppedServices = [...done, name];
      this.saveJournal(journal);
      await attempt.report('stop', `stopping service ${name}`);
      try {
        await this.host.service('stop', name);
      } catch (error) {
        journal.stoppedServices = done;
        throw error;
      }
      done.push(name);
    }
    await attempt.note('stop', `services stopped before the product: ${done.join(', ')}`);
  }

  private async migratePhase(attempt: Attempt, target: string): Promise<void> {
    const { command } = attempt;
    if (!attempt.phases.includes('migrate') || !command.migration) return;
    await attempt.enter('migrate');
    const journal = attempt.journal!;
    await runMigration(path.join(target, command.migration), this.home.dataDir, (pid) =>
      writeJsonAtomic(this.home.journalFile, { ...journal, phase: 'migrate', migrationPid: pid }),
    );
  }

  /** The new version becomes current (or the web-apps record names it). */
  private async switchVersion(attempt: Attempt): Promise<void> {
    const { command } = attempt;
    if (command.kind === 'webapps') {
      this.home.setWebappsVersion(command.toVersion);
      return;
    }
    this.home.switchCurrent(command.toVersion);
    // A full package replaces any earlier web-apps upgrade; the journal keeps the old record for a rollback.
    this.home.setWebappsVersion(null);
    if (attempt.oldWebapps)
      await attempt.note(
        attempt.current,
        `web apps ${attempt.oldWebapps} replaced: a full package replaces any earlier web-apps upgrade`,
      );
  }

  /** The product starts (after the delay), then the services stopped for the upgrade. */
  private async startPhase(attempt: Attempt, delaySeconds: number): Promise<void> {
    if (attempt.phases.includes('start')) {
      await attempt.enter('start');
      if (delaySeconds > 0) {
        await attempt.report('start', `delayed start: waiting ${delaySeconds} s`);
        await new Promise((r) => setTimeout(r, delaySeconds * 1000));
      }
      this.product.start();
    }
    const journal = attempt.journal!;
    if (journal.stoppedServices?.length) {
      for (const text of await startServices(this.host, journal.stoppedServices))
        await attempt.note(attempt.current, text);
      journal.stoppedServices = [];
      this.saveJournal(journal);
    }
  }

  private async verifyPhase(attempt: Attempt): Promise<void> {
    if (!attempt.phases.includes('verify')) return;
    await attempt.enter('verify');
    if (attempt.command.kind === 'full') await this.product.verify(attempt.command.toVersion);
  }

  /** Before `stop` a failure is just a failure; after it, the upgrade is rolled back. */
  private async undo(attempt: Attempt, error: Error): Promise<Outcome> {
    const reason = `${attempt.current}: ${error.message}`;
    const before = attempt.installedBefore ? { version: attempt.installedBefore } : {};
    if (!attempt.stopped) {
      // Services stopped before the failure are started again: nothing is left stopped.
      for (const text of await startServices(this.host, attempt.journal?.stoppedServices ?? []))
        await attempt.note(attempt.current, text);
      if (attempt.journal) fs.rmSync(this.home.journalFile, { force: true });
      return { status: 'failed', error: reason, ...before };
    }
    const journal = { ...attempt.journal!, phase: attempt.current };
    for (const text of await rollBack(this.home, this.product, journal, this.host))
      await attempt.note('rollback', text);
    return { status: 'rolled-back', error: reason, ...before };
  }

  private noteReboot(attempt: Attempt, outcome: Outcome): void {
    if (!attempt.options.rebootAfter || !this.host.rebootCommand) return;
    if (outcome.status === 'succeeded') {
      this.rebootRequested = true;
      attempt.notes.push(
        `rebootAfter: the host is rebooted with "${this.host.rebootCommand}" once the server has acknowledged this report`,
      );
    } else {
      attempt.notes.push('rebootAfter not applied: the upgrade did not succeed; the host is not rebooted');
    }
  }

  private saveJournal(journal: UpgradeJournal): void {
    writeJsonAtomic(this.home.journalFile, journal);
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

/** One run of an upgrade command: how far it got, what it must undo, and what it noted. */
class Attempt {
  readonly options: UpgradeCommandOptions;
  readonly phases: readonly string[];
  /** The phases this command runs, in the order the agent runs them: the percent of each. */
  private readonly order: string[];
  readonly services: string[];
  readonly oldVersion: string | null;
  readonly oldWebapps: string | null;
  /** What the command changes, as it was: reported after a failure (the web apps may have had none). */
  readonly installedBefore: string | null;
  current = 'precheck';
  /** The product was stopped: a failure from here on rolls back. */
  stopped = false;
  backup: string | null = null;
  journal: UpgradeJournal | null = null;
  readonly notes: string[] = [];

  constructor(
    readonly command: UpgradeCommand,
    private readonly send: Report,
    home: Home,
  ) {
    this.phases = command.phases;
    this.options = command.options ?? {};
    // The package is downloaded and unpacked before the product is stopped, to keep the downtime short.
    this.order = UPGRADE_PHASES.filter((p) => this.phases.includes(p));
    this.oldVersion = home.currentVersion();
    this.oldWebapps = home.webappsVersion();
    this.installedBefore = command.kind === 'webapps' ? this.oldWebapps : this.oldVersion;
    this.services = Array.isArray(this.options.stopServices) ? this.options.stopServices.map(String) : [];
  }

  private percent(phase: string): number {
    return Math.floor((Math.max(0, this.order.indexOf(phase)) / this.order.length) * 100);
  }

  /** Enters a phase and reports it. */
  async enter(phase: string, message?: string): Promise<void> {
    this.current = phase;
    await this.report(phase, message);
  }

  report(phase: string, message?: string): Promise<void> {
    return message === undefined
      ? this.send(phase, this.percent(phase))
      : this.send(phase, this.percent(phase), message);
  }

  /** A note for the outcome, sent as a progress message now. */
  async note(phase: string, text: string): Promise<void> {
    this.notes.push(text);
    await this.send(
      phase,
      this.percent(this.order.includes(phase) ? phase : this.current),
      text.slice(0, MAX_NOTE_LENGTH),
    );
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

/**
 * Why the downloaded package (its sha256 already checked) must not be installed, or null: when the
 * cluster requires signed packages or the package carries a signature, the signature must verify
 * with one of the keys this agent holds (docs/packages.md, "Signing"). The server sends the
 * signature with the command; a server that changed the package cannot make it verify.
 */
export function signatureRefusal(
  command: Pick<UpgradeCommand, 'sha256' | 'signature' | 'toVersion'>,
  policy: SigningPolicy,
): string | null {
  const signature = command.signature ?? null;
  if (!signature) {
    return policy.requireSignedPackages
      ? `refused to install ${command.toVersion}: the cluster requires signed packages and this package carries no signature; nothing was installed`
      : null;
  }
  if (findSigningKey(command.sha256, signature, policy.keys)) return null;
  return `refused to install ${command.toVersion}: its signature does not verify with any of the ${policy.keys.length} signing key${policy.keys.length === 1 ? '' : 's'} this agent holds for its cluster (${policy.keys.map((k) => k.name).join(', ') || 'none'}): an unknown key, or a package changed after it was signed; nothing was installed`;
}
