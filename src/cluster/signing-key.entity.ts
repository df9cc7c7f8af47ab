import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { TimestampColumn } from '../common/columns';

/**
 * A public key trusted to sign a cluster's packages (Ed25519, src/protocol/package-signing.ts).
 * The server checks uploads against a cluster's keys, and sends them to its agents, which check
 * what they download against them too (docs/packages.md, "Signing").
 */
@Entity('signing_keys')
@Index('uq_signing_keys_cluster_name', ['clusterId', 'name'], { unique: true })
export class SigningKey {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ type: 'varchar', length: 36 })
  clusterId: string;

  @Column({ type: 'varchar', length: 100 })
  name: string;

  /** PEM, SPKI, as node:crypto exports it (normalised from what was registered). */
  @Column({ type: 'varchar', length: 400 })
  publicKey: string;

  /** sha256 of the raw 32-byte public key, hex. */
  @Column({ type: 'varchar', length: 64 })
  fingerprint: string;

  @TimestampColumn()
  createdAt: Date;

  @Column({ type: 'varchar', length: 36, nullable: true })
  createdByTokenId: string | null;
}
