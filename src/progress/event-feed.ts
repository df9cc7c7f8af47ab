import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import { ProgressEvent } from './progress-event.entity';
import { Notifications } from '../database/notifications';
import { ProgressEventRepository } from './progress-event.repository';

const BATCH = 1000;

/** The channel on which replicas tell each other that events were committed (the payload: the newest id). */
export const EVENTS_CHANNEL = 'lockstep_events';

/**
 * The live side of the event log on this replica. When poked (a local commit, or a NOTIFY from
 * another replica), it reads the events after its high-water mark from the database and emits them
 * in id order. Because everything comes from committed rows in id order, viewers see the same order
 * on every replica, and `highWaterMark` is a precise point to replay up to.
 */
@Injectable()
export class EventFeed implements OnModuleInit {
  private readonly logger = new Logger(EventFeed.name);
  private readonly subject = new Subject<ProgressEvent>();
  private lastId = 0;
  private draining: Promise<void> | null = null;
  private pokedWhileDraining = false;

  constructor(
    private readonly events: ProgressEventRepository,
    private readonly notifications: Notifications,
  ) {}

  /**
   * Starts at the newest event: before any poke (the PostgreSQL listener pokes at bootstrap), or it
   * would read the whole log. Another replica's commit pokes it, and so does a listener that was
   * (re)connected: whatever committed while nobody listened is read then.
   */
  async onModuleInit(): Promise<void> {
    this.lastId = await this.events.maxId();
    this.notifications.subscribe(EVENTS_CHANNEL, { notified: () => void this.poke(), resync: () => void this.poke() });
  }

  /** Every event emitted so far has an id at most this. */
  get highWaterMark(): number {
    return this.lastId;
  }

  get events$(): Observable<ProgressEvent> {
    return this.subject.asObservable();
  }

  /** How many streams listen now; a disconnected viewer must leave none behind. */
  get subscriberCount(): number {
    return this.subject.observers.length;
  }

  /**
   * Called by a stream just before it subscribes. With no one listening the feed reads nothing, so
   * its mark may be behind: the first subscriber moves it to the newest event, replays up to it from
   * the database, and gets everything after it live. (Without this, the first viewer after a quiet
   * hour would make the feed read the whole hour's events.)
   */
  async prepareForSubscriber(): Promise<void> {
    if (this.subject.observers.length > 0) return;
    const newest = await this.events.maxId();
    if (this.subject.observers.length === 0) this.lastId = Math.max(this.lastId, newest);
  }

  /** New events may be in the database: read and emit them. Pokes during a read coalesce into one more read. */
  poke(): Promise<void> {
    if (this.draining) {
      this.pokedWhileDraining = true;
      return this.draining;
    }
    this.draining = this.drain().finally(() => (this.draining = null));
    return this.draining;
  }

  private async drain(): Promise<void> {
    do {
      this.pokedWhileDraining = false;
      try {
        // Nobody listens: nothing to read. The first stream to open moves the mark (below).
        if (this.subject.observers.length === 0) continue;
        const batch = await this.events.after(this.lastId, BATCH);
        for (const event of batch) {
          this.lastId = event.id;
          this.subject.next(event);
        }
        if (batch.length === BATCH) this.pokedWhileDraining = true;
      } catch (error) {
        this.logger.error(`could not read new events: ${(error as Error).message}`);
        return;
      }
    } while (this.pokedWhileDraining);
  }
}
