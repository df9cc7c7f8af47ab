import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { JsonColumn, TimestampColumn } from '../common/columns';

export const EVENT_TYPES = [
  'upgrade.status',
  'task.progress',
  'pair.switchover',
  'agent.status',
  'package.status',
  'command.status',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** bigint comes back from PostgreSQL as a string; event ids stay far below 2^53. */
const bigintAsNumber = { to: (v: number) => v, from: (v: string | number) => Number(v) };

/** One persisted progress record; what the SSE streams carry. */
@Entity('events')
@Index('idx_events_cluster', ['clusterId', 'id'])
@Index('idx_events_upgrade', ['upgradeId', 'id'])
export class ProgressEvent {
  /** Global and strictly increasing in commit order (see EventLog). */
  @PrimaryColumn({ type: 'bigint', transformer: bigintAsNumber })
  id: number;

  @Column({ type: 'varchar', length: 32 })
  type: EventType;

  @Column({ type: 'varchar', length: 36 })
  clusterId: string;

  @Column({ type: 'varchar', length: 36, nullable: true })
  upgradeId: string | null;

  @Column({ type: 'varchar', length: 36, nullable: true })
  agentId: string | null;

  @JsonColumn()
  data: Record<string, unknown>;

  /** The name of the person (API token) whose call caused this event; null for Lockstep's own work and agents. */
  @Column({ type: 'varchar', length: 100, nullable: true })
  actor: string | null;

  @Index('idx_events_created_at')
  @TimestampColumn()
  createdAt: Date;
}

/** The single row that hands out event ids. */
@Entity('event_sequence')
export class EventSequence {
  @PrimaryColumn({ type: 'varchar', length: 16 })
  name: string;

  @Column({ type: 'bigint', transformer: bigintAsNumber })
  lastId: number;
}
