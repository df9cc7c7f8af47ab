import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SigningPolicy } from '../protocol/package-signing';

/**
 * The agent's home folder:
 *   agent.json          identity and token (mode 0600), commands already done
 *   versions/<v>/       each installed version, side by side; current -> versions/<v>
 *   data/               the product's data; backups/<time>/ copies of it
 *   downloads/          packages being downloaded (<sha256>.part) and verified
 *   run/health.json     what the running product reports (its version, its pid)
 *   work/*.json         queued work of its own (reference 002's scans); role.json: active or standby
 *   webapps.json        the web-apps version installed over the core one, if any (a full upgrade removes it)
 *   upgrade-journal.json  how to undo the upgrade under way, once it stopped anything
 *   signing.json        the cluster's signing policy and keys, as the server last sent them
 */
export class Home {
  constructor(readonly dir: string) {}

  get stateFile(): string {
    return path.join(this.dir, 'agent.json');
  }
  get versionsDir(): string {
    return path.join(this.dir, 'versions');
  }
  versionDir(version: string): string {
    return path.join(this.versionsDir, version);
  }
  get currentLink(): string {
    return path.join(this.dir, 'current');
  }
  get dataDir(): string {
    return path.join(this.dir, 'data');
  }
  get backupsDir(): string {
    return path.join(this.dir, 'backups');
  }
  get downloadsDir(): string {
    return path.join(this.dir, 'downloads');
  }
  get healthFile(): string {
    return path.join(this.dir, 'run', 'health.json');
  }
  get workDir(): string {
    return path.join(this.dir, 'work');
  }
  get roleFile(): string {
    return path.join(this.dir, 'role.json');
  }
  /** Written before the product is stopped for an upgrade, removed once it ended either way. */
  get journalFile(): string {
    return path.join(this.dir, 'upgrade-journal.json');
  }
  get webappsFile(): string {
    return path.join(this.dir, 'webapps.json');
  }
  get signingFile(): string {
    return path.join(this.dir, 'signing.json');
  }

  /** The cluster's signing policy as last received (pairing, heartbeats); none yet: no keys, not required. */
  signingPolicy(): SigningPolicy {
    return readJson<SigningPolicy>(this.signingFile) ?? { revision: 0, requireSignedPackages: false, keys: [] };
  }

  setSigningPolicy(policy: SigningPolicy): void {
    writeJsonAtomic(this.signingFile, policy);
  }

  prepare(): void {
    for (const dir of [
      this.dir,
      this.versionsDir,
      this.dataDir,
      this.backupsDir,
      this.downloadsDir,
      path.dirname(this.healthFile),
      this.workDir,
    ])
      fs.mkdirSync(dir, { recursive: true });
  }

  /** The installed version: the folder `current` points at, or null before the first install. */
  currentVersion(): string | null {
    try {
      return path.basename(fs.readlinkSync(this.currentLink));
    } catch {
      return null;
    }
  }

  /** Points `current` at a version in one step (a new link renamed over the old). */
  switchCurrent(version: string): void {
    const temp = `${this.currentLink}.${process.pid}.tmp`;
    fs.rmSync(temp, { force: true });
    fs.symlinkSync(path.join('versions', version), temp);
    fs.renameSync(temp, this.currentLink);
  }

  webappsVersion(): string | null {
    return (readJson<{ version?: string | null }>(this.webappsFile)?.version as string | undefined) ?? null;
  }

  /** Records the web-apps version installed, or removes the record (null: none, as after a full upgrade). */
  setWebappsVersion(version: string | null): void {
    if (version) writeJsonAtomic(this.webappsFile, { version });
    else fs.rmSync(this.webappsFile, { force: true });
  }
}

export function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** Writes a file whole or not at all: a temp file renamed over the old one. */
export function writeJsonAtomic(file: string, value: unknown, mode = 0o644): void {
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, JSON.stringify(value, null, 2), { mode });
  fs.renameSync(temp, file);
}

/** What a restart needs to undo an upgrade that was cut off after the product was stopped. */
export interface UpgradeJournal {
  commandId: string;
  kind: 'full' | 'webapps';
  oldVersion: string | null;
  oldWebapps: string | null;
  backup: string | null;
  phase: string;
  /** The migration script's process, if one was running: it must not outlive a restart. */
  migrationPid?: number;
  /** Services stopped for the upgrade (stopServices) and not started again yet: a rollback starts them. */
  stoppedServices?: string[];
}

/** A command's end as the agent reports it (POST /api/v1/agent/commands/:id/complete). */
export interface Outcome {
  status: 'succeeded' | 'failed' | 'rolled-back';
  /** The version now installed of what the command changed (the core, or the web apps). */
  version?: string;
  error?: string;
  /** Options not applied and why, and what else the operator must know (at most 20, 500 characters each). */
  notes?: string[];
  /** An upgrade's: the backup it took (a folder name in backups/), which a rollback restores. */
  backup?: string;
}

export interface AgentState {
  server: string;
  agentId: string;
  token: string;
  /** Commands done, with their outcome: the same command again is answered, not done again. */
  done: Record<string, Outcome>;
  /** The command being carried out, so that a restart knows one was cut off. */
  running?: string | null;
  /** Commands whose final report the server has not acknowledged yet: sent again on every beat. */
  unacknowledged?: string[];
  /** A succeeded upgrade asked for a reboot: the agent runs its --reboot-command once the server acknowledged this command's report. */
  rebootAfterAck?: string | null;
}
