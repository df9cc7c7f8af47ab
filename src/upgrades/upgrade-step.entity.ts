import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { JsonColumn, TimestampColumn } from '../common/columns';
import type { RunWhen, StepKind } from '../policies/planner';

export const STEP_STATUSES = [
  'pending',
  'waiting',
  'running',
  'succeeded',
  'failed',
  'rolled-back',
  'skipped',
  'manual',
  'cancelled',
  'missed',
] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];
export const ENDED_STEP_STATUSES: readonly StepStatus[] = [
  'succeeded',
  'failed',
  'rolled-back',
  'skipped',
  'manual',
  'cancelled',
  'missed',
];
/** Real failures: the agent tried and did not make it. `missed` (offline or busy when its turn came) is not one. */
export const FAILED_STEP_STATUSES: readonly StepStatus[] = ['failed', 'rolled-back'];
/** Ends that leave the step's work undone: what a retry runs again. */
export const RETRYABLE_STEP_STATUSES: readonly StepStatus[] = ['failed', 'rolled-back', 'cancelled', 'missed'];

/**
 * What a waiting step waits for: its agent to come online, to be idle, to fetch the command queued
 * for it (`pickup`), a switchover's gate, a serving pair member's peer to be able to take over
 * (`peer`), the steps it depends on, or a maintenance window long enough for its unit (`window`,
 * with options.respectWindows; windowOpensAt says when).
 */
export const WAIT_REASONS = ['online', 'idle', 'pickup', 'gate', 'peer', 'dependencies', 'window'] as const;
export type WaitReason = (typeof WAIT_REASONS)[number];

/** One plan step and its execution record (a "task": what runs on one agent, or one switchover). */
@Entity('upgrade_steps')
@Index('idx_upgrade_steps_upgrade', ['upgradeId', 'ordinal'])
@Index('idx_upgrade_steps_agent_status', ['agentId', 'status'])
// What every agent's report reads: its steps in the upgrade, and the upgrade's percent (covering).
@Index('idx_upgrade_steps_upgrade_agent', ['upgradeId', 'agentId'])
@Index('idx_upgrade_steps_upgrade_status', ['upgradeId', 'round', 'status', 'percent'])
// The windows' predictions read a cluster's latest steps that succeeded (recentStepDurations).
@Index('idx_upgrade_steps_status_ended', ['status', 'endedAt'])
export class UpgradeStep {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ type: 'varchar', length: 36 })
  upgradeId: string;

  /** Position in the plan, for a stable order. */
  @Column({ type: 'integer' })
  ordinal: number;

  @Column({ type: 'varchar', length: 16 })
  kind: StepKind;

  @Column({ type: 'varchar', length: 36 })
  agentId: string;

  /** For a switchover or switchback: the member handing over. */
  @Column({ type: 'varchar', length: 36, nullable: true })
  fromAgentId: string | null;

  @Column({ type: 'varchar', length: 100, nullable: true })
  failoverGroup: string | null;

  @Column({ type: 'integer' })
  unit: number;

  /** 0: the upgrade's own steps; n: the steps of its n-th rollback (docs/rollback.md). */
  @Column({ type: 'integer', default: 0 })
  round: number;

  @Column({ type: 'integer' })
  batch: number;

  @JsonColumn()
  dependsOn: string[];

  @Column({ type: 'varchar', length: 16 })
  runWhen: RunWhen;

  @Column({ type: 'varchar', length: 16 })
  status: StepStatus;

  @Column({ type: 'varchar', length: 16, nullable: true })
  waitingFor: WaitReason | null;

  /** When the current wait began: the idle, offline and gate timeouts count from here. */
  @TimestampColumn({ nullable: true })
  waitingSince: Date | null;

  /** Waiting for `window`: when the maintenance window it waits for opens (stale otherwise). */
  @TimestampColumn({ nullable: true })
  windowOpensAt: Date | null;

  @Column({ type: 'varchar', length: 32, nullable: true })
  phase: string | null;

  /** When the current phase began: phaseTimeoutS counts from here. */
  @TimestampColumn({ nullable: true })
  phaseStartedAt: Date | null;

  @Column({ type: 'integer', default: 0 })
  percent: number;

  @Column({ type: 'integer', default: 0 })
  attempts: number;

  /** The command of the current attempt; reports on it move this step. */
  @Column({ type: 'varchar', length: 36, nullable: true })
  commandId: string | null;

  @Column({ type: 'varchar', length: 500, nullable: true })
  note: string | null;

  @Column({ type: 'varchar', length: 2000, nullable: true })
  error: string | null;

  /** The agent's last progress message ("downloaded 50%"). */
  @Column({ type: 'varchar', length: 500, nullable: true })
  message: string | null;

  /** What the agent reported with its end: options it did not apply, reboots, services. */
  @JsonColumn({ nullable: true })
  agentNotes: string[] | null;

  /** An upgrade step's: the backup its agent reported taking, which a rollback restores. */
  @Column({ type: 'varchar', length: 100, nullable: true })
  backup: string | null;

  /**
   * A rollback round's step: the version (of what the package installs) its agent goes back to, or,
   * for a switchover, runs when it takes over. Null elsewhere, and for web apps the agent had none of.
   */
  @Column({ type: 'varchar', length: 64, nullable: true })
  toVersion: string | null;

  @TimestampColumn({ nullable: true })
  startedAt: Date | null;

  @TimestampColumn({ nullable: true })
  endedAt: Date | null;

  @TimestampColumn()
  updatedAt: Date;
}

/** A step's columns that a plan sets; the others (how it runs) start empty (plannedStep). */
export type PlannedStepColumns = Pick<
  UpgradeStep,
  | 'id'
  | 'upgradeId'
  | 'ordinal'
  | 'kind'
  | 'agentId'
  | 'fromAgentId'
  | 'failoverGroup'
  | 'unit'
  | 'round'
  | 'batch'
  | 'dependsOn'
  | 'runWhen'
  | 'status'
  | 'note'
  | 'endedAt'
  | 'updatedAt'
> &
  Partial<Pick<UpgradeStep, 'backup' | 'toVersion'>>;

/** A step row as planned, not run yet: an upgrade's plan (buildSteps) or a rollback round's (rollbackRows). */
export function plannedStep(columns: PlannedStepColumns): UpgradeStep {
  return Object.assign(new UpgradeStep(), {
    waitingFor: null,
    waitingSince: null,
    windowOpensAt: null,
    phase: null,
    phaseStartedAt: null,
    percent: 0,
    attempts: 0,
    commandId: null,
    error: null,
    message: null,
    agentNotes: null,
    backup: null,
    toVersion: null,
    startedAt: null,
    ...columns,
  } satisfies UpgradeStep);
}
