import * as fs from 'node:fs';
import * as path from 'node:path';
import { BACKUP_NAME, ROLLBACK_PHASES, type RollbackCommandPayload } from '../protocol/agent-protocol';
import { Home, Outcome, readJson, writeJsonAtomic } from './home';
import { Product } from './product';
import type { Report } from './upgrade-runner';

/** A rollback command as the agent receives it: its id beside the payload (src/protocol/agent-protocol.ts). */
export type RollbackCommand = { id: string } & RollbackCommandPayload;

/** A version as a folder name: never a path. */
const VERSION_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

const percentOf = (phase: (typeof ROLLBACK_PHASES)[number]) =>
  Math.floor((ROLLBACK_PHASES.indexOf(phase) / ROLLBACK_PHASES.length) * 100);

/**
 * Undoes an upgrade the server asks to roll back (docs/rollback.md): the product stops, the data
 * comes back byte for byte from the backup that upgrade took, `current` (or the web-apps record)
 * names the old version again, the product starts and is verified. Checked first: a missing
 * backup or old version fails the command before anything stops. The command is journalled before
 * the product stops, so an agent killed in the middle finishes it on restart (restoring twice
 * gives the same result).
 */
export class RollbackRunner {
  constructor(
    private readonly home: Home,
    private readonly product: Product,
  ) {}

  get journalFile(): string {
    return path.join(this.home.dir, 'rollback-journal.json');
  }

  async run(command: RollbackCommand, report: Report): Promise<Outcome> {
    await report('precheck', percentOf('precheck'));
    const problem = this.precheck(command);
    if (problem) return { status: 'failed', error: `precheck: ${problem}; nothing was changed` };
    // Journalled until the outcome is recorded (settled): a restart from here finishes the rollback.
    writeJsonAtomic(this.journalFile, command);
    const progress = { swapped: false };
    try {
      await this.restore(command, report, progress);
    } catch (error) {
      const message = (error as Error).message;
      if (!progress.swapped) {
        // The data and `current` are as they were: the product runs again as before the command.
        if (this.home.currentVersion() && !this.product.running) this.product.start();
        return { status: 'failed', error: `rollback: ${message}; nothing was changed, the product runs as before` };
      }
      return {
        status: 'failed',
        error: `rollback: ${message}; the data is the backup's and the product is stopped: roll back again, or put it right by hand`,
      };
    }
    return { status: 'succeeded', ...(command.toVersion ? { version: command.toVersion } : {}) };
  }

  /** The outcome is recorded: a restart no longer finishes this rollback. */
  settled(): void {
    fs.rmSync(this.journalFile, { force: true });
  }

  /** A rollback cut off by the agent's death, to be finished on restart: its command, or null. */
  interrupted(): RollbackCommand | null {
    return readJson<RollbackCommand>(this.journalFile);
  }

  private precheck(command: RollbackCommand): string | null {
    if (!BACKUP_NAME.test(command.backup)) return `backup ${JSON.stringify(command.backup)} is not a backup's name`;
    for (const version of [command.toVersion, command.webappsVersion])
      if (version !== null && !VERSION_NAME.test(version)) return `${JSON.stringify(version)} is not a version's name`;
    if (!fs.existsSync(path.join(this.home.backupsDir, command.backup)))
      return `backup ${command.backup} is missing from ${this.home.backupsDir}`;
    const folder =
      command.kind === 'webapps'
        ? command.toVersion && path.join(this.home.dir, 'webapps', command.toVersion)
        : command.toVersion && this.home.versionDir(command.toVersion);
    if (command.kind === 'full' && !command.toVersion) return 'no version to go back to';
    if (folder && !fs.existsSync(folder)) return `version ${command.toVersion} is no longer installed (${folder})`;
    return null;
  }

  /**
   * The data comes back through a copy beside it, swapped in by two renames: a copy cut short
   * (a full disk) leaves the data as it was. `progress.swapped` says whether the swap was made.
   */
  private async restore(command: RollbackCommand, report: Report, progress: { swapped: boolean }): Promise<void> {
    await report('stop', percentOf('stop'));
    await this.product.stop();
    await report('restore', percentOf('restore'), `data from backup ${command.backup}`);
    const staged = `${this.home.dataDir}.restoring`;
    const replaced = `${this.home.dataDir}.replaced`;
    fs.rmSync(staged, { recursive: true, force: true });
    fs.cpSync(path.join(this.home.backupsDir, command.backup), staged, { recursive: true, preserveTimestamps: true });
    fs.rmSync(replaced, { recursive: true, force: true });
    if (fs.existsSync(this.home.dataDir)) fs.renameSync(this.home.dataDir, replaced);
    fs.renameSync(staged, this.home.dataDir);
    progress.swapped = true;
    fs.rmSync(replaced, { recursive: true, force: true });
    await report('switch', percentOf('switch'));
    if (command.kind === 'webapps') {
      this.home.setWebappsVersion(command.toVersion);
    } else {
      this.home.switchCurrent(command.toVersion!);
      this.home.setWebappsVersion(command.webappsVersion);
    }
    await report('start', percentOf('start'));
    this.product.start();
    await report('verify', percentOf('verify'));
    if (command.kind === 'full') await this.product.verify(command.toVersion!);
  }
}
