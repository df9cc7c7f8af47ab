import { AuditTrail, fieldsSummary } from '../audit/audit-trail.service';
import type { Origin } from '../audit/origin';
import { Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AuthService } from '../auth/auth.service';
import { Clock } from '../common/clock';
import { isUniqueViolation } from '../common/db-errors';
import { BadInputError, ConflictError, NotFoundError } from '../common/errors';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { Database, Tx } from '../database/database';
import { Agent } from './agent.entity';
import { AgentRepository } from './agent.repository';
import { AgentRole, deriveAgentState, deriveVersionStatus } from './agent-state';
import { AgentUpdater } from './agent-updater';
import { parseLabelSelectors, sameLabels } from './labels';
import { AgentCommandsService } from './agent-commands.service';
import { ClustersService } from './clusters.service';
import {
  AgentDto,
  AgentPageDto,
  ListAgentsQuery,
  PairingKeyDto,
  RegisterAgentDto,
  RegisteredAgentDto,
  RemovalDto,
  toAgentDto,
  UpdateAgentDto,
} from './dto/agent.dto';
import { newPairingKey } from './pairing-key';
import { type MaintenanceWindow, normalizeWindows } from '../policies/maintenance-windows';

/** Windows given replace the agent's own (null: its cluster's again); passed on only when they differ (agent.status then). */
function windowsChange(
  given: MaintenanceWindow[] | null | undefined,
  own: MaintenanceWindow[] | null,
): Pick<Agent, 'windows'> | Record<string, never> {
  if (given === undefined) return {};
  const windows = given === null ? null : normalizeWindows(given);
  return JSON.stringify(windows) === JSON.stringify(own) ? {} : { windows };
}

@Injectable()
export class AgentsService {
  private readonly logger = new Logger(AgentsService.name);

  constructor(
    private readonly db: Database,
    private readonly agents: AgentRepository,
    private readonly clusters: ClustersService,
    private readonly updater: AgentUpdater,
    private readonly commands: AgentCommandsService,
    private readonly auth: AuthService,
    private readonly clock: Clock,
    @InjectAppConfig() private readonly config: AppConfig,
    private readonly audit: AuditTrail,
  ) {}

  async register(clusterId: string, dto: RegisterAgentDto, origin: Origin): Promise<RegisteredAgentDto> {
    const failoverGroup = dto.failoverGroup ?? null;
    checkRoleAndGroup(dto.role, failoverGroup);
    const now = this.clock.now();
    const pairing = newPairingKey(now, this.config.pairingKeyTtlS);
    const agent = await this.translateUniqueViolation(() =>
      this.db.transaction(async (tx) => {
        await this.clusters.require(clusterId, tx);
        await this.checkPlacement(tx, clusterId, {
          id: null,
          name: dto.name,
          address: dto.address,
          role: dto.role,
          failoverGroup,
        });
        const created = Object.assign(new Agent(), {
          id: randomUUID(),
          clusterId,
          name: dto.name,
          address: dto.address,
          role: dto.role,
          failoverGroup,
          active: dto.role !== 'backup',
          version: null,
          webappsVersion: null,
          busy: false,
          facts: null,
          labels: dto.labels ?? {},
          windows: null,
          remoteUpgrade: true,
          autoUpgrade: true,
          pairingKeyHash: pairing.hash,
          pairingKeyExpiresAt: pairing.expiresAt,
          pairingKeyUsedAt: null,
          pairedAt: null,
          lastSeenAt: null,
          online: false,
          removalRequestedAt: null,
          upgradeId: null,
          hold: false,
          upgrading: false,
          lastUpgradeFailed: false,
          autoUpgradeBlocked: null,
          autoUpgradeRetryAt: null,
          autoUpgradeAttempts: 0,
          createdAt: now,
          updatedAt: now,
        } satisfies Omit<Agent, 'state' | 'versionStatus'>);
        created.state = deriveAgentState(created);
        created.versionStatus = deriveVersionStatus(created, null);
        await this.agents.insert(tx.em, created);
        await this.audit.record(tx, origin, {
          action: 'agent.register',
          target: 'agent',
          targetId: created.id,
          clusterId,
          summary: `registered agent "${created.name}" (${fieldsSummary({ ...dto, name: undefined })}); a pairing key was issued`,
        });
        await this.updater.publish(tx, created);
        return created;
      }),
    );
    this.logger.log(`registered agent ${agent.id} (${agent.name}, ${agent.role}) in cluster ${clusterId}`);
    return { ...toAgentDto(agent), pairingKey: pairing.key, pairingKeyExpiresAt: pairing.expiresAt.toISOString() };
  }

  async list(clusterId: string, query: ListAgentsQuery): Promise<AgentPageDto> {
    await this.clusters.require(clusterId);
    const limit = query.limit ?? 500;
    const offset = query.offset ?? 0;
    const { label, ...filter } = query;
    // The DTO checked the selectors; parsing them again cannot fail.
    const labels = label ? parseLabelSelectors('label', label).labels : undefined;
    const { items, total } = await this.agents.list({ clusterId, ...filter, labels }, limit, offset);
    return { items: items.map(toAgentDto), total, limit, offset };
  }

  async get(id: string): Promise<AgentDto> {
    return toAgentDto(await this.require(id));
  }

  /** Every agent of a cluster with what prerequisite checks read: version and last facts. */
  async inventory(
    clusterId: string,
  ): Promise<Array<Pick<Agent, 'id' | 'name' | 'version' | 'webappsVersion' | 'facts' | 'clusterId'>>> {
    return this.agents.findInCluster(this.db.reader, clusterId);
  }

  autoUpgradeCandidates(clusterId: string, limit = 50): Promise<Agent[]> {
    return this.agents.autoUpgradeCandidates(clusterId, this.clock.now(), limit);
  }

  /** The members of a failover group (a pair), as they are now. */
  pairOf(agent: Pick<Agent, 'clusterId' | 'failoverGroup'>): Promise<Agent[]> {
    return agent.failoverGroup
      ? this.agents.findGroupMembers(this.db.reader, agent.clusterId, agent.failoverGroup)
      : Promise.resolve([]);
  }

  /**
   * Records why auto-upgrade leaves an agent alone and when it looks again (null = not until someone
   * acts), unless that is what it records already; `attempt` counts one more attempt that did not
   * bring it up (the back-off grows with them).
   */
  async holdAutoUpgrade(id: string, reason: string, retryAt: Date | null, attempt = false): Promise<void> {
    await this.db.transaction(async (tx) => {
      const agent = await this.agents.findForUpdate(tx, id);
      if (!agent || agent.upgradeId) return;
      const due = !agent.autoUpgradeRetryAt || agent.autoUpgradeRetryAt <= this.clock.now();
      if (!attempt && agent.autoUpgradeBlocked === reason && !due) return;
      await this.updater.apply(tx, agent, {
        autoUpgradeBlocked: reason,
        autoUpgradeRetryAt: retryAt,
        ...(attempt ? { autoUpgradeAttempts: agent.autoUpgradeAttempts + 1 } : {}),
      });
    });
  }

  /** Every agent of a cluster, read in the caller's transaction (the planner's input). */
  inClusterForPlanning(tx: Tx, clusterId: string): Promise<Agent[]> {
    return this.agents.findInCluster(tx.em, clusterId);
  }

  /** Whether the cluster's agents run more than one version of what a package of this kind installs. */
  async isMixed(tx: Tx, clusterId: string, kind: 'full' | 'webapps'): Promise<boolean> {
    return (await this.agents.versionCount(tx.em, clusterId, kind)) > 1;
  }

  /** The agents with these ids, locked until the transaction ends (the executor's view of them). */
  lockMany(tx: Tx, ids: string[]): Promise<Agent[]> {
    return this.agents.findManyForUpdate(tx, ids);
  }

  /**
   * The agents with these ids, locked, and the other members of their pairs, read: what the
   * executor's pair gate needs to know (is the peer online, healthy, taking part).
   */
  async lockWithPeers(tx: Tx, ids: string[]): Promise<Agent[]> {
    const agents = await this.agents.findManyForUpdate(tx, ids);
    return [...agents, ...(await this.agents.findPeersOf(tx.em, agents))];
  }

  /**
   * What an upgrade records on its agents: the upgrade holding them, hold, upgrading, whether the
   * last upgrade failed, which pair member is active, the version a finished upgrade reported. Derived state
   * and version status follow, with an agent.status event when they change.
   */
  applyUpgradeState(
    tx: Tx,
    agent: Agent,
    changes: Partial<
      Pick<
        Agent,
        | 'upgradeId'
        | 'hold'
        | 'upgrading'
        | 'lastUpgradeFailed'
        | 'active'
        | 'version'
        | 'webappsVersion'
        | 'autoUpgradeBlocked'
        | 'autoUpgradeRetryAt'
        | 'autoUpgradeAttempts'
      >
    >,
  ): Promise<Agent> {
    return this.updater.apply(tx, agent, changes);
  }

  /** The agent, or a 404 naming it. */
  async require(id: string, tx?: Tx): Promise<Agent> {
    const agent = tx ? await this.agents.findForUpdate(tx, id) : await this.agents.findById(id);
    if (!agent) throw new NotFoundError('Agent', id);
    return agent;
  }

  async update(id: string, dto: UpdateAgentDto, origin: Origin): Promise<AgentDto> {
    const agent = await this.translateUniqueViolation(() =>
      this.db.transaction(async (tx) => {
        const found = await this.require(id, tx);
        const next = {
          name: dto.name ?? found.name,
          address: dto.address ?? found.address,
          role: dto.role ?? found.role,
          failoverGroup: dto.failoverGroup === undefined ? found.failoverGroup : dto.failoverGroup,
        };
        const placementChanged =
          next.address !== found.address || next.role !== found.role || next.failoverGroup !== found.failoverGroup;
        if (placementChanged && found.upgradeId) {
          throw new ConflictError(
            'AGENT_IN_UPGRADE',
            `Agent ${found.name} is held by upgrade ${found.upgradeId}; change its address, role or pair after that upgrade ends or is cancelled.`,
            { upgradeId: found.upgradeId },
          );
        }
        checkRoleAndGroup(next.role, next.failoverGroup);
        await this.checkPlacement(tx, found.clusterId, { id: found.id, ...next });
        const roleChanged = next.role !== found.role || next.failoverGroup !== found.failoverGroup;
        // Labels given replace the agent's whole map; passed on only when they differ (agent.status then).
        const labelsChanged = dto.labels !== undefined && !sameLabels(dto.labels, found.labels);
        await this.audit.record(tx, origin, {
          action: 'agent.update',
          target: 'agent',
          targetId: found.id,
          clusterId: found.clusterId,
          summary: `changed agent "${found.name}": ${fieldsSummary(dto) || 'nothing'}`,
        });
        return this.updater.apply(tx, found, {
          ...next,
          ...(roleChanged ? { active: next.role !== 'backup' } : {}),
          ...(labelsChanged ? { labels: { ...dto.labels } } : {}),
          ...windowsChange(dto.windows, found.windows),
        });
      }),
    );
    return toAgentDto(agent);
  }

  /** Admins turn auto-upgrade on or off; a legacy agent cannot upgrade remotely, so its switch is refused (as reference 002 greys it out). */
  async setAutoUpgrade(id: string, enabled: boolean, origin: Origin): Promise<AgentDto> {
    const agent = await this.db.transaction(async (tx) => {
      const found = await this.require(id, tx);
      if (!found.remoteUpgrade) {
        throw new ConflictError(
          'LEGACY_AGENT',
          `${found.name} is a legacy agent that cannot upgrade remotely, so auto-upgrade does not apply to it: reinstall it by hand with the new version and pair it again.`,
          { remoteUpgrade: false },
        );
      }
      await this.audit.record(tx, origin, {
        action: 'agent.auto-upgrade',
        target: 'agent',
        targetId: found.id,
        clusterId: found.clusterId,
        summary: `turned auto-upgrade ${enabled ? 'on' : 'off'} for agent "${found.name}"`,
      });
      return this.updater.apply(tx, found, { autoUpgrade: enabled });
    });
    this.logger.log(`auto-upgrade ${enabled ? 'on' : 'off'} for agent ${id}`);
    return toAgentDto(agent);
  }

  /**
   * Removes an agent: at once when it is idle, offline or never paired; a busy one becomes
   * terminating and goes when it next reports idle. An agent held by an upgrade is refused.
   */
  async remove(id: string, origin: Origin): Promise<RemovalDto> {
    const result = await this.db.transaction(async (tx) => {
      const agent = await this.require(id, tx);
      if (agent.upgradeId) {
        throw new ConflictError(
          'AGENT_IN_UPGRADE',
          `Agent ${agent.name} is part of upgrade ${agent.upgradeId}; cancel that upgrade or wait for it to end, then remove the agent.`,
          { upgradeId: agent.upgradeId },
        );
      }
      await this.audit.record(tx, origin, {
        action: 'agent.remove',
        target: 'agent',
        targetId: agent.id,
        clusterId: agent.clusterId,
        summary:
          agent.state === 'busy'
            ? `asked to remove agent "${agent.name}": it is busy, and goes when it next reports idle`
            : `removed agent "${agent.name}"`,
      });
      if (agent.state === 'busy') {
        const terminating = await this.updater.apply(tx, agent, { removalRequestedAt: this.clock.now() });
        return { removed: false, agent: terminating };
      }
      await this.removeNow(tx, agent);
      return { removed: true, agent };
    });
    this.logger.log(result.removed ? `removed agent ${id}` : `agent ${id} is terminating; it goes when idle`);
    return { removed: result.removed, agent: toAgentDto(result.agent) };
  }

  /** Deletes the agent with its tokens and open commands. */
  async removeNow(tx: Tx, agent: Agent): Promise<void> {
    await this.auth.revokeAgentTokens(tx, agent.id);
    await this.commands.cancelOpen(tx, agent.id, 'the agent was removed');
    await this.agents.delete(tx.em, agent.id);
    await this.updater.publish(tx, agent, { removed: true });
  }

  /**
   * A new one-time pairing key for a reinstalled agent (reference 002's legacy path): the old token
   * stops working, and the agent is unpaired until it pairs with the new key.
   */
  async issuePairingKey(id: string, origin: Origin): Promise<PairingKeyDto> {
    const pairing = newPairingKey(this.clock.now(), this.config.pairingKeyTtlS);
    await this.db.transaction(async (tx) => {
      const agent = await this.require(id, tx);
      await this.auth.revokeAgentTokens(tx, agent.id);
      await this.audit.record(tx, origin, {
        action: 'agent.pairing-key',
        target: 'agent',
        targetId: agent.id,
        clusterId: agent.clusterId,
        summary: `issued a new pairing key for agent "${agent.name}"; its old token stopped working`,
      });
      await this.updater.apply(tx, agent, {
        pairingKeyHash: pairing.hash,
        pairingKeyExpiresAt: pairing.expiresAt,
        pairingKeyUsedAt: null,
        pairedAt: null,
        online: false,
      });
    });
    this.logger.log(`issued a new pairing key for agent ${id}`);
    return { pairingKey: pairing.key, pairingKeyExpiresAt: pairing.expiresAt.toISOString() };
  }

  /** Address and name unique in the cluster; at most one main and one backup per failover group. */
  private async checkPlacement(
    tx: Tx,
    clusterId: string,
    a: { id: string | null; name: string; address: string; role: AgentRole; failoverGroup: string | null },
  ): Promise<void> {
    const sameAddress = await this.agents.findByAddress(tx.em, clusterId, a.address);
    if (sameAddress && sameAddress.id !== a.id) {
      throw new ConflictError(
        'ADDRESS_TAKEN',
        `Address ${a.address} is already agent ${sameAddress.name} (${sameAddress.id}) in this cluster; an address is unique in a cluster.`,
        { agentId: sameAddress.id },
      );
    }
    const sameName = await this.agents.findByName(tx.em, clusterId, a.name);
    if (sameName && sameName.id !== a.id) {
      throw new ConflictError(
        'NAME_TAKEN',
        `Name ${a.name} is already agent ${sameName.id} in this cluster; choose another name.`,
        { agentId: sameName.id },
      );
    }
    if (a.failoverGroup) {
      const members = (await this.agents.findGroupMembers(tx.em, clusterId, a.failoverGroup)).filter(
        (m) => m.id !== a.id,
      );
      const sameRole = members.find((m) => m.role === a.role);
      if (sameRole) {
        throw new ConflictError(
          'GROUP_ROLE_TAKEN',
          `Failover group ${a.failoverGroup} already has a ${a.role} (agent ${sameRole.name}); a group holds one main and one backup.`,
          { agentId: sameRole.id },
        );
      }
    }
  }

  /** Concurrent writers can slip past the checks above; the unique indexes catch them. */
  private async translateUniqueViolation<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new ConflictError(
          'AGENT_CONFLICT',
          'Another agent with the same address, name or pair role was registered at the same moment; list the agents and try again.',
        );
      }
      throw error;
    }
  }
}

/** main and backup need a failover group; standalone has none. */
export function checkRoleAndGroup(role: AgentRole, failoverGroup: string | null): void {
  if (role !== 'standalone' && !failoverGroup) {
    throw new BadInputError(`A ${role} agent needs a failoverGroup naming its pair.`, [
      { field: 'failoverGroup', problems: [`failoverGroup is required for role ${role}`] },
    ]);
  }
  if (role === 'standalone' && failoverGroup) {
    throw new BadInputError('A standalone agent has no failoverGroup; use role main or backup to put it in a pair.', [
      { field: 'failoverGroup', problems: ['failoverGroup must be absent for role standalone'] },
    ]);
  }
}
