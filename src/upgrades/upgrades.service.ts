import { AuditTrail } from '../audit/audit-trail.service';
import { actorName, type Origin } from '../audit/origin';
import { Injectable, Logger } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { randomUUID } from 'node:crypto';
import { Agent } from '../cluster/agent.entity';
import { AgentCommandsService } from '../cluster/agent-commands.service';
import { findSigningKey } from '../protocol/package-signing';
import { SigningKeysService } from '../cluster/signing-keys.service';
import { AgentsService } from '../cluster/agents.service';
import { Cluster } from '../cluster/cluster.entity';
import { behindOn } from '../cluster/agent-state';
import { describeLabels, matchesLabels } from '../cluster/labels';
import { ClustersService } from '../cluster/clusters.service';
import { Clock } from '../common/clock';
import { BadInputError, ConflictError, NotFoundError, UnprocessableError } from '../common/errors';
import { toFieldProblems } from '../common/validation';
import { Database, Tx } from '../database/database';
import { Package } from '../packages/package.entity';
import type { ReceivedUpload } from '../packages/upload-receiver';
import { type AcceptedUpload, PackagesService } from '../packages/packages.service';
import { checkPrerequisites, PrerequisiteResult } from '../packages/prerequisites';
import { Plan, plan, PlanAgent, type PlanNotice } from '../policies/planner';
import { resolveOptions, type UpgradeOptions } from '../policies/upgrade-options';
import { refuseRollbackWithoutBackup } from '../cluster/clusters.service';
import {
  CreateUpgradeDto,
  InstallFieldsDto,
  ListUpgradesQuery,
  MigrationDto,
  PreviewDto,
  toBatchWindowDto,
  toStepDto,
  UpgradeDto,
  UpgradePageDto,
  toUpgradeDto,
} from './dto/upgrade.dto';
import { AUTO_UPGRADE_FREE, leftBehind } from './auto-upgrade-rules';
import { RollbackPlanning } from './rollback-planning';
import { stopUnstarted } from './stop-unstarted';
import { UpgradeExecutor } from './upgrade-executor';
import { LIVE_UPGRADE_STATUSES, Upgrade, UpgradeOrigin, UpgradeStatus } from './upgrade.entity';
import { UpgradeRepository } from './upgrade.repository';
import { plannedStep, RETRYABLE_STEP_STATUSES, UpgradeStep } from './upgrade-step.entity';
import { UpgradeWriter } from './upgrade-writer';
import { stepId } from './step-ids';
import { windowsForPlan } from './upgrade-windows';
import type { BatchWindow } from './window-rules';

/** A scheduledAt this far in the past is refused as a mistake rather than started at once. */
const PAST_SCHEDULE_TOLERANCE_MS = 5 * 60_000;

export const toPlanAgent = (a: Agent): PlanAgent => ({
  id: a.id,
  name: a.name,
  address: a.address,
  role: a.role,
  failoverGroup: a.failoverGroup,
  active: a.active,
  version: a.version,
  webappsVersion: a.webappsVersion,
  paired: a.pairedAt !== null,
  online: a.online,
  busy: a.busy,
  remoteUpgrade: a.remoteUpgrade,
  factsKnown: !!a.facts && Object.keys(a.facts).length > 0,
});

interface Compiled {
  cluster: Cluster;
  pkg: Package;
  options: UpgradeOptions;
  plan: Plan;
  prerequisites: PrerequisiteResult;
  /** The plan's step keys as step ids: the same in a preview and in the upgrade it creates (step-ids.ts). */
  idOf: (key: string) => string;
  /** With options.respectWindows, the window each batch is expected to run in (upgrade-windows.ts). */
  batchWindows: BatchWindow[];
  /** Why the cluster's agents would refuse to install the package's signature, if they would. */
  signatureRefusal: { code: string; message: string } | null;
}

/** The upgrade life cycle: preview, create, pause, resume, cancel, retry; and the per-agent "upgrade now" and "migrate". */
@Injectable()
export class UpgradesService {
  private readonly logger = new Logger(UpgradesService.name);

  constructor(
    private readonly db: Database,
    private readonly upgrades: UpgradeRepository,
    private readonly writer: UpgradeWriter,
    private readonly executor: UpgradeExecutor,
    private readonly rollbacks: RollbackPlanning,
    private readonly clusters: ClustersService,
    private readonly agents: AgentsService,
    private readonly packages: PackagesService,
    private readonly commands: AgentCommandsService,
    private readonly clock: Clock,
    private readonly audit: AuditTrail,
    private readonly signingKeys: SigningKeysService,
  ) {}

  /**
   * A package upload (PackageUploadController): the packages module stores it; with mode=install it
   * calls back into the upgrade's creation, in the transaction that stores the package.
   */
  acceptUpload(clusterId: string, upload: ReceivedUpload, by: Origin): Promise<AcceptedUpload<UpgradeDto>> {
    return this.packages.accept(clusterId, upload, by, {
      parse: (fields) => parseInstallFields(fields),
      install: async (tx, pkg, request) => {
        const { upgrade, steps } = await this.createInTx(
          tx,
          pkg.clusterId,
          { ...request, packageId: pkg.id },
          'install',
          by,
        );
        return toUpgradeDto(upgrade, steps);
      },
    });
  }

  /** What of this module a cluster still holds ("2 upgrades"), for ClusterContents; null when none. */
  async leftIn(tx: Tx, clusterId: string): Promise<string | null> {
    const n = await this.upgrades.countInCluster(tx.em, clusterId);
    return n > 0 ? `${n} upgrade${n === 1 ? '' : 's'}` : null;
  }

  /** Whether the upgrade exists (an event stream's scope). */
  async exists(id: string): Promise<boolean> {
    return (await this.upgrades.findById(id)) !== null;
  }

  /** The plan, its warnings and refusals, and the prerequisite check, without creating anything. */
  async preview(clusterId: string, dto: CreateUpgradeDto): Promise<PreviewDto> {
    // A transaction only for one consistent read of cluster, package and agents; nothing is written.
    const compiled = await this.db.transaction((tx) => this.compile(tx, clusterId, dto));
    const { plan: p } = compiled;
    return {
      resolvedPolicy: p.resolvedPolicy,
      steps: buildSteps(p, null, compiled.idOf, this.clock.now()).map(toStepDto),
      units: p.units,
      batches: p.batches,
      maxParallel: p.maxParallel,
      failureLimit: Number.isFinite(p.failureLimit) ? p.failureLimit : null,
      warnings: p.warnings,
      refusals: [
        ...p.refusals,
        ...(compiled.prerequisites.failures.length
          ? [
              {
                code: 'PREREQUISITES_UNMET',
                message: 'Agents fail the package prerequisites: see prerequisites.failures.',
              },
            ]
          : []),
        ...this.packageRefusal(compiled.pkg, 'request'),
        ...(compiled.signatureRefusal ? [compiled.signatureRefusal] : []),
      ],
      prerequisites: compiled.prerequisites,
      batchWindows: compiled.batchWindows.map(toBatchWindowDto),
    };
  }

  async create(clusterId: string, dto: CreateUpgradeDto, by: Origin): Promise<UpgradeDto> {
    const { upgrade, steps } = await this.db.transaction((tx) => this.createInTx(tx, clusterId, dto, 'request', by));
    return toUpgradeDto(upgrade, steps);
  }

  /**
   * Creates an upgrade in the caller's transaction: the package upload's install mode runs it in the
   * transaction that stores the package, so a refused upgrade leaves no package either.
   */
  async createInTx(
    tx: Tx,
    clusterId: string,
    dto: CreateUpgradeDto,
    origin: UpgradeOrigin,
    by: Origin,
  ): Promise<{ upgrade: Upgrade; steps: UpgradeStep[] }> {
    const now = this.clock.now();
    const scheduledAt = this.parseSchedule(dto.scheduledAt, now);
    const compiled = await this.compile(tx, clusterId, dto);
    refuseUnplannable(compiled, this.packageRefusal(compiled.pkg, origin));
    const working = await this.lockWorking(tx, compiled.plan, origin);
    const upgrade = newUpgrade(clusterId, dto, origin, by, compiled, scheduledAt, now);
    const steps = buildSteps(compiled.plan, upgrade.id, compiled.idOf, now);

    // The package first: of two requests racing for it, the second waits on its row and is refused
    // (409) before it could insert steps with the same ids.
    if (origin === 'request' || origin === 'install') {
      if (upgrade.status === 'running') await this.packages.complete(tx, compiled.pkg.id, upgrade.id);
      else await this.packages.reserve(tx, compiled.pkg.id, upgrade.id);
    }
    if (upgrade.status === 'running') await this.rollbacks.recordPriorState(tx, upgrade, steps);
    await this.upgrades.insert(tx.em, upgrade, steps);
    // "Upgrade now" records its own action (agent.upgrade-now) with this upgrade in its summary.
    if (origin !== 'upgrade-now')
      await this.audit.record(tx, by, {
        action: 'upgrade.create',
        target: 'upgrade',
        targetId: upgrade.id,
        clusterId,
        summary: `created ${describeUpgrade(upgrade, working.length)}`,
      });
    await this.writer.saveUpgrade(tx, upgrade, steps);
    // Someone acted on these agents: whatever held auto-upgrade back from them is lifted.
    const acted =
      origin === 'auto-upgrade'
        ? new Map<string, Partial<Agent>>()
        : new Map(working.map((id) => [id, AUTO_UPGRADE_FREE]));
    await this.writer.syncAgents(tx, upgrade, steps, working, acted);
    tx.afterCommit(() => this.executor.poke());
    this.logger.log(
      `upgrade ${upgrade.id} (${origin}) of ${working.length} agent(s) in cluster ${clusterId} to ${compiled.pkg.version}: ${upgrade.status}`,
    );
    return { upgrade, steps };
  }

  /**
   * The agents the plan gives work, locked: one agent, one live upgrade, so of two requests for an
   * agent one waits and then sees the other's (409). "Upgrade now" and auto-upgrade always do
   * something, or say why not: no empty upgrade.
   */
  private async lockWorking(tx: Tx, p: Plan, origin: UpgradeOrigin): Promise<string[]> {
    const working = [...new Set(p.steps.filter((s) => s.status === 'pending').map((s) => s.agentId))];
    if (working.length === 0 && (origin === 'upgrade-now' || origin === 'auto-upgrade')) {
      const why = p.steps.find((s) => s.status === 'manual')?.note ?? p.warnings.map((w) => w.message).join(' ');
      throw new UnprocessableError('NOTHING_TO_UPGRADE', `Nothing to upgrade remotely: ${why}`, {
        warnings: p.warnings,
      });
    }
    refuseHeld(
      (await this.agents.lockMany(tx, working)).filter((a) => a.upgradeId),
      'Wait for it to end or cancel it.',
    );
    return working;
  }

  async list(clusterId: string, query: ListUpgradesQuery): Promise<UpgradePageDto> {
    await this.clusters.require(clusterId);
    const limit = query.limit ?? 50;
    const offset = query.offset ?? 0;
    const [items, total] = await this.upgrades.list(
      clusterId,
      { status: query.status, agentId: query.agentId },
      limit,
      offset,
    );
    return { items: items.map((u) => toUpgradeDto(u)), total, limit, offset };
  }

  async get(id: string): Promise<UpgradeDto> {
    const upgrade = await this.require(id);
    return toUpgradeDto(upgrade, await this.upgrades.stepsOf(this.db.reader, id));
  }

  /** No new step starts; running steps finish. */
  pause(id: string, by: Origin): Promise<UpgradeDto> {
    return this.transition(id, ['running'], 'pause', by, async (tx, upgrade, steps) => {
      await this.writer.saveUpgrade(tx, upgrade, steps, 'paused', `paused by ${actorName(by.actor)}`);
    });
  }

  /** Goes on after a pause (or after the canary units). Waits start counting again from now. */
  resume(id: string, by: Origin): Promise<UpgradeDto> {
    return this.transition(id, ['paused'], 'resume', by, async (tx, upgrade, steps) => {
      const now = this.clock.now();
      const waiting = steps.filter((s) => s.status === 'waiting');
      for (const step of waiting) step.waitingSince = now;
      await this.upgrades.saveSteps(tx.em, waiting);
      upgrade.canaryPending = false;
      // A resume gives the mixed-version budget anew: the operator looked and goes on.
      upgrade.budgetFrom = now;
      await this.writer.saveUpgrade(tx, upgrade, steps, 'running', null);
    });
  }

  /**
   * Stops every step that has not started. Steps already running finish (an agent is never
   * interrupted mid-install) and their outcome is recorded; the upgrade is finished when they are.
   * A scheduled upgrade gives its package back.
   */
  cancel(id: string, by: Origin): Promise<UpgradeDto> {
    return this.transition(id, LIVE_UPGRADE_STATUSES, 'cancel', by, async (tx, upgrade, steps) => {
      const now = this.clock.now();
      const stopped = await stopUnstarted(tx, this.commands, steps, now, {
        command: 'the upgrade was cancelled',
        step: `cancelled by ${actorName(by.actor)}`,
      });
      if (upgrade.status === 'scheduled') await this.packages.release(tx, upgrade.packageId, upgrade.id);
      if (!steps.some((s) => s.status === 'running')) upgrade.finishedAt = now;
      await this.writer.saveSteps(tx, upgrade, steps, stopped);
      await this.writer.saveUpgrade(tx, upgrade, steps, 'cancelled', `cancelled by ${actorName(by.actor)}`);
      // The agents a started upgrade leaves behind stay behind until someone acts: auto-upgrade does
      // not undo a cancel. (One cancelled before it started changed nothing and leaves nothing.)
      const left = upgrade.startedAt
        ? new Map(
            stopped
              .filter((s) => s.kind === 'upgrade')
              .map((s) => [s.agentId, leftBehind(upgrade, 'it was cancelled')]),
          )
        : new Map<string, Partial<Agent>>();
      await this.writer.syncAgents(tx, upgrade, steps, undefined, left);
    });
  }

  /**
   * Runs again, in the same upgrade with the same package, every unit (agent or pair) with a step
   * that failed, missed its turn or was cancelled. Each such unit is planned again under the
   * upgrade's policy from the agents as they are now (which member serves, which version each runs),
   * so a serving member that took back over hands over again before it is stopped: the unit's steps
   * that did not succeed are replaced by the new plan's.
   */
  retry(id: string, by: Origin): Promise<UpgradeDto> {
    return this.transition(
      id,
      ['failed', 'completed-with-errors', 'succeeded', 'cancelled'],
      'retry',
      by,
      async (tx, upgrade, steps) => {
        if (upgrade.finishedAt === null) {
          throw new ConflictError(
            'UPGRADE_STATE',
            `Upgrade ${id} is still finishing its running steps; retry once it ended.`,
            { status: upgrade.status },
          );
        }
        if (upgrade.rollbackRound > 0) {
          throw new ConflictError(
            'UPGRADE_ROLLED_BACK',
            `Upgrade ${id} was rolled back (or was rolling back when it was cancelled): create a new upgrade instead, or roll it back again.`,
            { status: upgrade.status },
          );
        }
        if (upgrade.startedAt === null) {
          throw new ConflictError(
            'UPGRADE_NEVER_STARTED',
            `Upgrade ${id} was cancelled before it started and gave its package back: create a new upgrade with package ${upgrade.packageId} instead.`,
            { status: upgrade.status, packageId: upgrade.packageId },
          );
        }
        const units = new Set(steps.filter((s) => RETRYABLE_STEP_STATUSES.includes(s.status)).map((s) => s.unit));
        if (units.size === 0) {
          throw new ConflictError(
            'NOTHING_TO_RETRY',
            `Upgrade ${id} has no step that failed, missed its turn or was cancelled: there is nothing to retry.`,
            { status: upgrade.status },
          );
        }
        // What succeeded, and agents found on the version already, stay as they were.
        const replaced = steps.filter((s) => units.has(s.unit) && s.status !== 'succeeded' && s.status !== 'skipped');
        const kept = steps.filter((s) => !replaced.includes(s));
        const fresh = await this.replan(tx, upgrade, kept, replaced);
        const all = [...kept, ...fresh];
        const working = [...new Set(fresh.filter((s) => s.status === 'pending').map((s) => s.agentId))];
        refuseHeld(
          (await this.agents.lockMany(tx, working)).filter((a) => a.upgradeId && a.upgradeId !== upgrade.id),
          'Retry once that upgrade ends.',
        );
        await this.upgrades.replaceSteps(tx.em, replaced, fresh);
        Object.assign(upgrade, { finishedAt: null, canaryPending: false, budgetFrom: this.clock.now() });
        await this.writer.saveSteps(tx, upgrade, all, fresh);
        await this.writer.saveUpgrade(tx, upgrade, all, 'running', null);
        const agentIds = new Set(
          [...replaced, ...fresh].flatMap((s) => [s.agentId, ...(s.fromAgentId ? [s.fromAgentId] : [])]),
        );
        // The failed steps are replaced (their history stays in the upgrade's events): the agents run
        // again, and are no longer shown failed unless the new attempt fails.
        await this.writer.syncAgents(
          tx,
          upgrade,
          all,
          agentIds,
          new Map(working.map((a) => [a, { ...AUTO_UPGRADE_FREE, lastUpgradeFailed: false }])),
        );
        steps.splice(0, steps.length, ...all);
      },
    );
  }

  /** The retried units planned again: new steps after the kept ones, attempts carried over. */
  private async replan(tx: Tx, upgrade: Upgrade, kept: UpgradeStep[], replaced: UpgradeStep[]): Promise<UpgradeStep[]> {
    const cluster = await this.clusters.require(upgrade.clusterId, tx);
    const all = await this.agents.inClusterForPlanning(tx, upgrade.clusterId);
    const wanted = new Set(replaced.filter((s) => s.kind === 'upgrade' || s.kind === 'manual').map((s) => s.agentId));
    const targets = all.filter((a) => wanted.has(a.id));
    const p = plan({
      targets: targets.map(toPlanAgent),
      cluster: all.map(toPlanAgent),
      pkg: { version: upgrade.packageVersion, kind: upgrade.packageKind },
      policy: upgrade.resolvedPolicy,
      clusterDefaultPolicy: cluster.defaultPolicy,
      options: upgrade.options,
    });
    if (p.refusals.length)
      throw new UnprocessableError('RETRY_REFUSED', p.refusals.map((r) => r.message).join(' '), {
        refusals: p.refusals,
      });
    // An agent upgraded by this upgrade already (or found on the version) keeps its step; no second, skipped one.
    const upgraded = new Set(kept.filter((s) => s.kind === 'upgrade').map((s) => s.agentId));
    const dropped = new Set(p.steps.filter((s) => s.status === 'skipped' && upgraded.has(s.agentId)).map((s) => s.key));
    const planned = {
      ...p,
      steps: p.steps
        .filter((s) => !dropped.has(s.key))
        .map((s) => ({ ...s, dependsOn: s.dependsOn.filter((d) => !dropped.has(d)) })),
    };
    const ids = new Map(planned.steps.map((s) => [s.key, randomUUID()]));
    const now = this.clock.now();
    const attempts = new Map(replaced.map((s) => [`${s.kind}:${s.agentId}`, s.attempts]));
    const firstOrdinal = Math.max(-1, ...kept.map((s) => s.ordinal), ...replaced.map((s) => s.ordinal)) + 1;
    const firstUnit = Math.max(-1, ...kept.map((s) => s.unit), ...replaced.map((s) => s.unit)) + 1;
    return buildSteps(planned, upgrade.id, (key) => ids.get(key)!, now).map((step, i) =>
      Object.assign(step, {
        ordinal: firstOrdinal + i,
        unit: firstUnit + step.unit,
        attempts: attempts.get(`${step.kind}:${step.agentId}`) ?? 0,
      }),
    );
  }

  /**
   * Brings one agent to its cluster's targets now (opted out, failed, left behind): the core target
   * with the package that set it, or, once the core is on target, the web-apps target. It always
   * does something or says why not (422): a legacy agent gets the manual instructions, an agent on
   * the targets is told so, a failed one whose upgrade was not the cluster's is pointed at its retry.
   */
  async upgradeNow(agentId: string, by: Origin, origin: UpgradeOrigin = 'upgrade-now'): Promise<UpgradeDto> {
    const { upgrade, steps } = await this.db.transaction(async (tx) => {
      const agent = await this.agents.require(agentId, tx);
      const cluster = await this.clusters.require(agent.clusterId, tx);
      const packageId = await this.upgradeNowPackage(tx, agent, cluster);
      const created = await this.createInTx(
        tx,
        cluster.id,
        { packageId, target: { agentIds: [agent.id] }, policy: 'default' },
        origin,
        by,
      );
      if (origin === 'upgrade-now')
        await this.audit.record(tx, by, {
          action: 'agent.upgrade-now',
          target: 'agent',
          targetId: agent.id,
          clusterId: cluster.id,
          summary: `upgrade now of agent "${agent.name}": created ${describeUpgrade(created.upgrade, 1)} (upgrade ${created.upgrade.id})`,
        });
      return created;
    });
    return toUpgradeDto(upgrade, steps);
  }

  /** The target package "upgrade now" brings the agent to, or the refusal that says why there is none. */
  private async upgradeNowPackage(tx: Tx, agent: Agent, cluster: Cluster): Promise<string> {
    if (agent.upgradeId) {
      throw new ConflictError(
        'AGENT_IN_UPGRADE',
        `${agent.name} is in upgrade ${agent.upgradeId}: an agent is in one scheduled or running upgrade at a time.`,
        { upgradeId: agent.upgradeId },
      );
    }
    const behind = behindOn(agent, cluster.targetVersion, cluster.webappsTargetVersion);
    const packageId = behind === 'webapps' ? cluster.webappsTargetPackageId : cluster.targetPackageId;
    const version = behind === 'webapps' ? cluster.webappsTargetVersion : cluster.targetVersion;
    if (!agent.remoteUpgrade) throw legacyAgent(agent, packageId, version);
    if (!cluster.targetPackageId && !cluster.webappsTargetPackageId) {
      throw new UnprocessableError(
        'NO_TARGET_VERSION',
        `Cluster ${cluster.name} has no target version yet: it gets one when an upgrade of all its agents upgrades one. Create an upgrade for this agent instead.`,
      );
    }
    if (!agent.version)
      throw new UnprocessableError(
        'VERSION_UNKNOWN',
        `${agent.name} has not reported its version yet: it can be upgraded once it has paired and sent a heartbeat.`,
      );
    if (!behind || !packageId) throw await this.nothingToUpgrade(tx, agent, cluster);
    return packageId;
  }

  /** The agent is on the cluster's targets: said so, and pointed at the retry of its own failed upgrade if it has one. */
  private async nothingToUpgrade(tx: Tx, agent: Agent, cluster: Cluster): Promise<UnprocessableError> {
    const failedIn = agent.lastUpgradeFailed ? await this.upgrades.lastFailedOf(tx.em, agent.id) : null;
    const targets = [cluster.targetVersion, cluster.webappsTargetVersion && `web apps ${cluster.webappsTargetVersion}`]
      .filter(Boolean)
      .join(' and ');
    const why = failedIn
      ? `its last upgrade (${failedIn.id}, to ${failedIn.packageVersion}) failed, and that was not the cluster's target: retry it (POST /api/v1/upgrades/${failedIn.id}/retry).`
      : 'there is nothing to bring it up to.';
    return new UnprocessableError(
      'NOTHING_TO_UPGRADE',
      `${agent.name} runs ${agent.version}${agent.webappsVersion ? ` (web apps ${agent.webappsVersion})` : ''} and the cluster targets ${targets}: ${why}`,
      {
        version: agent.version,
        targetVersion: cluster.targetVersion,
        webappsTargetVersion: cluster.webappsTargetVersion,
        ...(failedIn ? { upgradeId: failedIn.id } : {}),
      },
    );
  }

  /** Re-runs the data migration of the agent's installed version (reference 000's manual migration tool). */
  async migrate(agentId: string, by: Origin): Promise<MigrationDto> {
    return this.db.transaction(async (tx) => {
      const agent = await this.agents.require(agentId, tx);
      if (agent.upgradeId) {
        throw new ConflictError(
          'AGENT_IN_UPGRADE',
          `${agent.name} is in upgrade ${agent.upgradeId}, which runs the migration itself; run it by hand once the upgrade ended.`,
          { upgradeId: agent.upgradeId },
        );
      }
      if (!agent.remoteUpgrade)
        throw new UnprocessableError(
          'LEGACY_AGENT',
          `${agent.name} cannot run commands remotely (legacy agent): run the migration tool on ${agent.address} by hand.`,
        );
      if (!agent.version)
        throw new UnprocessableError(
          'VERSION_UNKNOWN',
          `${agent.name} has not reported its version: there is no installed version to migrate yet.`,
        );
      const open = (await this.commands.openFor(tx, agent.id)).find((c) => c.type === 'migrate');
      if (open)
        throw new ConflictError(
          'MIGRATION_RUNNING',
          `A migration of ${agent.name} is already queued or running (command ${open.id}).`,
          { commandId: open.id },
        );
      const command = await this.commands.enqueue(tx, {
        agentId: agent.id,
        clusterId: agent.clusterId,
        type: 'migrate',
        payload: { version: agent.version },
        reference: `migrate:${agent.id}`,
      });
      await this.audit.record(tx, by, {
        action: 'agent.migrate',
        target: 'agent',
        targetId: agent.id,
        clusterId: agent.clusterId,
        summary: `queued the data migration of ${agent.version} on agent "${agent.name}" (command ${command.id})`,
      });
      this.logger.log(`migration of ${agent.version} queued for agent ${agent.id}`);
      return { commandId: command.id, agentId: agent.id, version: agent.version, status: command.status };
    });
  }

  async require(id: string, tx?: Tx): Promise<Upgrade> {
    const upgrade = tx ? await this.upgrades.findForUpdate(tx, id) : await this.upgrades.findById(id);
    if (!upgrade) throw new NotFoundError('Upgrade', id);
    return upgrade;
  }

  private async transition(
    id: string,
    allowed: readonly UpgradeStatus[],
    verb: 'pause' | 'resume' | 'cancel' | 'retry',
    by: Origin,
    change: (tx: Tx, upgrade: Upgrade, steps: UpgradeStep[]) => Promise<void>,
  ): Promise<UpgradeDto> {
    const result = await this.db.transaction(async (tx) => {
      await tx.advisoryLock(`upgrade:${id}`);
      const upgrade = await this.require(id, tx);
      if (!allowed.includes(upgrade.status)) {
        throw new ConflictError(
          'UPGRADE_STATE',
          `Upgrade ${id} is ${upgrade.status}; ${verb} applies to an upgrade that is ${allowed.join(' or ')}.`,
          { status: upgrade.status, allowed },
        );
      }
      const steps = await this.upgrades.stepsOf(tx.em, id);
      const before = upgrade.status;
      await change(tx, upgrade, steps);
      await this.audit.record(tx, by, {
        action: `upgrade.${verb}`,
        target: 'upgrade',
        targetId: id,
        clusterId: upgrade.clusterId,
        summary: `${verb}: upgrade to ${upgrade.packageVersion} went from ${before} to ${upgrade.status}`,
      });
      tx.afterCommit(() => this.executor.poke());
      return { upgrade, steps };
    });
    this.logger.log(`upgrade ${id}: ${verb} -> ${result.upgrade.status}`);
    return toUpgradeDto(result.upgrade, result.steps);
  }

  /** Reads what a plan needs in the caller's transaction, resolves the targets and plans. */
  private async compile(tx: Tx, clusterId: string, dto: CreateUpgradeDto): Promise<Compiled> {
    const cluster = await this.clusters.require(clusterId, tx);
    const pkg = await this.packages.require(dto.packageId, tx);
    if (pkg.clusterId !== clusterId) {
      throw new UnprocessableError(
        'PACKAGE_OTHER_CLUSTER',
        `Package ${pkg.id} was uploaded to another cluster; upload it to cluster ${cluster.name} first.`,
        { packageClusterId: pkg.clusterId },
      );
    }
    const all = await this.agents.inClusterForPlanning(tx, clusterId);
    const targets = resolveTargets(dto.target, all);
    const options = resolveOptions(cluster.defaultOptions, dto.options ?? {});
    refuseRollbackWithoutBackup(options, 'options');
    const compiled = plan({
      targets: targets.map(toPlanAgent),
      cluster: all.map(toPlanAgent),
      pkg: { version: pkg.version, kind: pkg.kind },
      policy: dto.policy ?? 'default',
      clusterDefaultPolicy: cluster.defaultPolicy,
      options,
    });
    const working = new Set(
      compiled.steps.filter((s) => s.status === 'pending' && s.kind === 'upgrade').map((s) => s.agentId),
    );
    // The operator's override of fromVersion: not checked, and said so on the plan (and so in the history).
    const ignoring = options.ignoreVersionCheck && !!pkg.prerequisites.fromVersion;
    const prerequisites = checkPrerequisites(
      {
        kind: pkg.kind,
        version: pkg.version,
        prerequisites: ignoring ? { ...pkg.prerequisites, fromVersion: undefined } : pkg.prerequisites,
      },
      targets
        .filter((a) => working.has(a.id))
        .map((a) => ({ id: a.id, name: a.name, version: a.version, facts: a.facts })),
    );
    if (ignoring) {
      compiled.warnings.push({
        code: 'VERSION_CHECK_IGNORED',
        message: `options.ignoreVersionCheck: the package's fromVersion (${pkg.prerequisites.fromVersion}) is not enforced; agents on other versions are upgraded anyway.`,
      });
    }
    const windows = await windowsForPlan(tx, this.upgrades, cluster, pkg.kind, options, all, compiled, {
      now: this.clock.now(),
      scheduledAt: dto.scheduledAt,
    });
    compiled.warnings.push(...windows.warnings, ...budgetAgainstWindows(options, windows.batches));
    compiled.refusals.push(...windows.refusals);
    const use = await this.upgrades.usesOfPackage(tx.em, clusterId, pkg.id);
    return {
      cluster,
      pkg,
      options,
      plan: compiled,
      prerequisites,
      idOf: (key) => stepId(pkg.id, use, key),
      batchWindows: windows.batches,
      signatureRefusal: signatureRefusal(cluster, pkg, await this.signingKeys.keysOf(tx.em, clusterId)),
    };
  }

  /** A package starts one upgrade: auto-upgrade and "upgrade now" reuse the cluster's target package on purpose. */
  private packageRefusal(pkg: Package, origin: UpgradeOrigin): Array<{ code: string; message: string }> {
    if (origin === 'auto-upgrade' || origin === 'upgrade-now' || pkg.status === 'available') return [];
    const holder = pkg.usedByUpgradeId ?? pkg.reservedByUpgradeId;
    return [
      {
        code: pkg.status === 'completed' ? 'PACKAGE_USED' : 'PACKAGE_RESERVED',
        message: `Package ${pkg.id} is ${pkg.status}${holder ? ` by upgrade ${holder}` : ''}; a package starts one upgrade only. Upload a new package for another upgrade.`,
      },
    ];
  }

  private parseSchedule(value: string | undefined, now: Date): Date | null {
    if (!value) return null;
    const at = new Date(value);
    if (at.getTime() < now.getTime() - PAST_SCHEDULE_TOLERANCE_MS) {
      throw new BadInputError(`scheduledAt ${value} is in the past; leave it out to start now.`, [
        { field: 'scheduledAt', problems: ['scheduledAt must not be in the past'] },
      ]);
    }
    return at;
  }
}

/**
 * `{all: true}`, or agents by id, by address and by labels, together (a union: an agent named any
 * way is targeted once). Anything named that is not in the cluster is a 422, and so is a label
 * selector no agent matches; `all` with any of them, or an empty selector, is a 400.
 */
export function resolveTargets(target: CreateUpgradeDto['target'], agents: Agent[]): Agent[] {
  const byIds = target.agentIds ?? [];
  const byAddresses = target.addresses ?? [];
  checkTargetShape(target);
  if (target.all) return agents;
  const ids = new Map(agents.map((a) => [a.id, a]));
  const addresses = new Map(agents.map((a) => [a.address.toLowerCase(), a]));
  const unknownIds = byIds.filter((id) => !ids.has(id));
  const unknownAddresses = byAddresses.filter((a) => !addresses.has(a.toLowerCase()));
  if (unknownIds.length || unknownAddresses.length) {
    const named = [...unknownIds.map((id) => `agent id ${id}`), ...unknownAddresses.map((a) => `address ${a}`)];
    throw new UnprocessableError(
      'UNKNOWN_TARGETS',
      `Not agents of this cluster: ${named.join(', ')}. List the cluster's agents and target those.`,
      { agentIds: unknownIds, addresses: unknownAddresses },
    );
  }
  const chosen = new Map<string, Agent>();
  for (const id of byIds) chosen.set(id, ids.get(id)!);
  for (const address of byAddresses) {
    const agent = addresses.get(address.toLowerCase())!;
    chosen.set(agent.id, agent);
  }
  for (const agent of withLabels(target.labels, agents)) chosen.set(agent.id, agent);
  return [...chosen.values()];
}

/** A target is `{all: true}` or names agents (by ids, addresses, labels), not both and not nothing; labels name one at least. */
function checkTargetShape(target: CreateUpgradeDto['target']): void {
  const names = Boolean(target.agentIds?.length || target.addresses?.length || target.labels);
  if (target.labels && !Object.keys(target.labels).length) {
    throw new BadInputError('target.labels names no label; give at least one, such as {"site": "eu-1"}.', [
      { field: 'target.labels', problems: ['target.labels must hold at least one label'] },
    ]);
  }
  if (target.all && names) {
    throw new BadInputError('target is either {"all": true} or agentIds, addresses and/or labels, not both.', [
      { field: 'target', problems: ['give all, or agentIds/addresses/labels, not both'] },
    ]);
  }
  if (!target.all && !names) {
    throw new BadInputError('target names no agent: give {"all": true}, or agentIds, addresses and/or labels.', [
      { field: 'target', problems: ['target must be {"all": true} or name agentIds, addresses or labels'] },
    ]);
  }
}

/** The agents carrying every one of `labels` (none without labels); a selector no agent matches is a 422 naming it. */
function withLabels(labels: Record<string, string> | undefined, agents: Agent[]): Agent[] {
  if (!labels) return [];
  const matching = agents.filter((a) => matchesLabels(a.labels, labels));
  if (!matching.length) {
    throw new UnprocessableError(
      'NO_AGENT_MATCHES_LABELS',
      `No agent of this cluster has labels ${describeLabels(labels)} (a target by labels takes the agents carrying every one of them); list the cluster's agents to see their labels.`,
      { labels },
    );
  }
  return matching;
}

/** The upgrade fields of an upload with mode=install (form text; target and options as JSON), checked like a request body. */
export async function parseInstallFields(fields: Record<string, string>): Promise<Omit<CreateUpgradeDto, 'packageId'>> {
  const json = (field: string): unknown => {
    if (fields[field] === undefined) return undefined;
    try {
      return JSON.parse(fields[field]);
    } catch {
      throw new BadInputError(
        `${field} must be JSON text, such as ${field === 'target' ? '{"all": true}' : '{"maxParallel": 2}'}.`,
        [{ field, problems: [`${field} must be JSON`] }],
      );
    }
  };
  const raw = Object.fromEntries(
    Object.entries({
      target: json('target') ?? { all: true },
      policy: fields.policy,
      options: json('options'),
      scheduledAt: fields.scheduledAt,
    }).filter(([, v]) => v !== undefined),
  );
  const dto = plainToInstance(InstallFieldsDto, raw);
  const errors = await validate(dto, {
    whitelist: true,
    forbidNonWhitelisted: true,
    validationError: { target: false, value: false },
  });
  if (errors.length) {
    const details = toFieldProblems(errors);
    throw new BadInputError(`Invalid upgrade fields: ${details.flatMap((d) => d.problems).join('; ')}.`, details);
  }
  return dto;
}

/** One agent, one live upgrade: a 409 naming, for each agent, the upgrade that holds it. */
function refuseHeld(held: Agent[], what: string): void {
  if (held.length === 0) return;
  throw new ConflictError(
    'AGENT_IN_UPGRADE',
    `${held.map((a) => `${a.name} is in upgrade ${a.upgradeId}`).join('; ')}: an agent is in one scheduled or running upgrade at a time. ${what}`,
    { agents: held.map((a) => ({ agentId: a.id, name: a.name, upgradeId: a.upgradeId })) },
  );
}

/**
 * Batches that wait for later windows keep the cluster mixed meanwhile: a mixed-version budget
 * shorter than the expected span runs out on the way (docs/rollback.md). Said at plan time.
 */
function budgetAgainstWindows(options: UpgradeOptions, batches: BatchWindow[]): PlanNotice[] {
  const first = batches[0]?.expectedStartAt;
  const last = batches.at(-1)?.expectedEndAt;
  if (options.maxMixedMinutes === undefined || batches.length < 2 || !first || !last) return [];
  const minutes = Math.ceil((last.getTime() - first.getTime()) / 60_000);
  if (minutes <= options.maxMixedMinutes) return [];
  return [
    {
      code: 'BUDGET_SHORTER_THAN_WINDOWS',
      message: `Its batches are expected to run in windows over ${minutes} min, longer than maxMixedMinutes (${options.maxMixedMinutes}): the budget runs out on the way and the upgrade ${options.onBudget === 'rollback' ? 'rolls back (outside any window: rollbacks ignore windows)' : 'pauses'}. Give it a longer budget, or fewer batches.`,
    },
  ];
}

/** A legacy agent cannot upgrade remotely: what to download and install by hand instead. */
function legacyAgent(agent: Agent, packageId: string | null, version: string | null): UnprocessableError {
  const download = packageId ? `download package ${packageId} (GET /api/v1/packages/${packageId}/content), ` : '';
  return new UnprocessableError(
    'LEGACY_AGENT',
    `${agent.name} is a legacy agent and cannot upgrade remotely: ${download}install ${version ?? 'the target version'} on ${agent.address} by hand, then pair it again with a new pairing key (POST /api/v1/agents/${agent.id}/pairing-key).`,
    { packageId, version, downloadPath: packageId ? `/api/v1/packages/${packageId}/content` : null },
  );
}

/** What refuses an upgrade before anything is locked: its package is used (409), the plan refuses, or prerequisites fail (422). */
function refuseUnplannable(compiled: Compiled, [packageRefusal]: Array<{ code: string; message: string }>): void {
  const { plan: p, pkg, prerequisites } = compiled;
  if (packageRefusal)
    throw new ConflictError(packageRefusal.code, packageRefusal.message, {
      status: pkg.status,
      upgradeId: pkg.usedByUpgradeId ?? pkg.reservedByUpgradeId,
    });
  if (compiled.signatureRefusal)
    throw new UnprocessableError(compiled.signatureRefusal.code, compiled.signatureRefusal.message, {
      packageId: pkg.id,
      signingKey: pkg.signingKeyName,
    });
  if (p.refusals.length) {
    throw new UnprocessableError('UPGRADE_REFUSED', p.refusals.map((r) => r.message).join(' '), {
      refusals: p.refusals,
      warnings: p.warnings,
    });
  }
  if (prerequisites.failures.length) {
    const n = new Set(prerequisites.failures.map((f) => f.agentId)).size;
    throw new UnprocessableError(
      'PREREQUISITES_UNMET',
      `${n === 1 ? '1 targeted agent fails' : `${n} targeted agents fail`} the package's prerequisites; see details for each check.`,
      prerequisites,
    );
  }
}

/**
 * Whether the cluster's agents would install the package's signature (docs/packages.md, "Signing"):
 * they refuse an unsigned package where signatures are required, and a signature by a key no longer
 * registered. Said before the upgrade is made rather than by every agent failing its step.
 */
export function signatureRefusal(
  cluster: Pick<Cluster, 'name' | 'requireSignedPackages'>,
  pkg: Pick<Package, 'id' | 'sha256' | 'signature' | 'signingKeyName'>,
  keys: Array<{ publicKey: string }>,
): { code: string; message: string } | null {
  if (!pkg.signature) {
    return cluster.requireSignedPackages
      ? {
          code: 'PACKAGE_UNSIGNED',
          message: `Cluster ${cluster.name} requires signed packages and package ${pkg.id} was uploaded unsigned (before signatures were required): its agents would refuse it. Upload it again with its signature.`,
        }
      : null;
  }
  // By key material, as agents check it: a key deleted and registered again verifies again.
  if (!findSigningKey(pkg.sha256, pkg.signature, keys))
    return {
      code: 'PACKAGE_KEY_REMOVED',
      message: `No signing key registered in cluster ${cluster.name} verifies the signature of package ${pkg.id} (signed by key "${pkg.signingKeyName}", since deleted): its agents would refuse it. Register that key again, or upload the package again with a signature by a registered key.`,
    };
  return null;
}

/** An upgrade in an audit summary: "an upgrade of 3 agent(s) to 2.1.0 (backup-first), running". */
function describeUpgrade(upgrade: Upgrade, agents: number): string {
  const when =
    upgrade.scheduledAt && upgrade.status === 'scheduled'
      ? `scheduled for ${upgrade.scheduledAt.toISOString()}`
      : upgrade.status;
  return `an upgrade of ${agents} agent(s) to ${upgrade.packageKind === 'webapps' ? 'web apps ' : ''}${upgrade.packageVersion} (${upgrade.resolvedPolicy}), ${when}`;
}

/** The upgrade row: running now, or scheduled for later. */
function newUpgrade(
  clusterId: string,
  dto: CreateUpgradeDto,
  origin: UpgradeOrigin,
  by: Origin,
  { plan: p, pkg, options, prerequisites }: Compiled,
  scheduledAt: Date | null,
  now: Date,
): Upgrade {
  const startsNow = !scheduledAt || scheduledAt <= now;
  return Object.assign(new Upgrade(), {
    id: randomUUID(),
    clusterId,
    packageId: pkg.id,
    packageVersion: pkg.version,
    packageKind: pkg.kind,
    status: startsNow ? 'running' : 'scheduled',
    origin,
    target: upgradeTarget(dto.target),
    policy: dto.policy ?? 'default',
    resolvedPolicy: p.resolvedPolicy,
    options,
    units: p.units,
    failureLimit: Number.isFinite(p.failureLimit) ? p.failureLimit : null,
    canaryPending: options.canary > 0 && p.batches > 1,
    warnings: [
      ...p.warnings,
      ...prerequisites.warnings.map((w) => ({
        code: 'PREREQUISITE_UNKNOWN',
        message: `${w.agentName}: ${w.check} not checked (${w.reason}); checked again before it starts.`,
        agentIds: [w.agentId],
      })),
    ],
    priorState: null,
    rollbackRound: 0,
    mixedSince: null,
    budgetFrom: null,
    percent: 0,
    reason: null,
    createdByTokenId: by.actor.kind === 'user' ? by.actor.tokenId : null,
    createdByName: by.actor.kind === 'user' ? by.actor.name : null,
    scheduledAt,
    startedAt: startsNow ? now : null,
    finishedAt: null,
    createdAt: now,
    updatedAt: now,
  } satisfies Upgrade);
}

/** The target as stored: `{all: true}`, or the ids, addresses and labels asked for. */
function upgradeTarget(target: CreateUpgradeDto['target']): Upgrade['target'] {
  if (target.all) return { all: true };
  return {
    ...(target.agentIds ? { agentIds: target.agentIds } : {}),
    ...(target.addresses ? { addresses: target.addresses } : {}),
    ...(target.labels ? { labels: { ...target.labels } } : {}),
  };
}

/** The plan's steps as rows; `idOf` turns the plan's step keys into ids. */
function buildSteps(p: Plan, upgradeId: string | null, idOf: (key: string) => string, now: Date): UpgradeStep[] {
  return p.steps.map((s, ordinal) =>
    plannedStep({
      id: idOf(s.key),
      upgradeId: upgradeId ?? '',
      ordinal,
      kind: s.kind,
      agentId: s.agentId,
      fromAgentId: s.fromAgentId,
      failoverGroup: s.failoverGroup,
      unit: s.unit,
      round: 0,
      batch: s.batch,
      dependsOn: s.dependsOn.map(idOf),
      runWhen: s.runWhen,
      status: s.status,
      note: s.note,
      endedAt: s.status === 'pending' || upgradeId === null ? null : now,
      updatedAt: now,
    }),
  );
}
