import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock';
import { Tx } from '../database/database';
import { EventLog, NewEvent } from '../progress/event-log.service';
import { Agent } from './agent.entity';
import { AgentRepository } from './agent.repository';
import { deriveAgentState, deriveVersionStatus, effectiveTarget } from './agent-state';
import { ClusterRepository } from './cluster.repository';
import { type AgentStatusEventData, toAgentDto } from './dto/agent.dto';

/**
 * The fields whose change publishes an `agent.status` event (which carries the whole agent as the
 * API shows it). Not `lastSeenAt` nor facts alone: heartbeats move those all the time (AgentLiveness).
 */
const VISIBLE = [
  'state',
  'versionStatus',
  'version',
  'webappsVersion',
  'active',
  'busy',
  'hold',
  'autoUpgrade',
  'remoteUpgrade',
  'upgradeId',
  'autoUpgradeBlocked',
  // Compared by identity: AgentsService.update passes labels and windows only when they differ.
  'labels',
  'windows',
] as const;

/** An agent's `agent.status` event, from the row in hand: no read of its own (this runs on liveness sweeps of many agents). */
function statusEvent(agent: Agent, extra: Pick<AgentStatusEventData, 'removed'> = {}): NewEvent<'agent.status'> {
  return {
    type: 'agent.status',
    clusterId: agent.clusterId,
    agentId: agent.id,
    data: { ...toAgentDto(agent), ...extra },
  };
}

/**
 * The one path by which an agent row changes: applies the change, derives state and version status
 * again, saves, and appends an `agent.status` event in the same transaction when anything visible
 * changed. When the cluster has no target version and this change moves the highest reported
 * version, every agent of the cluster is measured again.
 */
@Injectable()
export class AgentUpdater {
  constructor(
    private readonly agents: AgentRepository,
    private readonly clusters: ClusterRepository,
    private readonly events: EventLog,
    private readonly clock: Clock,
  ) {}

  async apply(tx: Tx, agent: Agent, changes: Partial<Agent>): Promise<Agent> {
    const before = { ...agent };
    Object.assign(agent, changes);
    agent.state = deriveAgentState(agent);
    const versionInputsChanged =
      before.version !== agent.version ||
      before.webappsVersion !== agent.webappsVersion ||
      before.upgrading !== agent.upgrading ||
      before.lastUpgradeFailed !== agent.lastUpgradeFailed;

    let refreshCluster = false;
    agent.updatedAt = this.clock.now();
    if (versionInputsChanged && (agent.upgrading || agent.lastUpgradeFailed)) {
      // upgrading and failed do not depend on the target: no need to read it (the executor's hot path).
      agent.versionStatus = deriveVersionStatus(agent, null);
    } else if (versionInputsChanged) {
      const cluster = await this.clusters.findById(agent.clusterId, tx.em);
      const webappsTarget = cluster?.webappsTargetVersion ?? null;
      if (cluster?.targetVersion) {
        agent.versionStatus = deriveVersionStatus(agent, cluster.targetVersion, webappsTarget);
      } else {
        // Measured against the highest version reported: the others', with this agent's before and after.
        const others = await this.agents.distinctVersions(tx.em, agent.clusterId, agent.id);
        const previous = effectiveTarget(null, [...others, before.version]);
        const target = effectiveTarget(null, [...others, agent.version]);
        agent.versionStatus = deriveVersionStatus(agent, target, webappsTarget);
        refreshCluster = previous !== target;
      }
    }
    // Only the columns that moved: one fixed UPDATE whatever the change (see Rows).
    const moved = Object.fromEntries(
      Object.keys(agent)
        .filter((k) => k !== 'id' && before[k as keyof Agent] !== agent[k as keyof Agent])
        .map((k) => [k, agent[k as keyof Agent]]),
    );
    await this.agents.update(tx.em, agent.id, moved);
    if (VISIBLE.some((k) => before[k] !== agent[k])) {
      await this.events.append(tx, [statusEvent(agent)]);
    }
    if (refreshCluster) await this.refreshVersionStatuses(tx, agent.clusterId);
    return agent;
  }

  /** Measures every agent of a cluster against its (effective) target again; after the target moves. */
  async refreshVersionStatuses(tx: Tx, clusterId: string): Promise<void> {
    const cluster = await this.clusters.findById(clusterId, tx.em);
    const members = await this.agents.findInCluster(tx.em, clusterId);
    const target = effectiveTarget(
      cluster?.targetVersion ?? null,
      members.map((a) => a.version),
    );
    const events: NewEvent<'agent.status'>[] = [];
    for (const agent of members) {
      const status = deriveVersionStatus(agent, target, cluster?.webappsTargetVersion ?? null);
      if (status === agent.versionStatus) continue;
      agent.versionStatus = status;
      agent.updatedAt = this.clock.now();
      await this.agents.update(tx.em, agent.id, { versionStatus: status, updatedAt: agent.updatedAt });
      events.push(statusEvent(agent));
    }
    await this.events.append(tx, events);
  }

  /** Publishes an agent as it is: on registration, and with {removed: true} on removal. */
  async publish(tx: Tx, agent: Agent, extra: Pick<AgentStatusEventData, 'removed'> = {}): Promise<void> {
    await this.events.append(tx, [statusEvent(agent, extra)]);
  }
}
