import * as semver from 'semver';
import type { PackageKind } from './manifest';

/** Pure prerequisite rules: a package against the agents it would go to. */

export interface Prerequisites {
  fromVersion?: string;
  minFreeDiskMb?: number;
  os?: string[];
}

export interface AgentForCheck {
  id: string;
  name: string;
  /** The core version: a webapps package's fromVersion applies to it too. */
  version: string | null;
  facts: { os?: string; freeDiskMb?: number } | null;
}

export interface PrerequisiteFailure {
  agentId: string;
  agentName: string;
  check: 'fromVersion' | 'minFreeDiskMb' | 'os';
  required: string;
  actual: string;
}

export interface PrerequisiteWarning {
  agentId: string;
  agentName: string;
  check: 'fromVersion' | 'minFreeDiskMb' | 'os';
  reason: string;
}

export interface PrerequisiteResult {
  failures: PrerequisiteFailure[];
  /** Agents whose version or facts are unknown cannot be checked: warned about, not refused. */
  warnings: PrerequisiteWarning[];
}

export function checkPrerequisites(
  pkg: { kind: PackageKind; version: string; prerequisites: Prerequisites },
  agents: AgentForCheck[],
): PrerequisiteResult {
  const failures: PrerequisiteFailure[] = [];
  const warnings: PrerequisiteWarning[] = [];
  for (const agent of agents) {
    const who = { agentId: agent.id, agentName: agent.name };
    // An agent already on the package version has nothing to upgrade from: the plan skips it.
    if (agent.version && pkg.kind === 'full' && semver.valid(agent.version) && semver.eq(agent.version, pkg.version))
      continue;
    for (const check of CHECKS) {
      const verdict = check(pkg.prerequisites, agent);
      if (verdict && 'failure' in verdict) failures.push({ ...who, ...verdict.failure });
      else if (verdict) warnings.push({ ...who, ...verdict.warning });
    }
  }
  return { failures, warnings };
}

type Who = 'agentId' | 'agentName';
/** One prerequisite against one agent: unmet, not checkable (unknown), or null (met, or not asked for). */
type Verdict = { failure: Omit<PrerequisiteFailure, Who> } | { warning: Omit<PrerequisiteWarning, Who> } | null;

function fromVersionCheck({ fromVersion }: Prerequisites, agent: AgentForCheck): Verdict {
  if (!fromVersion) return null;
  if (!agent.version || !semver.valid(agent.version))
    return { warning: { check: 'fromVersion', reason: 'version unknown' } };
  if (semver.satisfies(agent.version, fromVersion, { includePrerelease: true })) return null;
  return { failure: { check: 'fromVersion', required: fromVersion, actual: agent.version } };
}

function freeDiskCheck({ minFreeDiskMb }: Prerequisites, agent: AgentForCheck): Verdict {
  if (minFreeDiskMb === undefined) return null;
  const free = agent.facts?.freeDiskMb;
  if (free === undefined) return { warning: { check: 'minFreeDiskMb', reason: 'free disk space unknown' } };
  if (free >= minFreeDiskMb) return null;
  return { failure: { check: 'minFreeDiskMb', required: `${minFreeDiskMb} MB free`, actual: `${free} MB free` } };
}

function osCheck({ os }: Prerequisites, agent: AgentForCheck): Verdict {
  if (!os || os.length === 0) return null;
  const agentOs = agent.facts?.os;
  if (!agentOs) return { warning: { check: 'os', reason: 'operating system unknown' } };
  if (os.map((o) => o.toLowerCase()).includes(agentOs.toLowerCase())) return null;
  return { failure: { check: 'os', required: os.join(' or '), actual: agentOs } };
}

/** The checks, in the order their failures and warnings are listed for each agent. */
const CHECKS = [fromVersionCheck, freeDiskCheck, osCheck];
