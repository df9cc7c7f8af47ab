import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as tar from 'tar';
import { downloadPackage } from './download';
import { Home, UpgradeJournal, writeJsonAtomic } from './home';
import { Product } from './product';

const run = promisify(execFile);

export interface UpgradeCommand {
  id: string;
  packageId: string;
  sha256: string;
  size: number;
  downloadPath: string;
  fromVersion: string | null;
  toVersion: string;
  kind: 'full' | 'webapps';
  migration: string | null;
  phases: string[];
  options?: { agentOptions?: Record<string, unknown>; rebootAfter?: boolean };
}

export type Outcome = { status: 'succeeded' | 'failed' | 'rolled-back'; version?: string; error?: string };
export type Report = (phase: string, percent: number, message?: string) => Promise<void>;

/** agentOptions this agent understands; any other is reported, not silently ignored. */
const KNOWN_AGENT_OPTIONS = ['delayedStartS'];

/**
 * Runs an upgrade's phases on the home folder. Before `stop` a failure is just a failure; after it,
 * the agent rolls back: data restored from the backup, `current` back to the old version, the old
 * product started, and the outcome is `rolled-back`. The old version is never removed.
 */
export class UpgradeRunner {
  constructor(
    private readonly home: Home,
    private readonly product: Product,
    private readonly server: string,
    private readonly token: string,
  ) {}

  async run(command: UpgradeCommand, report: Report): Promise<Outcome> {
    const phases = command.phases;
    // The package is downloaded and unpacked before the product is stopped, to keep the downtime short.
    const order = ['precheck', 'backup', 'install', 'stop', 'migrate', 'start', 'verify'].filter((p) => phases.includes(p));
    const step = (phase: string) => Math.floor((Math.max(0, order.indexOf(phase)) / order.length) * 100);
    const oldVersion = this.home.currentVersion();
    const oldWebapps = this.home.webappsVersion();
    let stopped = false;
    let backup: string | null = null;
    let current = 'precheck';
    try {
      const unknown = Object.keys(command.options?.agentOptions ?? {}).filter((k) => !KNOWN_AGENT_OPTIONS.includes(k));
      current = 'precheck';
      await report('precheck', step('precheck'), unknown.length ? `agentOptions not understood and not applied: ${unknown.join(', ')}` : undefined);
      await this.precheck(command);

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
      const target = command.kind === 'webapps' ? path.join(this.home.dir, 'webapps', command.toVersion) : this.home.versionDir(command.toVersion);
      await unpackSafely(file, target);

      current = 'stop';
      await report('stop', step('stop'));
      // From here a crash must be undone on restart: the journal says how (see recoverInterrupted).
      const journal: UpgradeJournal = { commandId: command.id, kind: command.kind, oldVersion, oldWebapps, backup, phase: 'stop' };
      writeJsonAtomic(this.home.journalFile, journal);
      await this.product.stop();
      stopped = true;

      if (phases.includes('migrate') && command.migration) {
        current = 'migrate';
        await report('migrate', step('migrate'));
        await runMigration(path.join(target, command.migration), this.home.dataDir, (pid) => writeJsonAtomic(this.home.journalFile, { ...journal, phase: 'migrate', migrationPid: pid }));
      }

      if (command.kind === 'webapps') {
        writeJsonAtomic(this.home.webappsFile, { version: command.toVersion });
      } else {
        this.home.switchCurrent(command.toVersion);
      }
      if (phases.includes('start')) {
        current = 'start';
        await report('start', step('start'));
        const delay = Number(command.options?.agentOptions?.delayedStartS ?? 0);
        if (delay > 0) await new Promise((r) => setTimeout(r, delay * 1000));
        this.product.start();
      }
      if (phases.includes('verify')) {
        current = 'verify';
        await report('verify', step('verify'));
        if (command.kind === 'full') await this.product.verify(command.toVersion);
      }
      fs.rmSync(this.home.journalFile, { force: true });
      return { status: 'succeeded', version: command.kind === 'full' ? command.toVersion : (oldVersion ?? undefined) };
    } catch (error) {
      const reason = `${current}: ${(error as Error).message}`;
      if (!stopped) return { status: 'failed', error: reason, ...(oldVersion ? { version: oldVersion } : {}) };
      await rollBack(this.home, this.product, { commandId: command.id, kind: command.kind, oldVersion, oldWebapps, backup, phase: current });
      return { status: 'rolled-back', error: reason, ...(oldVersion ? { version: oldVersion } : {}) };
    }
  }


  private async precheck(command: UpgradeCommand): Promise<void> {
    const installed = command.kind === 'webapps' ? this.home.webappsVersion() : this.home.currentVersion();
    if (command.fromVersion && installed && installed !== command.fromVersion) {
      throw new Error(`runs ${installed}, but the command upgrades from ${command.fromVersion}`);
    }
    const stats = fs.statfsSync(this.home.dir);
    const freeBytes = stats.bavail * stats.bsize;
    if (freeBytes < command.size * 3) throw new Error(`${Math.floor(freeBytes / 1048576)} MB free, the package needs about ${Math.ceil((command.size * 3) / 1048576)} MB`);
  }
}

/**
 * Data back from the backup byte for byte, the old version current again and running, the journal
 * gone. Used when a phase after `stop` fails, and on restart after the agent died in one.
 */
export async function rollBack(home: Home, product: Product, journal: UpgradeJournal): Promise<void> {
  await product.stop();
  if (journal.backup) {
    fs.rmSync(home.dataDir, { recursive: true, force: true });
    fs.cpSync(journal.backup, home.dataDir, { recursive: true, preserveTimestamps: true });
  }
  if (journal.kind === 'webapps') writeJsonAtomic(home.webappsFile, { version: journal.oldWebapps });
  else if (journal.oldVersion) home.switchCurrent(journal.oldVersion);
  if (journal.oldVersion) product.start();
  fs.rmSync(home.journalFile, { force: true });
}

/** Runs a version's migration script against the data folder; a non-zero exit is a failure with its output. */
export async function runMigration(script: string, dataDir: string, onStart: (pid: number) => void = () => undefined): Promise<void> {
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
      if (path.isAbsolute(entry.path) || !(resolved === target || resolved.startsWith(target + path.sep))) problems.push(`${entry.path} lands outside the version folder`);
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
