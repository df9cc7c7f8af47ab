import { Injectable } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import type { QueryDeepPartialEntity } from 'typeorm';
import { Clock } from '../common/clock';
import { Tx } from '../database/database';
import { EventSequence, EventType, ProgressEvent } from './progress-event.entity';

export interface NewEvent {
  type: EventType;
  clusterId: string;
  upgradeId?: string | null;
  agentId?: string | null;
  data: Record<string, unknown>;
}

/**
 * The event log. The domain appends events inside the transaction of the change they report; they
 * are streamed only after that transaction commits. Ids come from one counter row: incrementing it
 * takes that row's lock until commit, so on PostgreSQL event-writing transactions commit in id
 * order and a reader never sees id n+1 before id n.
 */
@Injectable()
export class EventLog {
  private readonly committed = new Subject<ProgressEvent>();

  constructor(private readonly clock: Clock) {}

  /** Events as they commit on this replica. */
  get live$(): Observable<ProgressEvent> {
    return this.committed.asObservable();
  }

  async append(tx: Tx, events: NewEvent[]): Promise<ProgressEvent[]> {
    if (events.length === 0) return [];
    // The UPDATE takes the counter row's lock (held to commit on PostgreSQL); the SELECT reads our own write.
    await tx.em
      .createQueryBuilder()
      .update(EventSequence)
      .set({ lastId: () => `"lastId" + ${events.length}` })
      .where('name = :name', { name: 'events' })
      .execute();
    const { lastId } = await tx.em.findOneByOrFail(EventSequence, { name: 'events' });
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
    tx.afterCommit(() => saved.forEach((e) => this.committed.next(e)));
    return saved;
  }
}
