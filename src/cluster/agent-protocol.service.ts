import { AuditTrail } from '../audit/audit-trail.service';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { isDeepStrictEqual } from 'node:util';
import { AuthService } from '../auth/auth.service';
import { hashSecret } from '../auth/token-secret';
import { Clock } from '../common/clock';
import { UnauthenticatedError } from '../common/errors';
import { resolvePort } from '../common/ports';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { Database } from '../database/database';
import { Agent } from './agent.entity';
import { AgentRepository, HeartbeatView } from './agent.repository';
import { AgentFacts, pollAfterMs } from './agent-state';
import { AgentCommandsService } from './agent-commands.service';
import { AgentLiveness } from './agent-liveness';
import { AgentUpdater } from './agent-updater';
import { AgentsService } from './agents.service';
import { FactsDto, HeartbeatAnswerDto, HeartbeatDto, PairAnswerDto, PairDto } from './dto/agent-protocol.dto';
import { SigningKeysService } from './signing-keys.service';

/** Facts as plain data, so they compare and serialise the same whether from JSON or from a DTO. */
const plainFacts = (facts: FactsDto | undefined): AgentFacts | undefined =>
  facts ? (JSON.parse(JSON.stringify(facts)) as AgentFacts) : undefined;

/**
 * A port (docs/ARCHITECTURE.md, "Ports"), bound by UpgradesModule to the executor: told when an
 * agent whose last upgrade failed reports something new (its version, most likely) or comes back,
 * after that heartbeat's commit, in its own transaction: the agent may have finished after the
 * server gave up on it (docs/version-model.md). Only heartbeats written at once get here, never
 * the "still here" ones of the hot path.
 */
export abstract class FailedAgentReconciler {
  abstract reconcile(agentId: string): Promise<void>;
}

/** Pairing and heartbeats: what agents call. */
@Injectable()
export class AgentProtocolService implements OnModuleInit {
  private readonly logger = new Logger(AgentProtocolService.name);
  private reconciler: FailedAgentReconciler;

  constructor(
    private readonly db: Database,
    private readonly agents: AgentRepository,
    private readonly agentsService: AgentsService,
    private readonly updater: AgentUpdater,
    private readonly commands: AgentCommandsService,
    private readonly liveness: AgentLiveness,
    private readonly auth: AuthService,
    private readonly clock: Clock,
    @InjectAppConfig() private readonly config: AppConfig,
    private readonly moduleRef: ModuleRef,
    private readonly signingKeys: SigningKeysService,
    private readonly audit: AuditTrail,
  ) {}

  /** Resolved once every provider exists, not injected: the executor that binds it depends on this module. */
  onModuleInit(): void {
    this.reconciler = resolvePort(this.moduleRef, FailedAgentReconciler, 'UpgradesModule');
  }

  /** Trades a one-time pairing key for the agent's token. Two agents racing with one key: one wins. */
  async pair(dto: PairDto, requestId: string | null = null): Promise<PairAnswerDto> {
    const now = this.clock.now();
    const { agent, token } = await this.db.transaction(async (tx) => {
      const found = await this.agents.findByPairingKeyHash(tx, hashSecret(dto.pairingKey));
      if (!found) {
        throw new UnauthenticatedError(
          'This pairing key is not known; check it, or ask an operator for a new one (POST /api/v1/agents/{id}/pairing-key).',
          'PAIRING_KEY_UNKNOWN',
        );
      }
      if (found.pairingKeyUsedAt) {
        throw new UnauthenticatedError(
          `This pairing key was already used at ${found.pairingKeyUsedAt.toISOString()}; a key pairs once. Ask an operator for a new one.`,
          'PAIRING_KEY_USED',
        );
      }
      if (!found.pairingKeyExpiresAt || found.pairingKeyExpiresAt <= now) {
        throw new UnauthenticatedError(
          `This pairing key expired at ${found.pairingKeyExpiresAt?.toISOString()}; ask an operator for a new one.`,
          'PAIRING_KEY_EXPIRED',
        );
      }
      await this.auth.revokeAgentTokens(tx, found.id);
      const secret = await this.auth.issueAgentToken(tx, found.id, found.name);
      const paired = await this.updater.apply(tx, found, {
        pairingKeyUsedAt: now,
        pairedAt: now,
        online: true,
        lastSeenAt: now,
        version: dto.version ?? found.version,
        webappsVersion: dto.webappsVersion ?? found.webappsVersion,
        facts: plainFacts(dto.facts) ?? found.facts,
        remoteUpgrade: dto.capabilities?.remoteUpgrade ?? found.remoteUpgrade,
      });
      await this.audit.record(
        tx,
        { actor: { kind: 'agent', agentId: found.id }, requestId },
        {
          action: 'agent.pair',
          target: 'agent',
          targetId: found.id,
          clusterId: found.clusterId,
          summary: `agent "${found.name}" paired with its pairing key${dto.version ? `, reporting version ${dto.version}` : ''}`,
        },
      );
      return { agent: paired, token: secret };
    });
    this.liveness.forget(agent.id);
    this.logger.log(`agent ${agent.id} (${agent.name}) paired`);
    return {
      agentId: agent.id,
      clusterId: agent.clusterId,
      token,
      pollAfterMs: pollAfterMs(this.config, false),
      signing: await this.signingKeys.policyOf(agent.clusterId),
    };
  }

  private served = 0;

  /** Heartbeats this process has answered since it started (the metrics module reads it). */
  get heartbeatsServed(): number {
    return this.served;
  }

  /**
   * Records a heartbeat and answers with the agent's pending commands, whether to hold its own work,
   * and when to call again. Only a change of state or version is written at once; "still here" and
   * fresh facts go through the liveness buffer (see AgentLiveness).
   */
  async heartbeat(agentId: string, dto: HeartbeatDto): Promise<HeartbeatAnswerDto> {
    this.served++;
    const now = this.clock.now();
    const agent = await this.agents.findHeartbeatView(agentId);
    if (!agent) return this.removedAnswer();
    const facts = plainFacts(dto.facts);
    const changes: Partial<Agent> = {
      version: dto.version,
      webappsVersion: dto.webappsVersion === undefined ? agent.webappsVersion : dto.webappsVersion,
      busy: dto.busy,
      remoteUpgrade: dto.capabilities?.remoteUpgrade ?? agent.remoteUpgrade,
    };
    const stateChanges = Object.entries(changes).some(([k, v]) => agent[k as keyof HeartbeatView] !== v);
    const terminatingDone = agent.removalRequestedAt !== null && !dto.busy;

    let hold = agent.hold;
    let mayHaveCommands = agent.hasPendingCommands;
    if (stateChanges || !agent.online || terminatingDone) {
      mayHaveCommands = true; // the change may have queued one (a failed upgrade reconciled, say)
      const outcome = await this.db.transaction(async (tx) => {
        const current = await this.agents.findForUpdate(tx, agentId);
        if (!current) return null;
        if (current.removalRequestedAt && !dto.busy) {
          await this.agentsService.removeNow(tx, current);
          return null;
        }
        return this.updater.apply(tx, current, {
          ...changes,
          online: true,
          lastSeenAt: now,
          ...(facts && !isDeepStrictEqual(facts, current.facts) ? { facts } : {}),
        });
      });
      this.liveness.forget(agentId);
      if (!outcome) {
        this.logger.log(`agent ${agentId} reported idle while terminating: removed`);
        return this.removedAnswer();
      }
      hold = outcome.hold;
      if (outcome.lastUpgradeFailed) await this.reconcileFailedAgent(agentId);
    } else {
      this.liveness.seen(agentId, now, facts && !isDeepStrictEqual(facts, agent.facts) ? facts : undefined);
    }

    const commands = mayHaveCommands ? await this.commands.pendingFor(agentId) : [];
    return {
      commands,
      hold,
      pollAfterMs: pollAfterMs(this.config, hold || commands.length > 0),
      ...(await this.signingFor(dto, agent)),
    };
  }

  /**
   * The cluster's signing policy, only for an agent that asks for it (signingRevision) and holds
   * another revision than the cluster's, read with the agent's row: rare, so the keys are read only then.
   */
  private async signingFor(dto: HeartbeatDto, agent: HeartbeatView): Promise<Pick<HeartbeatAnswerDto, 'signing'>> {
    const held = dto.signingRevision;
    if (held === undefined || held === null || held === agent.signingRevision) return {};
    return { signing: await this.signingKeys.policyOf(agent.clusterId) };
  }

  /** After the heartbeat's own commit, in its own transaction; a failure is logged, never the agent's problem. */
  private async reconcileFailedAgent(agentId: string): Promise<void> {
    await this.reconciler
      .reconcile(agentId)
      .catch((error: Error) =>
        this.logger.error(`agent ${agentId}: reconciling its failed upgrade failed: ${error.message}`, error.stack),
      );
  }

  private removedAnswer(): HeartbeatAnswerDto {
    return { commands: [], hold: false, pollAfterMs: pollAfterMs(this.config, false), removed: true };
  }
}
