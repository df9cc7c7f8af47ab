import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { JsonColumn, TimestampColumn } from '../common/columns';
import type { PackageKind } from './manifest';
import type { Prerequisites, PrerequisiteWarning } from './prerequisites';

export const PACKAGE_STATUSES = ['available', 'reserved', 'completed'] as const;
export type PackageStatus = (typeof PACKAGE_STATUSES)[number];

/** An uploaded package of one cluster. Completed packages stay, as history of what was installed. */
@Entity('packages')
@Index('uq_packages_cluster_sha256', ['clusterId', 'sha256'], { unique: true })
@Index('idx_packages_cluster_uploaded', ['clusterId', 'uploadedAt'])
export class Package {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ type: 'varchar', length: 36 })
  clusterId: string;

  @Column({ type: 'varchar', length: 100 })
  product: string;

  @Column({ type: 'varchar', length: 64 })
  version: string;

  @Column({ type: 'varchar', length: 16 })
  kind: PackageKind;

  @Column({ type: 'varchar', length: 16 })
  status: PackageStatus;

  @Column({ type: 'varchar', length: 64 })
  sha256: string;

  @Column({ type: 'bigint', transformer: { to: (v: number) => v, from: (v: string | number) => Number(v) } })
  size: number;

  @JsonColumn()
  prerequisites: Prerequisites;

  @Column({ type: 'varchar', length: 200, nullable: true })
  migration: string | null;

  @Column({ type: 'varchar', length: 4000, nullable: true })
  notes: string | null;

  /** Agents that could not be checked when it was uploaded (unknown version or facts). */
  @JsonColumn()
  warnings: PrerequisiteWarning[];

  @Column({ type: 'varchar', length: 36, nullable: true })
  uploadedByTokenId: string | null;

  /** The name of that token at upload (shown as uploadedBy). */
  @Column({ type: 'varchar', length: 100, nullable: true })
  uploadedByName: string | null;

  @TimestampColumn()
  uploadedAt: Date;

  @Column({ type: 'varchar', length: 36, nullable: true })
  reservedByUpgradeId: string | null;

  @TimestampColumn({ nullable: true })
  completedAt: Date | null;

  @Column({ type: 'varchar', length: 36, nullable: true })
  usedByUpgradeId: string | null;

  /** The Ed25519 signature it was uploaded with (base64), checked against a signing key of its cluster; null: unsigned. */
  @Column({ type: 'varchar', length: 100, nullable: true })
  signature: string | null;

  /** The signing key that verified the signature, and its name then (the key may be deleted later). */
  @Column({ type: 'varchar', length: 36, nullable: true })
  signingKeyId: string | null;

  @Column({ type: 'varchar', length: 100, nullable: true })
  signingKeyName: string | null;
}
