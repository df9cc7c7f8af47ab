/**
 * Failover policies and upgrade options: plain types and defaults, shared by the cluster (its
 * defaults), the planner and the upgrades module. No Nest, no I/O.
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
  agentOptions: Record<string, AgentOptionValue>;
}

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
  agentOptions: {},
};

/** Fills what `partial` leaves out from `defaults`. */
export function resolveOptions(defaults: UpgradeOptions, partial: Partial<UpgradeOptions> = {}): UpgradeOptions {
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<UpgradeOptions>;
  return { ...defaults, ...defined };
}
