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
  const { fromVersion, minFreeDiskMb, os } = pkg.prerequisites;
  for (const agent of agents) {
    const who = { agentId: agent.id, agentName: agent.name };
    // An agent already on the package version has nothing to upgrade from: the plan skips it.
    if (agent.version && pkg.kind === 'full' && semver.valid(agent.version) && semver.eq(agent.version, pkg.version))
      continue;

    if (fromVersion) {
      if (!agent.version || !semver.valid(agent.version))
        warnings.push({ ...who, check: 'fromVersion', reason: 'version unknown' });
      else if (!semver.satisfies(agent.version, fromVersion, { includePrerelease: true })) {
        failures.push({ ...who, check: 'fromVersion', required: fromVersion, actual: agent.version });
      }
    }
    if (minFreeDiskMb !== undefined) {
      const free = agent.facts?.freeDiskMb;
      if (free === undefined) warnings.push({ ...who, check: 'minFreeDiskMb', reason: 'free disk space unknown' });
      else if (free < minFreeDiskMb)
        failures.push({
          ...who,
          check: 'minFreeDiskMb',
          required: `${minFreeDiskMb} MB free`,
          actual: `${free} MB free`,
        });
    }
    if (os && os.length > 0) {
      const agentOs = agent.facts?.os;
      if (!agentOs) warnings.push({ ...who, check: 'os', reason: 'operating system unknown' });
      else if (!os.map((o) => o.toLowerCase()).includes(agentOs.toLowerCase()))
        failures.push({ ...who, check: 'os', required: os.join(' or '), actual: agentOs });
    }
  }
  return { failures, warnings };
}
