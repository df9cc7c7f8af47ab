import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { JsonColumn, TimestampColumn } from '../common/columns';
import type { AgentFacts, AgentRole, AgentState, VersionStatus } from './agent-state';
import type { AgentLabels } from './labels';
import type { MaintenanceWindow } from '../policies/maintenance-windows';

/**
 * One installed instance of the product on a host. `state` and `versionStatus` are derived from the
 * other columns by agent-state.ts and stored on every write, so lists filter on them with an index.
 */
@Entity('agents')
@Index('uq_agents_cluster_address', ['clusterId', 'address'], { unique: true })
@Index('uq_agents_cluster_name', ['clusterId', 'name'], { unique: true })
// NULL groups never collide, so this only limits pairs: one main and one backup per group.
@Index('uq_agents_group_role', ['clusterId', 'failoverGroup', 'role'], { unique: true })
@Index('idx_agents_cluster_state', ['clusterId', 'state'])
@Index('idx_agents_liveness', ['online', 'lastSeenAt'])
// The versions a cluster's agents run, without reading their rows (AgentRepository.distinctVersions).
@Index('idx_agents_cluster_version', ['clusterId', 'version'])
// A cluster's counts by version status and by web-apps version (GET /clusters, the metrics) read
// the index instead of every agent row (bench/cluster-counts).
@Index('idx_agents_cluster_version_status', ['clusterId', 'versionStatus'])
@Index('idx_agents_cluster_webapps', ['clusterId', 'webappsVersion'])
export class Agent {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ type: 'varchar', length: 36 })
  clusterId: string;

  @Column({ type: 'varchar', length: 100 })
  name: string;

  /** Host name or IP address, unique in the cluster. */
  @Column({ type: 'varchar', length: 253 })
  address: string;

  @Column({ type: 'varchar', length: 16 })
  role: AgentRole;

  @Column({ type: 'varchar', length: 100, nullable: true })
  failoverGroup: string | null;

  /** In a pair, the member serving now; a standalone agent is always active. */
  @Column({ type: 'boolean' })
  active: boolean;

  @Column({ type: 'varchar', length: 64, nullable: true })
  version: string | null;

  @Column({ type: 'varchar', length: 64, nullable: true })
  webappsVersion: string | null;

  @Column({ type: 'boolean', default: false })
  busy: boolean;

  @JsonColumn({ nullable: true })
  facts: AgentFacts | null;

  /**
   * What the operator says about the agent ({"site": "eu-1", "tier": "db"}), set at registration or
   * by PATCH; lists filter on it and upgrades target by it (labels.ts has the rules).
   */
  @JsonColumn({ default: '{}' })
  labels: AgentLabels;

  /**
   * Its own maintenance windows, which replace its cluster's (an empty list: none, any time); null:
   * its cluster's (maintenance-windows.ts).
   */
  @JsonColumn({ nullable: true })
  windows: MaintenanceWindow[] | null;

  /** False for legacy agents that cannot upgrade remotely: plans list them as manual steps. */
  @Column({ type: 'boolean', default: true })
  remoteUpgrade: boolean;

  @Column({ type: 'boolean', default: true })
  autoUpgrade: boolean;

  @Index('uq_agents_pairing_key', { unique: true })
  @Column({ type: 'varchar', length: 64, nullable: true })
  pairingKeyHash: string | null;

  @TimestampColumn({ nullable: true })
  pairingKeyExpiresAt: Date | null;

  @TimestampColumn({ nullable: true })
  pairingKeyUsedAt: Date | null;

  @TimestampColumn({ nullable: true })
  pairedAt: Date | null;

  @TimestampColumn({ nullable: true })
  lastSeenAt: Date | null;

  /** False once HEARTBEAT_TIMEOUT_S passed without a heartbeat (set by the offline sweep). */
  @Column({ type: 'boolean', default: false })
  online: boolean;

  /** Removal asked while busy: the agent goes when it next reports idle. */
  @TimestampColumn({ nullable: true })
  removalRequestedAt: Date | null;

  /** The scheduled or running upgrade that holds this agent; at most one. */
  @Index('idx_agents_upgrade')
  @Column({ type: 'varchar', length: 36, nullable: true })
  upgradeId: string | null;

  /** The agent must start no work of its own (an upgrade of it is under way or waiting for it). */
  @Column({ type: 'boolean', default: false })
  hold: boolean;

  /** An upgrade step of this agent is running now. */
  @Column({ type: 'boolean', default: false })
  upgrading: boolean;

  /** Its last upgrade failed (retry, or "upgrade now"). */
  @Column({ type: 'boolean', default: false })
  lastUpgradeFailed: boolean;

  /**
   * Why auto-upgrade leaves this agent alone for now, in words (left behind by a cancel or the
   * failure threshold, its last attempt missed or was refused, its pair cannot hand over); null = free.
   */
  @Column({ type: 'varchar', length: 500, nullable: true })
  autoUpgradeBlocked: string | null;

  /** When auto-upgrade may try again (a back-off); null with a reason = not until someone acts. */
  @TimestampColumn({ nullable: true })
  autoUpgradeRetryAt: Date | null;

  /** Auto-upgrade attempts in a row that did not bring it to the target: the back-off grows with them. */
  @Column({ type: 'integer', default: 0 })
  autoUpgradeAttempts: number;

  @Column({ type: 'varchar', length: 16 })
  state: AgentState;

  @Column({ type: 'varchar', length: 16 })
  versionStatus: VersionStatus;

  @TimestampColumn()
  createdAt: Date;

  @TimestampColumn()
  updatedAt: Date;
}
