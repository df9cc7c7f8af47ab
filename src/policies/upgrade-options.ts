/**
 * Failover policies and upgrade options: plain types and defaults, shared by the cluster (its
 * defaults), the planner and the upgrades module. No Nest, no I/O.
 */
/**
 * The policies a request may name. What each does with a pair is its entry in POLICY_RULES
 * (planner.ts); the DTOs' enums follow this list (docs/ARCHITECTURE.md, "A failover policy").
 */
export const FAILOVER_POLICIES = ['default', 'simultaneous', 'backup-first', 'backup-first-switchback'] as const;
export type FailoverPolicy = (typeof FAILOVER_POLICIES)[number];
/** A policy a cluster can hold as its default: every policy but `default` itself. */
export type ConcretePolicy = Exclude<FailoverPolicy, 'default'>;
export const CONCRETE_POLICIES = FAILOVER_POLICIES.filter((p): p is ConcretePolicy => p !== 'default');

/** A count of units, or a share of them such as "25%". */
export type CountOrPercent = number | `${number}%`;

export type AgentOptionValue = string | number | boolean;

export interface UpgradeOptions {
  maxParallel: CountOrPercent;
  failureThreshold: CountOrPercent;
  canary: number;
  waitForIdle: boolean;
  idleTimeoutS: number;
  offlineTimeoutS: number;
  phaseTimeoutS: number;
  backup: boolean;
  migrate: boolean;
  startAfterUpgrade: boolean;
  rebootAfter: boolean;
  switchBackOnFailure: boolean;
  allowLegacyPolicyOnMajor: boolean;
  /** Seconds the agent waits before it starts the product again (reference 001's delayed start). */
  delayedStartS: number;
  /** Services the agent stops before the upgrade and starts after it (reference 001's "stop SNMP"). */
  stopServices: string[];
  /** Install even where the package's `fromVersion` prerequisite does not hold (an operator's override). */
  ignoreVersionCheck: boolean;
  /** Plan a package older than an agent's version: going back is done only when asked for. */
  allowDowngrade: boolean;
  agentOptions: Record<string, AgentOptionValue>;
  /**
   * Start a unit only inside its agents' maintenance windows, and only when its predicted duration
   * fits before the window closes (docs/maintenance-windows.md). Running units are never cut.
   */
  respectWindows: boolean;
  /**
   * What a failed step leads to: `stop` (no new unit after the failure threshold; the rest is left
   * as it is), or `rollback` (no new unit after the first failure; once the running ones ended, the
   * whole upgrade is rolled back: docs/rollback.md).
   */
  onFailure: OnFailure;
  /**
   * The mixed-version budget (docs/rollback.md, "A mixed-version budget"): how long the cluster may
   * run more than one version during the upgrade, in minutes, and how many of its agents may be
   * left behind on another version meanwhile; absent: no limit. When one runs out, `onBudget`.
   */
  maxMixedMinutes?: number;
  maxMixedAgents?: number;
  /** What a budget that ran out does: pause the upgrade, or roll it back. */
  onBudget: OnBudget;
}

export const ON_FAILURE = ['stop', 'rollback'] as const;
export type OnFailure = (typeof ON_FAILURE)[number];
export const ON_BUDGET = ['pause', 'rollback'] as const;
export type OnBudget = (typeof ON_BUDGET)[number];

/**
 * What a new cluster starts with. All units at once (as the vendors' tools do), but no new unit
 * after the first failed one, waiting up to an hour for busy agents and ten minutes for offline ones.
 */
export const DEFAULT_UPGRADE_OPTIONS: UpgradeOptions = {
  maxParallel: 0,
  failureThreshold: 1,
  canary: 0,
  waitForIdle: true,
  idleTimeoutS: 3600,
  offlineTimeoutS: 600,
  phaseTimeoutS: 1800,
  backup: true,
  migrate: true,
  startAfterUpgrade: true,
  rebootAfter: false,
  switchBackOnFailure: true,
  allowLegacyPolicyOnMajor: false,
  delayedStartS: 0,
  stopServices: [],
  ignoreVersionCheck: false,
  allowDowngrade: false,
  agentOptions: {},
  respectWindows: false,
  onFailure: 'stop',
  onBudget: 'pause',
};

/**
 * The options that would roll an upgrade back by itself while `backup` is off (a rollback restores
 * the backups the upgrade takes: docs/rollback.md): refused wherever options are set.
 */
export function rollbackWithoutBackup(options: UpgradeOptions): Array<'onFailure' | 'onBudget'> {
  if (options.backup) return [];
  const budgeted = options.maxMixedMinutes !== undefined || options.maxMixedAgents !== undefined;
  return [
    ...(options.onFailure === 'rollback' ? (['onFailure'] as const) : []),
    ...(options.onBudget === 'rollback' && budgeted ? (['onBudget'] as const) : []),
  ];
}

/** The 400's words for rollbackWithoutBackup's answer, the fields under `at` (options, defaultOptions). */
export function rollbackWithoutBackupProblem(fields: string[], at: string): { message: string; fields: string[] } {
  const named = fields.map((f) => `${at}.${f}`);
  return {
    message: `${named.join(' and ')} rollback needs the backups a rollback restores, but ${at}.backup is false: turn backup on, or choose stop/pause.`,
    fields: named,
  };
}

/**
 * Fills what `partial` leaves out from `defaults`, and what those lack (options added after a
 * cluster's defaults were saved, or a null an older version let in) from DEFAULT_UPGRADE_OPTIONS.
 */
export function resolveOptions(
  defaults: Partial<UpgradeOptions>,
  partial: Partial<UpgradeOptions> = {},
): UpgradeOptions {
  const defined = (o: Partial<UpgradeOptions>) =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)) as Partial<UpgradeOptions>;
  return { ...DEFAULT_UPGRADE_OPTIONS, ...defined(defaults), ...defined(partial) };
}
