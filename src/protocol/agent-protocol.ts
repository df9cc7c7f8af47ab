/**
 * The agent protocol's vocabulary, in one place for both ends: the server (src/cluster,
 * src/upgrades), the reference agent (src/agent) and the tests import it. Plain TypeScript with no
 * framework, so an agent can use it alone. The wire format is in docs/agent-protocol.md.
 */

/** What an agent can be told to do. */
export const COMMAND_TYPES = ['upgrade', 'switchover', 'migrate', 'rollback'] as const;
export type CommandType = (typeof COMMAND_TYPES)[number];

/** How an agent may end a command (complete report). */
export const REPORTED_ENDS = ['succeeded', 'failed', 'rolled-back'] as const;
export type ReportedEnd = (typeof REPORTED_ENDS)[number];

/**
 * The phases of an upgrade, in the order the agent runs them: the new version is installed beside
 * the old one before the product stops, so the product is down only from `stop` to `start`. A
 * failure before `stop` leaves the old version running; after it, the agent rolls back.
 */
export const UPGRADE_PHASES = ['precheck', 'backup', 'install', 'stop', 'migrate', 'start', 'verify'] as const;
export type UpgradePhase = (typeof UPGRADE_PHASES)[number];

/** The phases an upgrade with these options runs, in order. */
export function upgradePhases(options: {
  backup: boolean;
  migrate: boolean;
  startAfterUpgrade: boolean;
}): UpgradePhase[] {
  const skipped = new Set<UpgradePhase>([
    ...(options.backup ? [] : ['backup' as const]),
    ...(options.migrate ? [] : ['migrate' as const]),
    ...(options.startAfterUpgrade ? [] : ['start' as const, 'verify' as const]),
  ]);
  return UPGRADE_PHASES.filter((phase) => !skipped.has(phase));
}

/** An upgrade command's options (older servers send fewer: a missing one is false, 0 or empty). */
export interface UpgradeCommandOptions {
  rebootAfter?: boolean;
  waitForIdle?: boolean;
  phaseTimeoutS?: number;
  /** Seconds to wait in the start phase before the product starts; 0: none. */
  delayedStartS?: number;
  /** Services stopped (`<service command> stop <name>`) before the product, started again after it. */
  stopServices?: string[];
  /** Upgrade even when the installed version is not the command's fromVersion. */
  ignoreVersionCheck?: boolean;
  agentOptions?: Record<string, string | number | boolean>;
}

/** Install a package: what to download, what it replaces, and which phases to run. */
export interface UpgradeCommandPayload {
  upgradeId?: string;
  stepId?: string;
  packageId: string;
  sha256: string;
  size: number;
  /** The package's Ed25519 signature (base64) as uploaded, or null: unsigned (src/protocol/package-signing.ts). Older servers send none. */
  signature?: string | null;
  downloadPath: string;
  fromVersion: string | null;
  toVersion: string;
  kind: 'full' | 'webapps';
  migration: string | null;
  /** In UPGRADE_PHASES order; an agent runs them in that order whatever the list's. */
  phases: string[];
  options?: UpgradeCommandOptions;
}

/** A backup's name as an agent reports it (an upgrade's complete report): a plain name, never a path. */
export const BACKUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * The phases of a rollback (docs/rollback.md), in order: the product stops, its data comes back
 * from the backup the upgrade took, `current` points at the old version again, the product starts
 * and is verified. A failure before `stop` (the backup or the old version is gone) changes nothing.
 */
export const ROLLBACK_PHASES = ['precheck', 'stop', 'restore', 'switch', 'start', 'verify'] as const;
export type RollbackPhase = (typeof ROLLBACK_PHASES)[number];

/**
 * Undo an upgrade on this agent: back to `toVersion` (for `kind` webapps, the web-apps version;
 * null: none) with the data of `backup`, the backup the upgrade's command reported taking.
 */
export interface RollbackCommandPayload {
  upgradeId: string;
  stepId: string;
  kind: 'full' | 'webapps';
  /** What the upgrade installed, which the agent runs now. */
  fromVersion: string | null;
  toVersion: string | null;
  /** For a full rollback: the web-apps version the agent had before the upgrade (null: none). */
  webappsVersion: string | null;
  /** The backup's name, as the upgrade's complete report gave it. */
  backup: string;
  phases: string[];
}

/** Become the pair's active member (`activate`), or its standby. */
export interface SwitchoverCommandPayload {
  activate: boolean;
  failoverGroup: string | null;
  peerAgentId: string | null;
  upgradeId?: string;
  stepId?: string;
}

/** Run the installed version's data migration again. */
export interface MigrateCommandPayload {
  version: string | null;
}

/** A command as a heartbeat hands it out: its id and type, and its payload's fields beside them. */
export type AgentCommandMessage =
  | ({ id: string; type: 'upgrade' } & UpgradeCommandPayload)
  | ({ id: string; type: 'switchover' } & SwitchoverCommandPayload)
  | ({ id: string; type: 'migrate' } & MigrateCommandPayload)
  | ({ id: string; type: 'rollback' } & RollbackCommandPayload);
