import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import { TimestampColumn } from '../common/columns';

export const ACTOR_KINDS = ['user', 'agent', 'system', 'anonymous'] as const;
export type ActorKind = (typeof ACTOR_KINDS)[number];

/** ok: the change was made; refused: a 4xx, nothing changed; failed: a 5xx, nothing changed. */
export const AUDIT_OUTCOMES = ['ok', 'refused', 'failed'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/**
 * One state-changing call, or one change Lockstep made by itself: append-only, written in the
 * transaction of the change it records (refusals in their own). Never holds a request body, a
 * token or a key (docs/audit.md).
 */
@Entity('audit_records')
@Index('idx_audit_records_created', ['createdAt', 'id'])
@Index('idx_audit_records_cluster_created', ['clusterId', 'createdAt'])
export class AuditRecord {
  /** Increasing: newest first is id order. */
  @PrimaryGeneratedColumn()
  id: number;

  @TimestampColumn()
  createdAt: Date;

  @Column({ type: 'varchar', length: 10 })
  actorKind: ActorKind;

  /** The API token (user) or agent token that made the call; null for system and anonymous. */
  @Index('idx_audit_records_actor_token')
  @Column({ type: 'varchar', length: 36, nullable: true })
  actorTokenId: string | null;

  /** The token's name, the agent's id, or what part of Lockstep acted (system). */
  @Column({ type: 'varchar', length: 100, nullable: true })
  actorName: string | null;

  /** The token's role for a user; null otherwise. */
  @Column({ type: 'varchar', length: 10, nullable: true })
  actorRole: string | null;

  @Column({ type: 'varchar', length: 36, nullable: true })
  actorAgentId: string | null;

  /** `<target>.<verb>`, e.g. `upgrade.pause`; the route's `x-audit` in the OpenAPI document. */
  @Column({ type: 'varchar', length: 60 })
  action: string;

  @Column({ type: 'varchar', length: 30 })
  targetType: string;

  @Index('idx_audit_records_target')
  @Column({ type: 'varchar', length: 100, nullable: true })
  targetId: string | null;

  @Column({ type: 'varchar', length: 36, nullable: true })
  clusterId: string | null;

  @Column({ type: 'varchar', length: 100, nullable: true })
  requestId: string | null;

  /** What changed, in a sentence; for a refusal, the error's code and message. */
  @Column({ type: 'varchar', length: 500 })
  summary: string;

  @Column({ type: 'varchar', length: 10 })
  outcome: AuditOutcome;

  /** The HTTP status answered; null for Lockstep's own changes. */
  @Column({ type: 'integer', nullable: true })
  status: number | null;

  /** A refusal's error code (e.g. ROLE_TOO_LOW). */
  @Column({ type: 'varchar', length: 60, nullable: true })
  code: string | null;
}
