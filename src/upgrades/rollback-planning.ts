import { AuditTrail } from '../audit/audit-trail.service';
import type { Origin } from '../audit/origin';
import { Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Agent } from '../cluster/agent.entity';
import { AgentCommandsService } from '../cluster/agent-commands.service';
import { AgentsService } from '../cluster/agents.service';
import { ClustersService } from '../cluster/clusters.service';
import { Clock } from '../common/clock';
import { Tx } from '../database/database';
import type { PlanNotice } from '../policies/planner';
import { planRollback, type RollbackPlan, type RollbackStep } from '../policies/rollback-planner';
import { commandOut } from './step-rules';
import { Upgrade, type UpgradePriorState } from './upgrade.entity';
import { UpgradeRepository } from './upgrade.repository';
import { stopUnstarted } from './stop-unstarted';
import { plannedStep, UpgradeStep } from './upgrade-step.entity';
import { UpgradeWriter } from './upgrade-writer';

/**
 * A rollback's bookkeeping (docs/rollback.md): what an upgrade records before it changes anything,
 * the plan that brings its agents back (planRollback, pure), and a round's start: its steps saved
 * beside the upgrade's, under the upgrade's lock, in the caller's transaction. The executor drives
 * the round's steps as it drives an upgrade's.
 */
@Injectable()
export class RollbackPlanning {
  private readonly logger = new Logger(RollbackPlanning.name);

  constructor(
    private readonly upgrades: UpgradeRepository,
    private readonly writer: UpgradeWriter,
    private readonly agents: AgentsService,
    private readonly clusters: ClustersService,
    private readonly commands: AgentCommandsService,
    private readonly clock: Clock,
    private readonly audit: AuditTrail,
  ) {}

  /**
   * Records, on the upgrade (saved by the caller), its agents and their pair peers and the
   * cluster's targets as they are now, before it starts: what a rollback brings back.
   */
  async recordPriorState(tx: Tx, upgrade: Upgrade, steps: UpgradeStep[]): Promise<void> {
    const ids = [...new Set(steps.flatMap((s) => [s.agentId, ...(s.fromAgentId ? [s.fromAgentId] : [])]))];
    const agents = await this.agents.lockWithPeers(tx, ids);
    const cluster = await this.clusters.require(upgrade.clusterId, tx);
    upgrade.priorState = {
      agents: Object.fromEntries(
        agents.map((a) => [
          a.id,
          { version: a.version, webappsVersion: a.webappsVersion, active: a.active, failoverGroup: a.failoverGroup },
        ]),
      ),
      targets: {
        targetVersion: cluster.targetVersion,
        targetPackageId: cluster.targetPackageId,
        webappsTargetVersion: cluster.webappsTargetVersion,
        webappsTargetPackageId: cluster.webappsTargetPackageId,
      },
    };
  }

  /** The rollback of an upgrade as things are now (its agents locked), refusals included. */
  async plan(tx: Tx, upgrade: Upgrade, prior: UpgradePriorState, steps: UpgradeStep[]): Promise<RollbackPlan> {
    const ids = Object.keys(prior.agents);
    const agents = await this.agents.lockMany(tx, ids);
    const own = steps.filter((s) => s.round === 0 && s.kind === 'upgrade');
    const later = await this.upgrades.changedSince(tx.em, upgrade.clusterId, upgrade.createdAt, ids);
    const plan = planRollback({
      pkg: { version: upgrade.packageVersion, kind: upgrade.packageKind },
      prior: prior.agents,
      agents,
      backups: Object.fromEntries(own.filter((s) => s.backup).map((s) => [s.agentId, s.backup])),
      batchOf: Object.fromEntries(own.map((s) => [s.agentId, s.batch])),
      changedLater: Object.fromEntries(later),
      outcomeUnknown: await this.outcomeUnknown(tx, own),
    });
    plan.refusals.push(...heldElsewhere(upgrade, plan, agents));
    return plan;
  }

  /**
   * Agents whose upgrade step the server failed while they were at it (a phase past
   * phaseTimeoutS: the command was withdrawn after they fetched it): what they run is unknown until
   * they report, so they can neither be rolled back nor take over (docs/rollback.md).
   */
  private async outcomeUnknown(tx: Tx, own: UpgradeStep[]): Promise<string[]> {
    const unknown: string[] = [];
    for (const step of own.filter((s) => s.status === 'failed' && s.commandId)) {
      const command = await this.commands.findById(step.commandId!, tx);
      if (command?.status === 'cancelled' && command.fetchedAt !== null) unknown.push(step.agentId);
    }
    return unknown;
  }

  /**
   * The upgrade rolls back: what has not started is cancelled (a command not fetched yet is
   * withdrawn), then a new round, and its steps at once unless commands of the upgrade are still out
   * (the executor starts the round once they ended: an agent is never interrupted).
   */
  async begin(tx: Tx, upgrade: Upgrade, steps: UpgradeStep[], reason: string, by: Origin): Promise<void> {
    const now = this.clock.now();
    await this.audit.record(tx, by, {
      action: 'upgrade.rollback',
      target: 'upgrade',
      targetId: upgrade.id,
      clusterId: upgrade.clusterId,
      summary: `rollback of the upgrade to ${upgrade.packageVersion} begins (it was ${upgrade.status}): ${reason}`,
    });
    const why = 'the upgrade is rolled back';
    const stopped = await stopUnstarted(tx, this.commands, steps, now, { command: why, step: why });
    await this.writer.saveSteps(tx, upgrade, steps, stopped);
    await this.writer.syncAgents(
      tx,
      upgrade,
      steps,
      stopped.map((s) => s.agentId),
    );
    upgrade.rollbackRound += 1;
    upgrade.finishedAt = null;
    await this.writer.saveUpgrade(tx, upgrade, steps, 'rolling-back', reason.slice(0, 500));
    this.logger.log(`upgrade ${upgrade.id} rolls back (round ${upgrade.rollbackRound}): ${reason}`);
    if (!steps.some((s) => commandOut(s.status, s.waitingFor))) await this.startRound(tx, upgrade, steps);
  }

  /**
   * Plans the current round and saves its steps (`steps` gets them too), holds their agents and
   * sets the cluster's targets back; a plan that cannot be carried out now ends the rollback
   * `rollback-failed`, saying why.
   */
  async startRound(tx: Tx, upgrade: Upgrade, steps: UpgradeStep[]): Promise<void> {
    const now = this.clock.now();
    if (!upgrade.priorState) return this.end(tx, upgrade, steps, 'rollback-failed', NO_RECORD);
    const plan = await this.plan(tx, upgrade, upgrade.priorState, steps);
    if (plan.refusals.length)
      return this.end(tx, upgrade, steps, 'rollback-failed', plan.refusals.map((r) => r.message).join('; '));
    const firstOrdinal = steps.reduce((max, s) => Math.max(max, s.ordinal), -1) + 1;
    const fresh = rollbackRows(plan.steps, upgrade, firstOrdinal, now);
    await this.upgrades.replaceSteps(tx.em, [], fresh);
    steps.push(...fresh);
    await this.writer.saveSteps(tx, upgrade, steps, fresh);
    const prior = upgrade.priorState;
    await this.clusters.restoreTargets(tx, upgrade.clusterId, upgrade.packageId, prior.targets);
    if (fresh.length === 0)
      return this.end(tx, upgrade, steps, 'rolled-back', 'every agent ran what it ran before the upgrade already');
    await this.writer.syncAgents(tx, upgrade, steps, new Set(fresh.map((s) => s.agentId)));
  }

  private async end(
    tx: Tx,
    upgrade: Upgrade,
    steps: UpgradeStep[],
    status: 'rolled-back' | 'rollback-failed',
    reason: string,
  ): Promise<void> {
    upgrade.finishedAt = this.clock.now();
    await this.writer.saveUpgrade(tx, upgrade, steps, status, reason.slice(0, 500));
    await this.writer.syncAgents(tx, upgrade, steps);
    this.logger.warn(`upgrade ${upgrade.id} ${status}: ${reason}`);
  }
}

const NO_RECORD =
  'this upgrade was created before Lockstep recorded what upgrades change (docs/rollback.md): it cannot be rolled back';

/** Rollback steps whose agents another live upgrade holds: refused, as a new upgrade of them would be. */
function heldElsewhere(upgrade: Upgrade, plan: RollbackPlan, agents: Agent[]): PlanNotice[] {
  const working = new Set(plan.steps.map((s) => s.agentId));
  return agents
    .filter((a) => working.has(a.id) && a.upgradeId && a.upgradeId !== upgrade.id)
    .map((a) => ({
      code: 'AGENT_IN_UPGRADE',
      message: `${a.name} is in upgrade ${a.upgradeId}: wait for it to end or cancel it`,
      agentIds: [a.id],
    }));
}

/** The round's steps as rows, after the upgrade's others (a preview names them by their keys). */
export function rollbackRows(
  planned: RollbackStep[],
  upgrade: Upgrade,
  firstOrdinal: number,
  now: Date,
  idOf: (key: string) => string = () => randomUUID(),
): UpgradeStep[] {
  const ids = new Map(planned.map((s) => [s.key, idOf(s.key)]));
  return planned.map((s, i) =>
    plannedStep({
      id: ids.get(s.key)!,
      upgradeId: upgrade.id,
      ordinal: firstOrdinal + i,
      kind: s.kind,
      agentId: s.agentId,
      fromAgentId: s.fromAgentId,
      failoverGroup: s.failoverGroup,
      unit: s.unit,
      round: upgrade.rollbackRound,
      batch: s.batch,
      dependsOn: s.dependsOn.map((key) => ids.get(key)!),
      runWhen: s.runWhen,
      status: s.status,
      note: s.note,
      backup: s.backup,
      toVersion: s.toVersion,
      endedAt: null,
      updatedAt: now,
    }),
  );
}
