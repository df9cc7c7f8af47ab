import * as fs from 'node:fs';
import * as path from 'node:path';
import { BACKUP_NAME, ROLLBACK_PHASES, type RollbackCommandPayload } from '../protocol/agent-protocol';
import { Home, Outcome, readJson, writeJsonAtomic } from './home';
import { Product } from './product';
import type { Report } from './upgrade-runner';

/** A rollback command as the agent receives it: its id beside the payload (src/protocol/agent-protocol.ts). */
export type RollbackCommand = { id: string } & RollbackCommandPayload;

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
    writeJsonAtomic(this.journalFile, command);
    try {
      await this.restore(command, report);
    } catch (error) {
      // The product is started on whatever is current, so the host is not left without it.
      if (this.home.currentVersion() && !this.product.running) this.product.start();
      fs.rmSync(this.journalFile, { force: true });
      return { status: 'failed', error: `rollback: ${(error as Error).message}` };
    }
    fs.rmSync(this.journalFile, { force: true });
    return { status: 'succeeded', ...(command.toVersion ? { version: command.toVersion } : {}) };
  }

  /** A rollback cut off by the agent's death, to be finished on restart: its command, or null. */
  interrupted(): RollbackCommand | null {
    return readJson<RollbackCommand>(this.journalFile);
  }

  private precheck(command: RollbackCommand): string | null {
    if (!BACKUP_NAME.test(command.backup)) return `backup ${JSON.stringify(command.backup)} is not a backup's name`;
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

  private async restore(command: RollbackCommand, report: Report): Promise<void> {
    await report('stop', percentOf('stop'));
    await this.product.stop();
    await report('restore', percentOf('restore'), `data from backup ${command.backup}`);
    fs.rmSync(this.home.dataDir, { recursive: true, force: true });
    fs.cpSync(path.join(this.home.backupsDir, command.backup), this.home.dataDir, {
      recursive: true,
      preserveTimestamps: true,
    });
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
