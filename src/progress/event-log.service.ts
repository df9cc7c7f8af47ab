import { Injectable } from '@nestjs/common';
import type { QueryDeepPartialEntity } from 'typeorm';
import { Clock } from '../common/clock';
import { Database, Tx } from '../database/database';
import { EventFeed } from './event-feed';
import { EventType, ProgressEvent } from './progress-event.entity';

export interface NewEvent {
  type: EventType;
  clusterId: string;
  upgradeId?: string | null;
  agentId?: string | null;
  data: Record<string, unknown>;
}

/** The channel on which PostgreSQL replicas tell each other that events were committed. */
export const EVENTS_CHANNEL = 'lockstep_events';

/**
 * The event log. The domain appends events inside the transaction of the change they report; they
 * are streamed only after that transaction commits. Ids come from one counter row: incrementing it
 * takes that row's lock until commit, so on PostgreSQL event-writing transactions commit in id
 * order and a reader never sees id n+1 before id n.
 */
@Injectable()
export class EventLog {
  constructor(
    private readonly clock: Clock,
    private readonly db: Database,
    private readonly feed: EventFeed,
  ) {}

  async append(tx: Tx, events: NewEvent[]): Promise<ProgressEvent[]> {
    if (events.length === 0) return [];
    // The UPDATE takes the counter row's lock (held to commit on PostgreSQL) and returns the new value.
    const result: unknown[] = await tx.em.query(this.db.sql('UPDATE "event_sequence" SET "lastId" = "lastId" + $1 WHERE "name" = $2 RETURNING "lastId"'), [events.length, 'events']);
    // PostgreSQL answers an UPDATE with [rows, count], SQLite with the rows.
    const rows = (Array.isArray(result[0]) ? result[0] : result) as Array<{ lastId: number | string }>;
    const lastId = Number(rows[0].lastId);
    const now = this.clock.now();
    const saved = events.map((event, i) =>
      Object.assign(new ProgressEvent(), {
        id: lastId - events.length + 1 + i,
        type: event.type,
        clusterId: event.clusterId,
        upgradeId: event.upgradeId ?? null,
        agentId: event.agentId ?? null,
        data: event.data,
        createdAt: now,
      }),
    );
    await tx.em.insert(ProgressEvent, saved as QueryDeepPartialEntity<ProgressEvent>[]);
    if (this.db.type === 'postgres') {
      // NOTIFY is transactional: delivered to every replica's listener at commit, dropped on rollback.
      await tx.em.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, String(lastId)]);
    }
    tx.afterCommit(() => this.feed.poke());
    return saved;
  }
}
