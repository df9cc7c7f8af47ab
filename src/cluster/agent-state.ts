import * as semver from 'semver';

/** Pure rules for an agent's derived state and version status (docs/version-model.md). */

export const AGENT_ROLES = ['standalone', 'main', 'backup'] as const;
export type AgentRole = (typeof AGENT_ROLES)[number];

export const AGENT_STATES = ['unknown', 'offline', 'idle', 'busy', 'upgrading', 'terminating'] as const;
export type AgentState = (typeof AGENT_STATES)[number];

export const VERSION_STATUSES = ['unknown', 'latest', 'outdated', 'ahead', 'upgrading', 'failed'] as const;
export type VersionStatus = (typeof VERSION_STATUSES)[number];

export interface AgentFacts {
  os?: string;
  arch?: string;
  freeDiskMb?: number;
  memoryMb?: number;
  /** Named components and their versions, e.g. {"webapps": "10.2.1", "snmp": "1.4"}. */
  components?: Record<string, string>;
}

export interface StateInputs {
  pairedAt: Date | null;
  removalRequestedAt: Date | null;
  online: boolean;
  upgrading: boolean;
  busy: boolean;
}

/**
 * unknown (never paired) > terminating > offline > upgrading > busy > idle: the first that holds
 * wins, so an agent that went silent mid-upgrade shows offline, which is what an operator must see.
 */
export function deriveAgentState(agent: StateInputs): AgentState {
  if (!agent.pairedAt) return 'unknown';
  if (agent.removalRequestedAt) return 'terminating';
  if (!agent.online) return 'offline';
  if (agent.upgrading) return 'upgrading';
  if (agent.busy) return 'busy';
  return 'idle';
}

export interface VersionInputs {
  version: string | null;
  webappsVersion?: string | null;
  upgrading: boolean;
  lastUpgradeFailed: boolean;
}

/** A package kind: the whole product, or its web apps only. */
export type ComponentKind = 'full' | 'webapps';

/**
 * Which part of the agent is behind its target, core first (a full package replaces the web apps,
 * so the web apps are judged only once the core is on its target); null when neither is.
 * `target` is the cluster's core target version (or, while it has none, the highest version its
 * agents report); `webappsTarget` the web-apps target set by a webapps package, if any. An agent
 * with no separate web-apps version runs the web apps its core version shipped with, which is
 * behind any web-apps target.
 */
export function behindOn(
  agent: Pick<VersionInputs, 'version' | 'webappsVersion'>,
  target: string | null,
  webappsTarget: string | null = null,
): ComponentKind | null {
  if (!agent.version || !semver.valid(agent.version)) return null;
  if (target && semver.lt(agent.version, target)) return 'full';
  if (target && semver.gt(agent.version, target)) return null;
  if (!webappsTarget) return null;
  const webapps = agent.webappsVersion;
  return !webapps || !semver.valid(webapps) || semver.lt(webapps, webappsTarget) ? 'webapps' : null;
}

/** Against the cluster's targets (see behindOn): `outdated` when either the core or the web apps are behind. */
export function deriveVersionStatus(
  agent: VersionInputs,
  target: string | null,
  webappsTarget: string | null = null,
): VersionStatus {
  if (agent.upgrading) return 'upgrading';
  if (agent.lastUpgradeFailed) return 'failed';
  if (!agent.version || !semver.valid(agent.version)) return 'unknown';
  if (target && semver.gt(agent.version, target)) return 'ahead';
  return behindOn(agent, target, webappsTarget) ? 'outdated' : 'latest';
}

/** The version the statuses of a cluster are measured against. */
export function effectiveTarget(
  targetVersion: string | null,
  reportedVersions: Iterable<string | null>,
): string | null {
  if (targetVersion) return targetVersion;
  let highest: string | null = null;
  for (const v of reportedVersions) {
    if (v && semver.valid(v) && (!highest || semver.gt(v, highest))) highest = v;
  }
  return highest;
}

/**
 * How long an agent waits before its next heartbeat: AGENT_POLL_S when set (the configuration makes
 * sure the offline timeout is at least three of them), otherwise a third of the offline timeout, at
 * most 10 s; either way it may miss two and stay online. One second while it has work from us or is held.
 */
export function pollAfterMs(config: { heartbeatTimeoutS: number; agentPollS?: number }, urgent: boolean): number {
  if (urgent) return 1000;
  if (config.agentPollS !== undefined) return config.agentPollS * 1000;
  return Math.max(1000, Math.min(10_000, Math.floor((config.heartbeatTimeoutS * 1000) / 3)));
}
