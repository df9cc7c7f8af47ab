import { Injectable } from '@nestjs/common';
import { AuditTrail } from '../audit/audit-trail.service';
import { Clock } from '../common/clock';
import { Database, Tx } from '../database/database';
import { Notifications } from '../database/notifications';
import { EventFeed, EVENTS_CHANNEL } from './event-feed';
import type { NewEvent } from './event-map';
import { ProgressEvent } from './progress-event.entity';

export type { NewEvent } from './event-map';

/**
 * The event log. The domain appends events inside the transaction of the change they report; they
 * are streamed only after that transaction commits. Ids come from one counter row: incrementing it
 * takes that row's lock until commit, so on PostgreSQL event-writing transactions commit in id
 * order and a reader never sees id n+1 before id n.
 *
 * A transaction's events are written together at the end of its body (Tx.beforeCommit), in the
 * order they were appended: one counter update and one insert however many changes it reports
 * (an agent's report makes three), and the counter's lock is the last one it takes.
 */
@Injectable()
export class EventLog {
  constructor(
    private readonly clock: Clock,
    private readonly db: Database,
    private readonly feed: EventFeed,
    private readonly audit: AuditTrail,
    private readonly notifications: Notifications,
  ) {}

  private readonly pending = new WeakMap<Tx, NewEvent[]>();

  /**
   * Queues events in the transaction; they are written with its other events before it commits.
   * Each event's data is its type's (EventDataMap in event-map.ts): nothing else compiles.
   */
  append(tx: Tx, events: NewEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    const queued = this.pending.get(tx);
    if (queued) queued.push(...events);
    else {
      this.pending.set(tx, [...events]);
      tx.beforeCommit(() => this.write(tx, this.pending.get(tx)!));
    }
    // Nothing is written yet (the transaction's beforeCommit does), but callers await it as they
    // await every other write in the transaction.
    return Promise.resolve();
  }

  private async write(tx: Tx, events: NewEvent[]): Promise<void> {
    this.pending.delete(tx);
    // The UPDATE takes the counter row's lock (held to commit on PostgreSQL) and returns the new value.
    const result: unknown[] = await tx.em.query(
      this.db.sql('UPDATE "event_sequence" SET "lastId" = "lastId" + $1 WHERE "name" = $2 RETURNING "lastId"'),
      [events.length, 'events'],
    );
    // PostgreSQL answers an UPDATE with [rows, count], SQLite with the rows.
    const rows = (Array.isArray(result[0]) ? result[0] : result) as Array<{ lastId: number | string }>;
    const lastId = Number(rows[0].lastId);
    const now = this.clock.now();
    const actor = this.audit.personOf(tx);
    const saved = events.map((event, i) =>
      Object.assign(new ProgressEvent(), {
        id: lastId - events.length + 1 + i,
        type: event.type,
        clusterId: event.clusterId,
        upgradeId: event.upgradeId ?? null,
        agentId: event.agentId ?? null,
        // Stored as the JSON it is; its shape was checked when it was appended (NewEvent).
        data: event.data as unknown as Record<string, unknown>,
        actor,
        createdAt: now,
      }),
    );
    // Fixed SQL: the query builder writes each id into the statement's text, so SQLite prepared every insert anew.
    await this.db.rows(ProgressEvent).insert(tx.em, saved);
    // Every other replica's feed reads them once this commits (nothing is sent should it roll back).
    await this.notifications.notify(tx, EVENTS_CHANNEL, String(lastId));
    tx.afterCommit(() => this.feed.poke());
  }
}
