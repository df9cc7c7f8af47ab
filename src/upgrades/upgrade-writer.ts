import { Injectable } from '@nestjs/common';
import { Agent } from '../cluster/agent.entity';
import { AgentsService } from '../cluster/agents.service';
import { Clock } from '../common/clock';
import { Tx } from '../database/database';
import { Metrics } from '../metrics/metrics.service';
import { EventLog, NewEvent } from '../progress/event-log.service';
import { percentFromSummary, upgradePercent } from './step-rules';
import type { PairSwitchoverEventData } from './dto/upgrade-events.dto';
import { Upgrade, UpgradeStatus } from './upgrade.entity';
import { UpgradeRepository } from './upgrade.repository';
import { ENDED_STEP_STATUSES, UpgradeStep } from './upgrade-step.entity';

/** The percent is the current round's: the upgrade's steps, or its latest rollback's once that started. */
function currentRound(upgrade: Upgrade, steps: UpgradeStep[]): UpgradeStep[] {
  if (upgrade.rollbackRound === 0) return steps;
  const round = steps.filter((s) => s.round === upgrade.rollbackRound);
  return round.length ? round : steps.filter((s) => s.round === upgrade.rollbackRound - 1);
}

/** What an agent's flags must be, given the steps of the upgrade that holds it. */
function flagsFor(agentId: string, steps: UpgradeStep[], upgrade: Upgrade) {
  const mine = steps.filter((s) => s.agentId === agentId);
  const live = upgrade.finishedAt === null && mine.some((s) => !ENDED_STEP_STATUSES.includes(s.status));
  return {
    // Held while a step of it is about to run or running: it starts no work of its own. Not while it
    // waits for steps before it, nor for a maintenance window (which may be days away).
    hold: mine.some(
      (s) =>
        s.status === 'running' ||
        (s.status === 'waiting' && s.waitingFor !== 'dependencies' && s.waitingFor !== 'window'),
    ),
    upgrading: mine.some((s) => (s.kind === 'upgrade' || s.kind === 'rollback') && s.status === 'running'),
    // An agent belongs to the upgrade while any of its steps may still run.
    upgradeId: live ? upgrade.id : null,
  };
}

/**
 * The writes every change of an upgrade goes through, so each lands with its event and with the
 * flags of the agents it touches in the same transaction: the upgrade row (`upgrade.status`), a step
 * (`task.progress`), and the agents' hold, upgrading and membership.
 */
@Injectable()
export class UpgradeWriter {
  constructor(
    private readonly upgrades: UpgradeRepository,
    private readonly agents: AgentsService,
    private readonly events: EventLog,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
  ) {}

  /** Moves the upgrade to `status` (or just saves it) and publishes upgrade.status. */
  async saveUpgrade(
    tx: Tx,
    upgrade: Upgrade,
    steps: UpgradeStep[],
    status?: UpgradeStatus,
    reason?: string | null,
  ): Promise<void> {
    const now = this.clock.now();
    if (status) upgrade.status = status;
    if (reason !== undefined) upgrade.reason = reason;
    upgrade.percent = upgradePercent(currentRound(upgrade, steps));
    upgrade.updatedAt = now;
    await this.upgrades.save(tx.em, upgrade);
    await this.events.append(tx, [this.upgradeEvent(upgrade)]);
  }

  /**
   * Saves changed steps and publishes task.progress for each; keeps the upgrade's percent, from
   * `steps` when they are all of the upgrade's, else from the database ('partial'), unless the
   * change cannot move it ('same-percent': a step that starts running at 0%).
   */
  async saveSteps(
    tx: Tx,
    upgrade: Upgrade,
    steps: UpgradeStep[] | 'partial' | 'same-percent',
    changed: UpgradeStep[],
  ): Promise<void> {
    if (changed.length === 0) return;
    const now = this.clock.now();
    for (const step of changed) step.updatedAt = now;
    await this.upgrades.saveSteps(tx.em, changed);
    const percent =
      steps === 'same-percent'
        ? upgrade.percent
        : steps === 'partial'
          ? percentFromSummary(await this.roundSummary(tx, upgrade))
          : upgradePercent(currentRound(upgrade, steps));
    if (percent !== upgrade.percent) {
      upgrade.percent = percent;
      upgrade.updatedAt = now;
      await this.upgrades.savePercent(tx.em, upgrade);
    }
    await this.events.append(
      tx,
      changed.map((step) => this.stepEvent(upgrade, step)),
    );
    // Durations are observed once the end is committed: a transaction run again counts once.
    const ended = changed.filter((step) => ENDED_STEP_STATUSES.includes(step.status));
    if (ended.length) tx.afterCommit(() => this.metrics.stepsEnded(ended));
  }

  /** The current round's steps by status (see currentRound): one GROUP BY, asked on every report. */
  private async roundSummary(tx: Tx, upgrade: Upgrade) {
    const summary = await this.upgrades.statusSummary(tx.em, upgrade.id, upgrade.rollbackRound);
    if (summary.length || upgrade.rollbackRound === 0) return summary;
    return this.upgrades.statusSummary(tx.em, upgrade.id, upgrade.rollbackRound - 1);
  }

  /** Brings the flags of these agents (all of the upgrade's when omitted) in line with the steps. */
  async syncAgents(
    tx: Tx,
    upgrade: Upgrade,
    steps: UpgradeStep[],
    agentIds?: Iterable<string>,
    extra: Map<string, Partial<Agent>> = new Map(),
  ): Promise<void> {
    const ids = [...new Set(agentIds ?? steps.map((s) => s.agentId)), ...extra.keys()];
    const agents = await this.agents.lockMany(tx, [...new Set(ids)]);
    for (const agent of agents) {
      // Another upgrade's agent keeps its membership flags (a retry waits for it; see
      // UpgradesService); what a step of ours observed (version, outcome, active) is still recorded.
      const ours = !agent.upgradeId || agent.upgradeId === upgrade.id;
      const wanted = { ...(ours ? flagsFor(agent.id, steps, upgrade) : {}), ...extra.get(agent.id) };
      const changes = Object.fromEntries(Object.entries(wanted).filter(([k, v]) => agent[k as keyof Agent] !== v));
      if (Object.keys(changes).length) await this.agents.applyUpgradeState(tx, agent, changes);
    }
  }

  publishSwitchover(tx: Tx, upgrade: Upgrade, step: UpgradeStep): Promise<void> {
    const data: PairSwitchoverEventData = {
      upgradeId: upgrade.id,
      stepId: step.id,
      kind: step.kind,
      failoverGroup: step.failoverGroup,
      activeAgentId: step.agentId,
      standbyAgentId: step.fromAgentId,
    };
    return this.events.append(tx, [
      { type: 'pair.switchover', clusterId: upgrade.clusterId, upgradeId: upgrade.id, agentId: step.agentId, data },
    ]);
  }

  private upgradeEvent(upgrade: Upgrade): NewEvent<'upgrade.status'> {
    return {
      type: 'upgrade.status',
      clusterId: upgrade.clusterId,
      upgradeId: upgrade.id,
      data: {
        upgradeId: upgrade.id,
        status: upgrade.status,
        percent: upgrade.percent,
        reason: upgrade.reason,
        packageVersion: upgrade.packageVersion,
        scheduledAt: upgrade.scheduledAt?.toISOString() ?? null,
        startedAt: upgrade.startedAt?.toISOString() ?? null,
        finishedAt: upgrade.finishedAt?.toISOString() ?? null,
      },
    };
  }

  private stepEvent(upgrade: Upgrade, step: UpgradeStep): NewEvent<'task.progress'> {
    return {
      type: 'task.progress',
      clusterId: upgrade.clusterId,
      upgradeId: upgrade.id,
      agentId: step.agentId,
      data: {
        upgradeId: upgrade.id,
        stepId: step.id,
        kind: step.kind,
        agentId: step.agentId,
        failoverGroup: step.failoverGroup,
        status: step.status,
        waitingFor: step.waitingFor,
        windowOpensAt: step.waitingFor === 'window' ? (step.windowOpensAt?.toISOString() ?? null) : null,
        phase: step.phase,
        percent: step.percent,
        attempts: step.attempts,
        error: step.error,
        message: step.message,
        agentNotes: step.agentNotes ?? [],
        upgradePercent: upgrade.percent,
      },
    };
  }
}
