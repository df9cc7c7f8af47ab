import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { JsonColumn, TimestampColumn } from '../common/columns';
import type { MaintenanceWindow } from '../policies/maintenance-windows';
import type { ConcretePolicy, UpgradeOptions } from '../policies/upgrade-options';

/** A named set of agents that must run one version. */
@Entity('clusters')
export class Cluster {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Index('uq_clusters_name', { unique: true })
  @Column({ type: 'varchar', length: 100 })
  name: string;

  @Column({ type: 'varchar', length: 100 })
  product: string;

  /** The version every agent should run; set when an upgrade of all agents succeeds. */
  @Column({ type: 'varchar', length: 64, nullable: true })
  targetVersion: string | null;

  /** The package that set targetVersion: auto-upgrade brings late agents up with it. */
  @Column({ type: 'varchar', length: 36, nullable: true })
  targetPackageId: string | null;

  /**
   * The web-apps version every agent should run, set by an upgrade of all agents with a `webapps`
   * package; a full package replaces any earlier web-apps upgrade, so a new core target clears it.
   */
  @Column({ type: 'varchar', length: 64, nullable: true })
  webappsTargetVersion: string | null;

  @Column({ type: 'varchar', length: 36, nullable: true })
  webappsTargetPackageId: string | null;

  @Column({ type: 'varchar', length: 32 })
  defaultPolicy: ConcretePolicy;

  /** Complete options (every field present); what an upgrade's own options are filled from. */
  @JsonColumn()
  defaultOptions: UpgradeOptions;

  /**
   * When its agents may be upgraded (with options.respectWindows): recurring windows, each agent's
   * own list replacing it (maintenance-windows.ts). Null or empty: none, any time.
   */
  @JsonColumn({ nullable: true })
  windows: MaintenanceWindow[] | null;

  /**
   * Uploads must carry a signature by one of the cluster's signing keys, and agents refuse unsigned
   * packages. Never written by a save of the whole row (`update: false`): a save from a stale read
   * would put an old policy back; ClusterRepository.setSigningRequirement writes it.
   */
  @Column({ type: 'boolean', default: false, update: false })
  requireSignedPackages: boolean;

  /**
   * Bumped on every change of the signing keys or requireSignedPackages: agents send back the one
   * they hold, and a heartbeat carries the policy only when theirs is out of date. Only ever
   * incremented in SQL (`update: false`), never saved from a read that may be stale.
   */
  @Column({ type: 'integer', default: 0, update: false })
  signingRevision: number;

  @TimestampColumn()
  createdAt: Date;

  @TimestampColumn()
  updatedAt: Date;
}

/** A cluster's targets: the versions it aims for and the packages that set them. */
export type ClusterTargets = Pick<
  Cluster,
  'targetVersion' | 'targetPackageId' | 'webappsTargetVersion' | 'webappsTargetPackageId'
>;
