import { actorName, type Origin } from '../audit/origin';
import { Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock';
import { ConflictError, NotFoundError, UnprocessableError } from '../common/errors';
import { Database, Tx } from '../database/database';
import type { RollbackPlan } from '../policies/rollback-planner';
import { RollbackPreviewDto, toStepDto, toUpgradeDto, UpgradeDto } from './dto/upgrade.dto';
import { RollbackPlanning, rollbackRows } from './rollback-planning';
import { Upgrade, type UpgradePriorState } from './upgrade.entity';
import { UpgradeExecutor } from './upgrade-executor';
import { UpgradeRepository } from './upgrade.repository';
import type { UpgradeStep } from './upgrade-step.entity';

/**
 * An operator's rollback of an upgrade (docs/rollback.md): the preview, and the request, which
 * stops what has not started, then lets the executor bring every agent the upgrade changed back.
 */
@Injectable()
export class RollbacksService {
  private readonly logger = new Logger(RollbacksService.name);

  constructor(
    private readonly db: Database,
    private readonly upgrades: UpgradeRepository,
    private readonly planning: RollbackPlanning,
    private readonly executor: UpgradeExecutor,
    private readonly clock: Clock,
  ) {}

  /** What a rollback would do now; nothing is written. */
  preview(id: string): Promise<RollbackPreviewDto> {
    return this.db.transaction(async (tx) => {
      const { upgrade, prior } = await this.rollbackable(tx, id);
      const plan = await this.planning.plan(tx, upgrade, prior, await this.upgrades.stepsOf(tx.em, id));
      const rows = rollbackRows(plan.steps, upgrade, 0, this.clock.now(), (key) => key);
      return {
        upgradeId: upgrade.id,
        status: upgrade.status,
        steps: rows.map(toStepDto),
        units: plan.units,
        batches: plan.batches,
        notes: plan.notes,
        refusals: plan.refusals,
      };
    });
  }

  /**
   * Rolls the upgrade back: refused (422) when an agent cannot be brought back, before anything
   * changes. A live upgrade's steps that have not started are cancelled; the rollback's steps start
   * once those running ended.
   */
  async rollBack(id: string, by: Origin): Promise<UpgradeDto> {
    const { upgrade, steps } = await this.db.transaction(async (tx) => {
      await tx.advisoryLock(`upgrade:${id}`);
      const { upgrade, prior } = await this.rollbackable(tx, id);
      const steps = await this.upgrades.stepsOf(tx.em, id);
      const plan = await this.planning.plan(tx, upgrade, prior, steps);
      refuseUnplannable(upgrade, plan, steps);
      await this.planning.begin(tx, upgrade, steps, `rolled back by ${actorName(by.actor)}`, by);
      tx.afterCommit(() => this.executor.poke());
      return { upgrade, steps };
    });
    this.logger.log(`upgrade ${id}: rollback -> ${upgrade.status}`);
    return toUpgradeDto(upgrade, steps);
  }

  /** The upgrade, locked, if it can be rolled back at all; else why not (404, 409). */
  private async rollbackable(tx: Tx, id: string): Promise<{ upgrade: Upgrade; prior: UpgradePriorState }> {
    const upgrade = await this.upgrades.findForUpdate(tx, id);
    if (!upgrade) throw new NotFoundError('Upgrade', id);
    const refuse = (code: string, message: string) =>
      new ConflictError(code, `Upgrade ${id} is ${upgrade.status}: ${message}`, { status: upgrade.status });
    if (upgrade.status === 'rolling-back') throw refuse('ROLLBACK_RUNNING', 'its rollback is under way; watch it.');
    if (upgrade.status === 'rolled-back') throw refuse('ROLLED_BACK', 'it was rolled back already.');
    if (upgrade.startedAt === null)
      throw refuse('UPGRADE_NEVER_STARTED', 'it never started and changed nothing; cancel it instead.');
    if (!upgrade.priorState)
      throw refuse(
        'ROLLBACK_UNAVAILABLE',
        'it was created before Lockstep recorded what upgrades change (docs/rollback.md), so it cannot be rolled back; upgrade to the old version with its package instead.',
      );
    return { upgrade, prior: upgrade.priorState };
  }
}

/** 422 when an agent cannot be brought back; 409 when there is nothing to bring back. */
function refuseUnplannable(upgrade: Upgrade, plan: RollbackPlan, steps: UpgradeStep[]): void {
  if (plan.refusals.length)
    throw new UnprocessableError(
      'ROLLBACK_REFUSED',
      `Upgrade ${upgrade.id} cannot be rolled back: ${plan.refusals.map((r) => r.message).join('; ')}.`,
      { refusals: plan.refusals },
    );
  const running = steps.some((s) => s.status === 'running' || (s.status === 'waiting' && s.waitingFor === 'pickup'));
  if (plan.steps.length === 0 && !running)
    throw new ConflictError(
      'NOTHING_TO_ROLL_BACK',
      `Upgrade ${upgrade.id} left every agent as it was (each runs what it ran before, each pair's roles are as they were): there is nothing to roll back.`,
      { status: upgrade.status, notes: plan.notes },
    );
}
