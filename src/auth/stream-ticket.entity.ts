import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { TimestampColumn } from '../common/columns';

/**
 * A short-lived, single-use ticket for one event stream, for browsers' EventSource, which cannot
 * send an Authorization header. Long-lived tokens never go in URLs; these expire in a minute.
 */
@Entity('stream_tickets')
export class StreamTicket {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Index('uq_stream_tickets_secret_hash', { unique: true })
  @Column({ type: 'varchar', length: 64 })
  secretHash: string;

  /** `cluster` or `upgrade`, and the id of the one stream this ticket opens. */
  @Column({ type: 'varchar', length: 16 })
  scope: string;

  @Column({ type: 'varchar', length: 36 })
  scopeId: string;

  @Column({ type: 'varchar', length: 36 })
  issuedByTokenId: string;

  @Index('idx_stream_tickets_expires_at')
  @TimestampColumn()
  expiresAt: Date;

  @TimestampColumn({ nullable: true })
  usedAt: Date | null;

  @TimestampColumn()
  createdAt: Date;
}
