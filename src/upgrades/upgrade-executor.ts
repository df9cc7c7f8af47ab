import { AuditTrail } from '../audit/audit-trail.service';
import { systemOrigin } from '../audit/origin';
import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import * as semver from 'semver';
import { AgentCommand } from '../cluster/agent-command.entity';
import { Agent } from '../cluster/agent.entity';
import {
  AgentCommandsService,
  CommandIssuer,
  CommandReport,
  type NewCommand,
  ReportOutcome,
} from '../cluster/agent-commands.service';
import { FailedAgentReconciler } from '../cluster/agent-protocol.service';
import { AgentsService } from '../cluster/agents.service';
import { ClustersService } from '../cluster/clusters.service';
import type { CompleteReportDto, ProgressReportDto } from '../cluster/dto/agent-protocol.dto';
import { Clock } from '../common/clock';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { Database, Tx } from '../database/database';
import { Leadership } from '../database/leadership';
import { Package } from '../packages/package.entity';
import { PackagesService } from '../packages/packages.service';
import { AUTO_UPGRADE_FREE, leftBehind, setBack } from './auto-upgrade-rules';
import {
  commandOut,
  decide,
  finishedLate,
  judgeEnd,
  pairGate,
  RuleAgent,
  RuleUpgrade,
  StepAction,
  stopsWithIt,
  UpgradeAction,
} from './step-rules';
import { Upgrade } from './upgrade.entity';
import { UpgradeRepository } from './upgrade.repository';
import { UpgradeStep } from './upgrade-step.entity';
import { UpgradeWriter } from './upgrade-writer';
import { windowsForPass } from './upgrade-windows';
import {
  ROLLBACK_PHASES,
  type RollbackCommandPayload,
  type SwitchoverCommandPayload,
  type UpgradeCommandPayload,
  upgradePhases,
} from '../protocol/agent-protocol';
import { RollbackPlanning } from './rollback-planning';

const TICK_MS = 1000;
const REPORT_COALESCE_MS = 50;
const STEP_REFERENCE = 'step:';

const isOut = (step: UpgradeStep) => commandOut(step.status, step.waitingFor);
/** An upgrade step that ended without bringing its agent to the package's version: what the mixed-version budget counts. */
const LEFT_BEHIND: readonly UpgradeStep['status'][] = ['failed', 'rolled-back', 'missed', 'cancelled'];

/** The upgrade and step a command was queued for (`step:<upgradeId>/<stepId>`), or null for another issuer's. */
function stepOrigin(command: AgentCommand): { upgradeId: string; stepId: string } | null {
  if (!command.reference?.startsWith(STEP_REFERENCE)) return null;
  const [upgradeId, stepId] = command.reference.slice(STEP_REFERENCE.length).split('/');
  return { upgradeId, stepId };
}

/** A progress report: phase, percent and message; a new phase restarts the phase's clock (phaseTimeoutS). */
function recordProgress(step: UpgradeStep, report: ProgressReportDto, now: Date): void {
  if (report.phase !== step.phase) step.phaseStartedAt = now;
  Object.assign(step, { phase: report.phase, percent: report.percent, message: report.message ?? step.message });
}

export const toRuleAgent = (a: Agent, peerId: string | null = null): RuleAgent => ({
  id: a.id,
  name: a.name,
  paired: a.pairedAt !== null,
  online: a.online,
  busy: a.busy,
  version: a.version,
  webappsVersion: a.webappsVersion,
  lastUpgradeFailed: a.lastUpgradeFailed,
  facts: a.facts,
  active: a.active,
  peerId,
});

/** What a rollback step that succeeded records on its agent: the versions it had before the upgrade. */
function rolledBackVersions(upgrade: Upgrade, step: UpgradeStep): Partial<Agent> {
  if (step.status !== 'succeeded') return {};
  if (upgrade.packageKind === 'webapps') return { webappsVersion: step.toVersion };
  const before = upgrade.priorState?.agents[step.agentId];
  return { version: step.toVersion, webappsVersion: before?.webappsVersion ?? null };
}

/** The agents of the steps and the other members of their pairs, each with its peer's id. */
function ruleAgents(agents: Agent[]): Map<string, RuleAgent> {
  const members = new Map<string, Agent[]>();
  for (const a of agents)
    if (a.failoverGroup) members.set(a.failoverGroup, [...(members.get(a.failoverGroup) ?? []), a]);
  const peerOf = (a: Agent) =>
    a.failoverGroup ? (members.get(a.failoverGroup)?.find((m) => m.id !== a.id)?.id ?? null) : null;
  return new Map(agents.map((a) => [a.id, toRuleAgent(a, peerOf(a))]));
}

/** The phases an agent runs for an upgrade, as the options ask (the agent may run them in its own order, e.g. install beside the old version before stop). */

/**
 * Drives upgrades. Every pass over an upgrade runs in one transaction under the upgrade's lock:
 * read steps and agents, decide (step-rules.ts), write every transition and queue the commands it
 * starts. Agents only see a command after that commit, so a process killed at any moment leaves
 * either the old state (decided again on the next pass) or the new one with its commands queued;
 * a running step keeps its one command, and is never started twice.
 *
 * Passes run every second and right after anything that may move an upgrade (a report, a
 * resume...); all state is in the database, so a restarted process simply carries on.
 */
@Injectable()
export class UpgradeExecutor
  implements CommandIssuer, FailedAgentReconciler, OnApplicationBootstrap, BeforeApplicationShutdown
{
  private readonly logger = new Logger(UpgradeExecutor.name);
  private driving: Promise<void> = Promise.resolve();
  private queued = false;
  private stopped = false;
  private soon: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Database,
    private readonly upgrades: UpgradeRepository,
    private readonly writer: UpgradeWriter,
    private readonly commands: AgentCommandsService,
    private readonly agents: AgentsService,
    private readonly packages: PackagesService,
    private readonly clusters: ClustersService,
    private readonly rollbacks: RollbackPlanning,
    private readonly clock: Clock,
    private readonly leadership: Leadership,
    @InjectAppConfig() private readonly config: AppConfig,
    private readonly audit: AuditTrail,
  ) {}

  /** FailedAgentReconciler: an agent whose upgrade failed reports again (docs/ARCHITECTURE.md, "Ports"). */
  reconcile(agentId: string): Promise<void> {
    return this.reconcileLateFinish(agentId);
  }

  /** CommandIssuer: a report on a step's command takes the upgrade's lock before the command row, as a pass does. */
  async lockForReport(tx: Tx, command: AgentCommand): Promise<void> {
    const origin = stepOrigin(command);
    if (origin) await tx.advisoryLock(`upgrade:${origin.upgradeId}`);
  }

  /**
   * A process that starts (again, after a crash or a kill) drives the live upgrades at once instead
   * of at its first timer: what was due when it stopped does not wait for the tick.
   */
  onApplicationBootstrap(): void {
    if (this.leadership.isLeader) this.poke();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.soon) clearTimeout(this.soon);
    await this.driving;
  }

  /** Asks for a pass soon; passes asked for while one runs become one more pass. */
  poke(): void {
    if (this.queued || this.stopped) return;
    this.queued = true;
    this.driving = this.driving.then(async () => {
      this.queued = false;
      await this.driveAll();
    });
  }

  /** A pass within REPORT_COALESCE_MS: reports arriving meanwhile share it. */
  pokeSoon(): void {
    if (this.soon || this.stopped) return;
    this.soon = setTimeout(() => {
      this.soon = null;
      this.poke();
    }, REPORT_COALESCE_MS);
  }

  /** Every TICK_MS on the leading replica: scheduled starts and timeouts do not wait for a request. */
  @Interval(TICK_MS)
  async periodic(): Promise<void> {
    if (this.leadership.isLeader) await this.tick();
  }

  /** One pass over every live upgrade, now. */
  async tick(): Promise<void> {
    this.poke();
    await this.driving;
  }

  private async driveAll(): Promise<void> {
    if (this.stopped) return;
    try {
      for (const id of await this.upgrades.idsToDrive(this.clock.now())) {
        if (this.stopped) return;
        await this.advance(id).catch((error: Error) =>
          this.logger.error(`upgrade ${id}: pass failed: ${error.message}`, error.stack),
        );
      }
    } catch (error) {
      this.logger.error(`executor pass failed: ${(error as Error).message}`, (error as Error).stack);
    }
  }

  /** One pass over one upgrade. */
  async advance(upgradeId: string): Promise<void> {
    await this.db.transaction((tx) => this.advanceInTx(tx, upgradeId));
  }

  private async advanceInTx(tx: Tx, upgradeId: string): Promise<void> {
    await tx.advisoryLock(`upgrade:${upgradeId}`);
    const upgrade = await this.upgrades.findForUpdate(tx, upgradeId);
    if (!upgrade) return;
    const now = this.clock.now();
    const all = await this.upgrades.stepsOf(tx.em, upgradeId);
    if (upgrade.status === 'scheduled') {
      if (!upgrade.scheduledAt || upgrade.scheduledAt > now) return;
      await this.start(tx, upgrade, all);
    }
    // The current round's steps: the upgrade's own, or its latest rollback's (docs/rollback.md).
    const round = all.filter((s) => s.round === upgrade.rollbackRound);
    if (upgrade.status === 'rolling-back' && round.length === 0) return this.prepareRollback(tx, upgrade, all, now);
    // A rollback cancelled before its round started still waits for the commands out before it.
    const steps = round.length === 0 && upgrade.rollbackRound > 0 ? all.filter(isOut) : round;
    const agents = await this.agents.lockWithPeers(tx, [...new Set(steps.map((s) => s.agentId))]);
    const pkg = await this.packages.require(upgrade.packageId, tx);
    const windows = await windowsForPass(tx, this.upgrades, this.clusters, upgrade, steps, agents);
    const budget = await this.budgetMeasures(tx, upgrade, steps, now);
    const decision = decide({ ...this.ruleUpgrade(upgrade, pkg), windows, budget }, steps, ruleAgents(agents), now);
    if (decision.steps.length === 0 && !decision.upgrade) return;

    const byId = new Map(steps.map((s) => [s.id, s]));
    const agentsById = new Map(agents.map((a) => [a.id, a]));
    const changed = new Set<UpgradeStep>();
    const agentChanges = new Map<string, Partial<Agent>>();
    for (const action of decision.steps) {
      const step = byId.get(action.stepId)!;
      await this.apply(tx, upgrade, pkg, step, action, agentChanges, agentsById.get(step.agentId) ?? null);
      changed.add(step);
    }
    await this.writer.saveSteps(tx, upgrade, all, [...changed]);
    await this.applyToUpgrade(tx, upgrade, all, decision.upgrade, agentsById, agentChanges);
    await this.writer.syncAgents(
      tx,
      upgrade,
      all,
      [...changed].map((s) => s.agentId),
      agentChanges,
    );
    if (decision.upgrade?.type === 'finish') await this.writer.syncAgents(tx, upgrade, all);
  }

  /**
   * A rollback asked for while commands of the upgrade were still out: they finish first (an agent
   * is never interrupted; a silent one times out as in a cancel), then the round starts.
   */
  private async prepareRollback(tx: Tx, upgrade: Upgrade, all: UpgradeStep[], now: Date): Promise<void> {
    const out = all.filter(isOut);
    if (out.length) {
      const agents = await this.agents.lockWithPeers(tx, [...new Set(out.map((s) => s.agentId))]);
      const pkg = await this.packages.require(upgrade.packageId, tx);
      const rule = { ...this.ruleUpgrade(upgrade, pkg), status: 'cancelled' as const, stage: 'upgrade' as const };
      const decision = decide(rule, out, ruleAgents(agents), now);
      const agentsById = new Map(agents.map((a) => [a.id, a]));
      const agentChanges = new Map<string, Partial<Agent>>();
      for (const action of decision.steps) {
        const step = all.find((s) => s.id === action.stepId)!;
        await this.apply(tx, upgrade, pkg, step, action, agentChanges, agentsById.get(step.agentId) ?? null);
      }
      const changed = all.filter((s) => decision.steps.some((a) => a.stepId === s.id));
      await this.writer.saveSteps(tx, upgrade, all, changed);
      await this.writer.syncAgents(
        tx,
        upgrade,
        all,
        changed.map((s) => s.agentId),
        agentChanges,
      );
      if (all.some(isOut)) return;
    }
    await this.rollbacks.startRound(tx, upgrade, all);
  }

  /**
   * The mixed-version budget's measures for decide (budgetSpent), when the running upgrade has a
   * budget. Records on the upgrade when the cluster became mixed (saved at once: the clock must
   * survive a restart) and forgets it once the cluster runs one version again.
   */
  private async budgetMeasures(
    tx: Tx,
    upgrade: Upgrade,
    steps: UpgradeStep[],
    now: Date,
  ): Promise<RuleUpgrade['budget']> {
    const { maxMixedMinutes, maxMixedAgents } = upgrade.options;
    const budgeted = maxMixedMinutes !== undefined || maxMixedAgents !== undefined;
    if (!budgeted || upgrade.status !== 'running' || upgrade.rollbackRound > 0) return undefined;
    const mixed = await this.agents.isMixed(tx, upgrade.clusterId, upgrade.packageKind);
    if (mixed !== (upgrade.mixedSince !== null)) {
      upgrade.mixedSince = mixed ? now : null;
      await this.upgrades.save(tx.em, upgrade);
    }
    const from = Math.max(upgrade.mixedSince?.getTime() ?? 0, upgrade.budgetFrom?.getTime() ?? 0);
    // Left behind since the last resume or retry (before one: since the start).
    const since = upgrade.budgetFrom;
    const behind = steps.filter(
      (s) =>
        s.kind === 'upgrade' && LEFT_BEHIND.includes(s.status) && s.endedAt !== null && (!since || s.endedAt > since),
    );
    return {
      mixedForS: mixed ? (now.getTime() - from) / 1000 : null,
      leftBehind: mixed ? new Set(behind.map((s) => s.agentId)).size : 0,
    };
  }

  /** What `decide` needs to know of the upgrade and its package. */
  private ruleUpgrade(upgrade: Upgrade, pkg: Package): RuleUpgrade {
    return {
      status: upgrade.status,
      options: upgrade.options,
      canaryPending: upgrade.canaryPending,
      failureLimit: upgrade.failureLimit,
      pkg: { version: pkg.version, kind: pkg.kind, prerequisites: pkg.prerequisites },
      ignoreVersionCheck: upgrade.options.ignoreVersionCheck === true,
      pickupTimeoutS: this.config.heartbeatTimeoutS,
      stage: upgrade.rollbackRound > 0 ? 'rollback' : 'upgrade',
      onFailure: upgrade.options.onFailure ?? 'stop',
    };
  }

  /** The pass's decision for the upgrade itself: pause after the canary units, or finish. */
  private async applyToUpgrade(
    tx: Tx,
    upgrade: Upgrade,
    steps: UpgradeStep[],
    action: UpgradeAction | null,
    agentsById: Map<string, Agent>,
    agentChanges: Map<string, Partial<Agent>>,
  ): Promise<void> {
    if (action?.type === 'pause') {
      upgrade.canaryPending = false;
      await this.audit.record(tx, systemOrigin(action.by), {
        action: 'upgrade.pause',
        target: 'upgrade',
        targetId: upgrade.id,
        clusterId: upgrade.clusterId,
        summary: `paused the upgrade to ${upgrade.packageVersion}: ${action.reason}`,
      });
      await this.writer.saveUpgrade(tx, upgrade, steps, 'paused', action.reason);
      this.logger.log(`upgrade ${upgrade.id} paused: ${action.reason}`);
    } else if (action?.type === 'rollback') {
      await this.rollbacks.begin(tx, upgrade, steps, action.reason, systemOrigin(action.by));
    } else if (action?.type === 'finish') {
      await this.finish(tx, upgrade, steps, action.status, action.reason);
      // (An operator's cancel left its agents behind on purpose already.)
      if (upgrade.origin === 'auto-upgrade' && upgrade.status !== 'cancelled')
        this.setBackUnfinished(upgrade, steps, agentsById, agentChanges);
    }
  }

  /**
   * Auto-upgrade's own attempt ended without bringing an agent up (it missed its turn, failed, or a
   * switchover it needed did not happen): that agent waits a back-off before the next attempt, so
   * an agent that keeps flapping, or a pair that cannot hand over, is not taken over and over.
   */
  private setBackUnfinished(
    upgrade: Upgrade,
    steps: UpgradeStep[],
    agents: Map<string, Agent>,
    agentChanges: Map<string, Partial<Agent>>,
  ): void {
    const now = this.clock.now();
    for (const step of steps) {
      const agent = agents.get(step.agentId);
      if (step.kind !== 'upgrade' || step.status === 'succeeded' || step.status === 'skipped' || !agent) continue;
      const why = `its auto-upgrade (upgrade ${upgrade.id}) ended with its step ${step.status}${step.error ? `: ${step.error}` : ''}`;
      agentChanges.set(agent.id, { ...agentChanges.get(agent.id), ...setBack(agent, now, why.slice(0, 500)) });
    }
  }

  /** A scheduled upgrade whose time came: its package is used from now on. */
  private async start(tx: Tx, upgrade: Upgrade, steps: UpgradeStep[]): Promise<void> {
    if (upgrade.origin === 'request' || upgrade.origin === 'install')
      await this.packages.complete(tx, upgrade.packageId, upgrade.id);
    // What a rollback would bring back is how things are now, not when it was scheduled.
    await this.rollbacks.recordPriorState(tx, upgrade, steps);
    upgrade.startedAt = this.clock.now();
    await this.audit.record(tx, systemOrigin('scheduler'), {
      action: 'upgrade.start',
      target: 'upgrade',
      targetId: upgrade.id,
      clusterId: upgrade.clusterId,
      summary: `started the upgrade to ${upgrade.packageVersion} scheduled for ${upgrade.scheduledAt?.toISOString() ?? 'now'}`,
    });
    await this.writer.saveUpgrade(tx, upgrade, steps, 'running', null);
    this.logger.log(`upgrade ${upgrade.id} started`);
  }

  private async apply(
    tx: Tx,
    upgrade: Upgrade,
    pkg: Package,
    step: UpgradeStep,
    action: StepAction,
    agentChanges: Map<string, Partial<Agent>>,
    agent: Agent | null,
  ): Promise<void> {
    const now = this.clock.now();
    const noteOnAgent = (changes: Partial<Agent>) =>
      agentChanges.set(step.agentId, { ...agentChanges.get(step.agentId), ...changes });
    switch (action.type) {
      case 'wait':
        // windowOpensAt: set by a window wait, left as it was (and not shown) by any other.
        Object.assign(step, {
          status: 'waiting',
          waitingFor: action.for,
          waitingSince: now,
          windowOpensAt: action.until,
        });
        return;
      case 'start': {
        const command = await this.commands.enqueue(tx, this.commandFor(upgrade, pkg, step, agent));
        // Running only once the agent fetched the command (see onReport): until then it waits for
        // the agent, and an agent that went silent meanwhile misses its turn instead of hanging.
        Object.assign(step, {
          status: 'waiting',
          waitingFor: 'pickup',
          waitingSince: now,
          commandId: command.id,
          attempts: step.attempts + 1,
          phase: null,
          percent: 0,
          error: null,
          message: null,
          agentNotes: null,
          startedAt: now,
          phaseStartedAt: null,
          endedAt: null,
        });
        return;
      }
      case 'fail':
        if (step.commandId && isOut(step)) await this.commands.cancel(tx, step.commandId, action.error);
        Object.assign(step, { status: 'failed', error: action.error, waitingFor: null, endedAt: now });
        if (step.kind === 'upgrade' || step.kind === 'rollback') noteOnAgent({ lastUpgradeFailed: true });
        this.logger.warn(`upgrade ${upgrade.id}: step ${step.kind} of agent ${step.agentId} failed: ${action.error}`);
        return;
      case 'miss':
        if (step.commandId && isOut(step)) await this.commands.cancel(tx, step.commandId, action.reason);
        // Not the agent's failure: auto-upgrade brings it up once it is back.
        Object.assign(step, { status: 'missed', error: action.reason, waitingFor: null, endedAt: now });
        this.logger.log(`upgrade ${upgrade.id}: step ${step.kind} of agent ${step.agentId} missed: ${action.reason}`);
        return;
      case 'block':
        Object.assign(step, { status: 'cancelled', error: action.reason, waitingFor: null, endedAt: now });
        // Left behind on purpose: auto-upgrade must not undo the threshold's stop behind the operator's back.
        if (action.cause === 'threshold' && step.kind === 'upgrade')
          noteOnAgent(leftBehind(upgrade, 'the failure threshold was reached'));
        return;
      case 'skip':
        Object.assign(step, { status: 'skipped', note: action.reason, waitingFor: null, endedAt: now });
        return;
    }
  }

  private upgradePayload(
    upgrade: Upgrade,
    pkg: Package,
    step: UpgradeStep,
    agent: Agent | null,
  ): UpgradeCommandPayload {
    const { options } = upgrade;
    return {
      upgradeId: upgrade.id,
      stepId: step.id,
      packageId: pkg.id,
      sha256: pkg.sha256,
      size: pkg.size,
      signature: pkg.signature,
      downloadPath: `/api/v1/agent/packages/${pkg.id}/content`,
      fromVersion: (pkg.kind === 'webapps' ? agent?.webappsVersion : agent?.version) ?? null,
      toVersion: pkg.version,
      kind: pkg.kind,
      migration: pkg.migration,
      phases: upgradePhases(options),
      options: {
        rebootAfter: options.rebootAfter,
        waitForIdle: options.waitForIdle,
        phaseTimeoutS: options.phaseTimeoutS,
        delayedStartS: options.delayedStartS ?? 0,
        stopServices: options.stopServices ?? [],
        ignoreVersionCheck: options.ignoreVersionCheck ?? false,
        agentOptions: options.agentOptions,
      },
    };
  }

  /** The command a step starts, referring back to it (`step:<upgradeId>/<stepId>`). */
  private commandFor(upgrade: Upgrade, pkg: Package, step: UpgradeStep, agent: Agent | null): NewCommand {
    const target = {
      agentId: step.agentId,
      clusterId: upgrade.clusterId,
      reference: `${STEP_REFERENCE}${upgrade.id}/${step.id}`,
    };
    if (step.kind === 'upgrade')
      return { ...target, type: 'upgrade', payload: this.upgradePayload(upgrade, pkg, step, agent) };
    if (step.kind === 'rollback')
      return { ...target, type: 'rollback', payload: this.rollbackPayload(upgrade, step, agent) };
    return {
      ...target,
      type: 'switchover',
      payload: {
        activate: true,
        failoverGroup: step.failoverGroup,
        peerAgentId: step.fromAgentId,
        upgradeId: upgrade.id,
        stepId: step.id,
      },
    };
  }

  /** A rollback step's command: back to the version the upgrade replaced, with the data of the backup it took. */
  private rollbackPayload(upgrade: Upgrade, step: UpgradeStep, agent: Agent | null): RollbackCommandPayload {
    const before = upgrade.priorState?.agents[step.agentId];
    return {
      upgradeId: upgrade.id,
      stepId: step.id,
      kind: upgrade.packageKind,
      fromVersion: (upgrade.packageKind === 'webapps' ? agent?.webappsVersion : agent?.version) ?? null,
      toVersion: step.toVersion,
      webappsVersion: before?.webappsVersion ?? null,
      backup: step.backup ?? '',
      phases: [...ROLLBACK_PHASES],
    };
  }

  /** The upgrade ended: its agents are free; an upgrade of all agents that upgraded one sets the cluster's target. */
  private async finish(
    tx: Tx,
    upgrade: Upgrade,
    steps: UpgradeStep[],
    status: Upgrade['status'],
    reason: string | null,
  ): Promise<void> {
    upgrade.finishedAt = this.clock.now();
    await this.writer.saveUpgrade(tx, upgrade, steps, status, reason ?? upgrade.reason);
    // The cluster targets the version once an upgrade of all its agents did its work: some were
    // upgraded, or missed their turn (auto-upgrade brings those up when they are back).
    const tookEffect = steps.some((s) => s.kind === 'upgrade' && (s.status === 'succeeded' || s.status === 'missed'));
    if (upgrade.target.all && tookEffect && upgrade.rollbackRound === 0 && status !== 'cancelled') {
      await this.clusters.setTarget(
        tx,
        upgrade.clusterId,
        upgrade.packageKind,
        upgrade.packageVersion,
        upgrade.packageId,
      );
    }
    this.logger.log(`upgrade ${upgrade.id} ${status}${reason ? `: ${reason}` : ''}`);
  }

  /**
   * CommandIssuer: an agent reported on a command of ours, in the transaction that records the
   * report: the step moves with it. A report on an earlier attempt's command changes nothing.
   */
  async onReport(tx: Tx, command: AgentCommand, report: CommandReport): Promise<ReportOutcome> {
    const found = await this.stepOfReport(tx, command, report);
    if (!found) return 'ignored';
    const { upgrade, steps, step } = found;
    const now = this.clock.now();
    const agentChanges = new Map<string, Partial<Agent>>();
    // The agent has the command: from now on the step runs (a report without a fetch seen first
    // comes from an agent that had it from an older server).
    const startsNow = step.status === 'waiting';
    if (startsNow)
      Object.assign(step, { status: 'running', waitingFor: null, waitingSince: null, phaseStartedAt: now });
    switch (report.kind) {
      case 'fetched':
        await this.checkPairAtFetch(tx, upgrade, step, command, now);
        break;
      case 'progress':
        recordProgress(step, report.report, now);
        break;
      case 'complete':
        await this.recordEnd(tx, upgrade, step, report.report, agentChanges, now);
        break;
    }
    // A fetch moves a step from waiting to running at 0%, or back to waiting: the percent stays.
    await this.writer.saveSteps(tx, upgrade, report.kind === 'fetched' ? 'same-percent' : 'partial', [step]);
    // Progress changes nothing the executor decides on, once the step runs. A fetch makes the agent
    // upgrading; an end may let other steps start: a pass follows soon, shortly after, so that the
    // ends of a batch reported together make one pass.
    if (report.kind !== 'progress' || startsNow)
      await this.writer.syncAgents(tx, upgrade, steps, [step.agentId], agentChanges);
    if (report.kind === 'complete') tx.afterCommit(() => this.pokeSoon());
    return 'recorded'; // the version an end reports is recorded in recordEnd, on the right component
  }

  /**
   * The upgrade (locked) and the step a report moves, with the steps of the agents it touches;
   * null when it moves none: not a step's command, an earlier attempt's, or a second fetch (the
   * agent's heartbeats reached two replicas at once).
   */
  private async stepOfReport(
    tx: Tx,
    command: AgentCommand,
    report: CommandReport,
  ): Promise<{ upgrade: Upgrade; steps: UpgradeStep[]; step: UpgradeStep } | null> {
    const origin = stepOrigin(command);
    if (!origin) return null;
    await tx.advisoryLock(`upgrade:${origin.upgradeId}`);
    const upgrade = await this.upgrades.findForUpdate(tx, origin.upgradeId);
    if (!upgrade) return null;
    // Only the steps of the agents this report touches (an upgrade may have thousands): the
    // command's agent, and the member handing over when it is a switchover.
    const fromAgentId = typeof command.payload.peerAgentId === 'string' ? command.payload.peerAgentId : null;
    const steps = await this.upgrades.stepsOfAgents(tx.em, upgrade.id, [
      command.agentId,
      ...(fromAgentId ? [fromAgentId] : []),
    ]);
    const step = steps.find((s) => s.id === origin.stepId);
    if (!step || step.commandId !== command.id || !isOut(step)) return null;
    if (report.kind === 'fetched' && step.status === 'running') return null;
    return { upgrade, steps, step };
  }

  /**
   * The agent fetched its command: a serving pair member's peer may have failed or gone away since
   * the step started. Then the command is withdrawn before the member sees it, and the step waits
   * for its peer again.
   */
  private async checkPairAtFetch(
    tx: Tx,
    upgrade: Upgrade,
    step: UpgradeStep,
    command: AgentCommand,
    now: Date,
  ): Promise<void> {
    const unsafe =
      step.kind === 'upgrade' && step.failoverGroup ? await this.pairGateAtFetch(tx, upgrade, command.agentId) : null;
    if (!unsafe) return;
    await this.commands.cancel(tx, command.id, unsafe);
    Object.assign(step, {
      status: 'waiting',
      waitingFor: 'peer',
      waitingSince: now,
      commandId: null,
      attempts: step.attempts - 1,
      startedAt: null,
      phaseStartedAt: null,
    });
    this.logger.warn(`upgrade ${upgrade.id}: command ${command.id} withdrawn: ${unsafe}`);
  }

  /**
   * The command ended: the step ends with it, its outcome and the version reported go on the
   * agents (one write of each agent, with the other changes), and a switchover that succeeded is
   * announced.
   */
  private async recordEnd(
    tx: Tx,
    upgrade: Upgrade,
    step: UpgradeStep,
    report: CompleteReportDto,
    agentChanges: Map<string, Partial<Agent>>,
    now: Date,
  ): Promise<void> {
    this.endStep(upgrade, step, report, now);
    this.recordOutcome(upgrade, step, agentChanges);
    // An upgrade's (or its rollback's) report names the version of what it changed: the core, or the web apps.
    const webapps = (step.kind === 'upgrade' || step.kind === 'rollback') && upgrade.packageKind === 'webapps';
    if (step.kind === 'upgrade' && report.backup) step.backup = report.backup;
    if (report.version)
      agentChanges.set(step.agentId, {
        ...agentChanges.get(step.agentId),
        [webapps ? 'webappsVersion' : 'version']: report.version,
      });
    if ((step.kind === 'switchover' || step.kind === 'switchback') && report.status === 'succeeded')
      await this.announceSwitchover(tx, upgrade, step);
  }

  /** The step's end as the agent reported it; a success must name the version the step installs. */
  private endStep(upgrade: Upgrade, step: UpgradeStep, report: CompleteReportDto, now: Date): void {
    const { status, version, error, notes } = report;
    const versionProblem =
      status !== 'succeeded'
        ? null
        : step.kind === 'upgrade'
          ? this.versionProblem(upgrade, upgrade.packageVersion, version)
          : step.kind === 'rollback' && step.toVersion
            ? this.versionProblem(upgrade, step.toVersion, version)
            : null;
    if (versionProblem) {
      Object.assign(step, { status: 'failed', error: versionProblem });
    } else if (status === 'succeeded') {
      Object.assign(step, { status: 'succeeded', percent: 100, error: null });
    } else {
      // rolled-back: the agent restored its data and old version; a failure with nothing lost.
      Object.assign(step, {
        status,
        error:
          status === 'rolled-back'
            ? `rolled back, data intact${error ? `: ${error}` : ''}`
            : (error ?? 'the agent reported a failure'),
      });
    }
    step.endedAt = now;
    if (notes?.length) step.agentNotes = notes;
  }

  /** A switchover succeeded: `pair.switchover`, and the member that handed over is told it is standby now (no step waits on this). */
  private async announceSwitchover(tx: Tx, upgrade: Upgrade, step: UpgradeStep): Promise<void> {
    await this.writer.publishSwitchover(tx, upgrade, step);
    if (!step.fromAgentId) return;
    await this.commands.enqueue(tx, {
      agentId: step.fromAgentId,
      clusterId: upgrade.clusterId,
      type: 'switchover',
      payload: {
        activate: false,
        failoverGroup: step.failoverGroup,
        peerAgentId: step.agentId,
        upgradeId: upgrade.id,
      } satisfies SwitchoverCommandPayload,
      reference: `standby:${step.id}`,
    });
  }

  /**
   * An agent whose upgrade step the executor failed for a phase past phaseTimeoutS reports, on a
   * heartbeat, the version that step installs: it finished after the server gave up on it
   * (finishedLate in step-rules.ts). The step is recorded as it happened (succeeded, with a note
   * saying so) and the agent as it is (that version, not failed, free for auto-upgrade). A live
   * upgrade carries on from there in its next pass; a finished one is judged again from its steps
   * (so its status and the cluster's target follow the same rules as at its end), but nothing it
   * blocked or skipped is started again. Runs after the heartbeat's commit, in its own transaction,
   * taking the upgrade's lock before the agent's row, as every pass does.
   */
  async reconcileLateFinish(agentId: string): Promise<void> {
    const latest = await this.upgrades.lastStartedUpgradeStepOf(this.db.reader, agentId);
    if (!latest || latest.status !== 'failed' || !latest.commandId) return;
    await this.db.transaction(async (tx) => {
      await tx.advisoryLock(`upgrade:${latest.upgradeId}`);
      const upgrade = await this.upgrades.findForUpdate(tx, latest.upgradeId);
      if (!upgrade) return;
      const steps = await this.upgrades.stepsOf(tx.em, upgrade.id);
      const step = steps.find((s) => s.id === latest.id);
      const command = step?.commandId ? await this.commands.findById(step.commandId, tx) : null;
      const [agent] = await this.agents.lockMany(tx, [agentId]);
      const pkg = { version: upgrade.packageVersion, kind: upgrade.packageKind };
      if (!step || !agent || !finishedLate(step, command, toRuleAgent(agent), pkg)) return;

      const now = this.clock.now();
      const gaveUp = step.error ?? 'failed';
      Object.assign(step, {
        status: 'succeeded',
        percent: 100,
        error: null,
        note: `finished after the server failed it (${gaveUp}): ${agent.name} reported ${pkg.version} on ${now.toISOString()}`.slice(
          0,
          500,
        ),
      });
      const agentChanges = new Map<string, Partial<Agent>>();
      this.recordOutcome(upgrade, step, agentChanges);
      await this.writer.saveSteps(tx, upgrade, steps, [step]);
      if (upgrade.rollbackRound > 0) {
        // Rolled back meanwhile: the upgrade is not judged again, nor the cluster's target moved;
        // the agent now runs the new version, which a rollback brings back (docs/rollback.md).
        const reason = `${agent.name} finished its upgrade to ${pkg.version} after the rollback began: it is not rolled back; roll the upgrade back again`;
        if (upgrade.finishedAt) await this.writer.saveUpgrade(tx, upgrade, steps, 'rollback-failed', reason);
      } else if (upgrade.finishedAt && upgrade.status !== 'cancelled') {
        await this.judgeAgain(tx, upgrade, steps);
      } else if (!upgrade.finishedAt) {
        tx.afterCommit(() => this.pokeSoon());
      }
      await this.writer.syncAgents(tx, upgrade, steps, [agentId], agentChanges);
      this.logger.warn(
        `upgrade ${upgrade.id}: agent ${agentId} finished its upgrade to ${pkg.version} after its step was failed (${gaveUp}); recorded as succeeded`,
      );
    });
  }

  /**
   * A finished upgrade one of whose steps turned out to have succeeded: its status is judged again
   * from its steps, and the cluster's target follows it as at its end (see finish), unless a later
   * upgrade of all agents decides the target.
   */
  private async judgeAgain(tx: Tx, upgrade: Upgrade, steps: UpgradeStep[]): Promise<void> {
    const end = judgeEnd(steps, upgrade.failureLimit);
    if (end.type === 'finish') await this.writer.saveUpgrade(tx, upgrade, steps, end.status, end.reason);
    if (!upgrade.target.all || (await this.upgrades.upgradeOfAllSince(tx.em, upgrade.clusterId, upgrade.createdAt)))
      return;
    const cluster = await this.clusters.require(upgrade.clusterId, tx);
    const current = upgrade.packageKind === 'webapps' ? cluster.webappsTargetPackageId : cluster.targetPackageId;
    if (current !== upgrade.packageId)
      await this.clusters.setTarget(
        tx,
        upgrade.clusterId,
        upgrade.packageKind,
        upgrade.packageVersion,
        upgrade.packageId,
      );
  }

  /** The pair gate again, as the agent fetches its command (see pairGate). */
  private async pairGateAtFetch(tx: Tx, upgrade: Upgrade, agentId: string): Promise<string | null> {
    const agents = ruleAgents(await this.agents.lockWithPeers(tx, [agentId]));
    const agent = agents.get(agentId);
    const peer = agent?.peerId ? agents.get(agent.peerId) : undefined;
    if (!agent || !peer) return null;
    const peerSteps = await this.upgrades.stepsOfAgents(tx.em, upgrade.id, [peer.id]);
    return pairGate(agent, peer, () => peerSteps.some((s) => stopsWithIt(s, s.status)));
  }

  /** Why a successful upgrade report cannot be believed: it must name the version the step installs. */
  private versionProblem(upgrade: Upgrade, wanted: string, version: string | undefined): string | null {
    const what = upgrade.packageKind === 'webapps' ? 'web-apps version' : 'version';
    if (!version) return `the agent reported success without the ${what} it runs now; it must report ${wanted}`;
    const same = version === wanted || (semver.valid(version) && semver.valid(wanted) && semver.eq(version, wanted));
    return same ? null : `the agent reported success but its ${what} is ${version}, not ${wanted}`;
  }

  /** What a step's end records on its agents: upgrade outcome, or which pair member is active. */
  private recordOutcome(upgrade: Upgrade, step: UpgradeStep, agentChanges: Map<string, Partial<Agent>>): void {
    if (step.kind === 'upgrade') {
      const ok = step.status === 'succeeded';
      // A full package replaces any earlier web-apps upgrade: the agent runs the web apps its new version shipped with.
      const versions = ok
        ? upgrade.packageKind === 'webapps'
          ? { webappsVersion: upgrade.packageVersion }
          : { version: upgrade.packageVersion, webappsVersion: null }
        : {};
      const autoUpgrade = ok ? AUTO_UPGRADE_FREE : {};
      agentChanges.set(step.agentId, { lastUpgradeFailed: !ok, ...versions, ...autoUpgrade });
    } else if (step.kind === 'rollback') {
      // Back where it was on purpose: auto-upgrade leaves it until someone acts (docs/rollback.md).
      agentChanges.set(step.agentId, {
        lastUpgradeFailed: step.status !== 'succeeded',
        ...rolledBackVersions(upgrade, step),
        ...(step.status === 'succeeded' ? leftBehind(upgrade, 'it was rolled back') : {}),
      });
    } else if (step.status === 'succeeded' && step.fromAgentId) {
      agentChanges.set(step.agentId, { active: true });
      agentChanges.set(step.fromAgentId, { active: false });
    }
  }
}
