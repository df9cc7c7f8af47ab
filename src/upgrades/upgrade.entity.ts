import type { ClusterTargets } from '../cluster/cluster.entity';
import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { JsonColumn, TimestampColumn } from '../common/columns';
import type { PlanNotice } from '../policies/planner';
import type { ConcretePolicy, FailoverPolicy, UpgradeOptions } from '../policies/upgrade-options';

export const UPGRADE_STATUSES = [
  'scheduled',
  'running',
  'paused',
  'succeeded',
  'failed',
  'completed-with-errors',
  'cancelled',
  'rolling-back',
  'rolled-back',
  'rollback-failed',
] as const;
export type UpgradeStatus = (typeof UPGRADE_STATUSES)[number];
/** Statuses in which an upgrade holds its agents. */
export const LIVE_UPGRADE_STATUSES: readonly UpgradeStatus[] = ['scheduled', 'running', 'paused', 'rolling-back'];

/**
 * An agent of the upgrade as it was before the upgrade changed anything: what a rollback brings it
 * back to (docs/rollback.md).
 */
export interface PriorAgentState {
  version: string | null;
  webappsVersion: string | null;
  active: boolean;
  failoverGroup: string | null;
}

/** What a rollback brings back: the agents and the cluster's targets as they were before the upgrade. */
export interface UpgradePriorState {
  agents: Record<string, PriorAgentState>;
  /** The cluster's targets before the upgrade: a rollback sets them back. */
  targets: ClusterTargets;
}

/** How the upgrade came to be: an operator's request, an upload with mode=install, auto-upgrade, or "upgrade now". */
export const UPGRADE_ORIGINS = ['request', 'install', 'auto-upgrade', 'upgrade-now'] as const;
export type UpgradeOrigin = (typeof UPGRADE_ORIGINS)[number];

export interface UpgradeTarget {
  all?: boolean;
  agentIds?: string[];
  addresses?: string[];
  /** The agents whose labels included all of these when it was planned. */
  labels?: Record<string, string>;
}

/** One use of one package on a set of agents of one cluster, under one policy and one set of options. */
@Entity('upgrades')
@Index('idx_upgrades_cluster_created', ['clusterId', 'createdAt'])
@Index('idx_upgrades_status', ['status'])
export class Upgrade {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ type: 'varchar', length: 36 })
  clusterId: string;

  @Column({ type: 'varchar', length: 36 })
  packageId: string;

  /** The package's version and kind, kept here so the executor needs no other module's rows. */
  @Column({ type: 'varchar', length: 64 })
  packageVersion: string;

  @Column({ type: 'varchar', length: 16 })
  packageKind: 'full' | 'webapps';

  @Column({ type: 'varchar', length: 24 })
  status: UpgradeStatus;

  @Column({ type: 'varchar', length: 16 })
  origin: UpgradeOrigin;

  @JsonColumn()
  target: UpgradeTarget;

  /** The policy asked for (may be `default`) and the one it resolved to when planned. */
  @Column({ type: 'varchar', length: 32 })
  policy: FailoverPolicy;

  @Column({ type: 'varchar', length: 32 })
  resolvedPolicy: ConcretePolicy;

  /** Complete options: the request's, filled from the cluster's defaults. */
  @JsonColumn()
  options: UpgradeOptions;

  /** Units (pairs count once) with remote work, and the failed units after which no new one starts. */
  @Column({ type: 'integer' })
  units: number;

  /** null = no limit. */
  @Column({ type: 'integer', nullable: true })
  failureLimit: number | null;

  /** Canary units are planned: the upgrade pauses once they ended, until a resume. */
  @Column({ type: 'boolean', default: false })
  canaryPending: boolean;

  @JsonColumn()
  warnings: PlanNotice[];

  /**
   * The agents it works on and their pair peers, by id, as they were when it started (versions,
   * which member served), and the cluster's targets. Null for upgrades from before rollbacks, which cannot be rolled back.
   */
  @JsonColumn({ nullable: true })
  priorState: UpgradePriorState | null;

  /** 0 until it is rolled back; then which rollback (its steps carry the same `round`). */
  @Column({ type: 'integer', default: 0 })
  rollbackRound: number;

  /** Since when, during this upgrade, the cluster has run more than one version (the mixed-version budget). */
  @TimestampColumn({ nullable: true })
  mixedSince: Date | null;

  /** Where the mixed-version budget counts from: the last resume or retry, which gives it anew (null: the start). */
  @TimestampColumn({ nullable: true })
  budgetFrom: Date | null;

  @Column({ type: 'integer', default: 0 })
  percent: number;

  /** Why it is paused, failed or cancelled, in words. */
  @Column({ type: 'varchar', length: 500, nullable: true })
  reason: string | null;

  @Column({ type: 'varchar', length: 36, nullable: true })
  createdByTokenId: string | null;

  /** The name of that token when the upgrade was created (shown as createdBy); null for Lockstep's own (auto-upgrade). */
  @Column({ type: 'varchar', length: 100, nullable: true })
  createdByName: string | null;

  @TimestampColumn({ nullable: true })
  scheduledAt: Date | null;

  @TimestampColumn({ nullable: true })
  startedAt: Date | null;

  @TimestampColumn({ nullable: true })
  finishedAt: Date | null;

  @TimestampColumn()
  createdAt: Date;

  @TimestampColumn()
  updatedAt: Date;
}
