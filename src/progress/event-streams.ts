import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Subscription } from 'rxjs';
import { toErrorResponse } from '../common/error-body';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { toEventDto } from './event.dto';
import { EventFeed } from './event-feed';
import { ProgressEvent } from './progress-event.entity';
import { EventScope, matchesScope, ProgressEventRepository } from './progress-event.repository';

const REPLAY_PAGE = 500;
/** Tell browsers how long to wait before reconnecting after a drop. */
const RETRY_MS = 3000;

/**
 * The SSE frame of an event, built once however many viewers it goes to: every viewer receives the
 * same event object from the feed. Weakly held, so frames go when their events do.
 */
const frames = new WeakMap<ProgressEvent, string>();
function frameOf(event: ProgressEvent): string {
  let frame = frames.get(event);
  if (frame === undefined) {
    frame = `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(toEventDto(event))}\n\n`;
    frames.set(event, frame);
  }
  return frame;
}

interface Viewer {
  close(reason?: string): void;
}

export interface StreamOptions {
  /**
   * Ends an upgrade's stream once the upgrade has ended and every event up to then was sent: an
   * `end` event, then the response closes. Without it (`?follow=true`) the stream stays open.
   */
  endWhenUpgradeEnds?: boolean;
}

/**
 * What the newest upgrade.status event says: whether the upgrade ended (finishedAt is set only
 * once its status is final and no step runs; a retry clears it), and that event's data.
 */
interface UpgradeState {
  id: number;
  ended: boolean;
  data: Record<string, unknown>;
}
const upgradeStateOf = (event: ProgressEvent): UpgradeState => ({
  id: event.id,
  ended: event.data.finishedAt != null,
  data: event.data,
});

/**
 * Serves Server-Sent Events for one scope. Replay without gap or duplicate: subscribe to the feed
 * first (holding what arrives), note its high-water mark, replay up to that mark from the database,
 * then release the held events above it; every event is sent only if its id is above the last one
 * sent. A viewer that lets more than SSE_MAX_BUFFER_BYTES pile up unsent is disconnected (it
 * reconnects and replays) instead of growing memory.
 *
 * An upgrade's stream ends by default once that upgrade ended: its state comes from the newest
 * upgrade.status event up to the high-water mark (read from the database), then from each later
 * event in id order, so the end follows every event up to the one that ended it, on a replay too.
 * The `end` event's id is the position up to which everything was sent: a reconnect with it gets
 * the end at once (after any event of the upgrade written since).
 */
@Injectable()
export class EventStreams implements BeforeApplicationShutdown {
  private readonly logger = new Logger(EventStreams.name);
  private readonly viewers = new Set<Viewer>();

  constructor(
    private readonly feed: EventFeed,
    private readonly events: ProgressEventRepository,
    @InjectAppConfig() private readonly config: AppConfig,
  ) {}

  get viewerCount(): number {
    return this.viewers.size;
  }

  async stream(
    req: IncomingMessage,
    res: ServerResponse,
    scope: EventScope,
    lastEventId: number | undefined,
    options: StreamOptions = {},
  ): Promise<void> {
    const endsWithUpgrade = scope.kind === 'upgrade' && options.endWhenUpgradeEnds === true;
    let upgrade: UpgradeState | null = null;
    let closed = false;
    let replaying = true;
    let lastSent = lastEventId ?? 0;
    const held: ProgressEvent[] = [];
    let subscription: Subscription | undefined;
    let keepAlive: NodeJS.Timeout | undefined;

    const viewer: Viewer = {
      close: (reason) => {
        if (closed) return;
        closed = true;
        subscription?.unsubscribe();
        if (keepAlive) clearInterval(keepAlive);
        this.viewers.delete(viewer);
        if (reason) {
          // end() would queue behind the unsent data a stalled client never reads; cut it off instead.
          this.logger.warn(`dropping an event stream: ${reason}`);
          res.destroy();
        } else if (!res.writableEnded) {
          res.end();
        }
      },
    };
    this.viewers.add(viewer);
    req.on('close', () => viewer.close());
    res.on('error', () => viewer.close());

    const write = (frame: string): boolean => {
      if (closed) return false;
      const ok = res.write(frame);
      if (res.writableLength > this.config.sseMaxBufferBytes)
        viewer.close(`viewer too slow (${res.writableLength} bytes unsent); it will reconnect and replay`);
      return ok;
    };
    const send = (event: ProgressEvent): boolean => {
      if (event.id <= lastSent) return true;
      lastSent = event.id;
      return write(frameOf(event));
    };
    /** Sends an event after the replay (held or live), and follows the upgrade's state: also from events the client had already. */
    const sendAfterReplay = (event: ProgressEvent): void => {
      send(event);
      // Only newer than what was read: events the client had already may arrive live after that read.
      if (endsWithUpgrade && event.type === 'upgrade.status' && (!upgrade || event.id > upgrade.id))
        upgrade = upgradeStateOf(event);
    };
    /** The upgrade ended and everything up to the feed's mark was sent: say so, and close. */
    const endIfUpgradeEnded = (): boolean => {
      if (!upgrade?.ended || closed) return false;
      const id = Math.max(lastSent, this.feed.highWaterMark);
      write(`id: ${id}\nevent: end\ndata: ${JSON.stringify({ ...upgrade.data, upgradeId: scope.id })}\n\n`);
      viewer.close();
      return true;
    };

    try {
      // Before the headers, so that a client that sees the stream open is already subscribed;
      // nothing awaits between this and the subscription below.
      await this.feed.prepareForSubscriber();
      if (closed) return; // the viewer left meanwhile: subscribe to nothing
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        'X-Accel-Buffering': 'no',
        Connection: 'keep-alive',
      });
      write(`retry: ${RETRY_MS}\n\n`);

      subscription = this.feed.events$.subscribe((event) => {
        if (!matchesScope(event, scope)) return;
        if (!replaying) {
          sendAfterReplay(event);
          endIfUpgradeEnded();
          return;
        }
        held.push(event);
        if (held.length * 256 > this.config.sseMaxBufferBytes) viewer.close('too many events arrived during replay');
      });
      const highWaterMark = this.feed.highWaterMark;
      // Events committed while the feed had no listener and after its mark was moved: read them now.
      void this.feed.poke();

      if (lastEventId !== undefined) {
        const oldest = await this.events.minId();
        const newest = await this.events.maxId();
        // 0 asks for everything retained. Otherwise, if events after lastEventId are gone (retention)
        // or the id is from another log, replaying would leave a hole: the client must reload instead.
        if (lastEventId > 0 && ((oldest !== null && lastEventId < oldest - 1) || lastEventId > newest)) {
          write(
            `id: ${highWaterMark}\nevent: reset\ndata: ${JSON.stringify({ reason: lastEventId > newest ? 'unknown-event-id' : 'events-expired', lastEventId, oldestRetainedId: oldest })}\n\n`,
          );
          lastSent = highWaterMark;
        } else {
          await this.replay(scope, lastEventId, highWaterMark, send, res, () => closed);
        }
      }
      if (endsWithUpgrade) {
        // Up to what the client has now (the mark, or its own Last-Event-ID when that is later):
        // later events come through the feed, in order.
        const newest = await this.events.newestOfType(scope, 'upgrade.status', Math.max(highWaterMark, lastSent));
        upgrade = newest ? upgradeStateOf(newest) : null;
      }
      if (closed) return;
      replaying = false;
      for (const event of held.splice(0)) sendAfterReplay(event);
      if (endIfUpgradeEnded()) return;
      keepAlive = setInterval(() => write(': keep-alive\n\n'), this.config.sseKeepAliveMs);
    } catch (error) {
      this.logger.error(`event stream failed: ${(error as Error).message}`);
      if (!res.headersSent && !closed) {
        // Failed before it opened (the database down...): an answer in the API's shape, not an empty 200.
        const answer = toErrorResponse(error, undefined, this.logger);
        res.writeHead(answer.status, {
          'Content-Type': 'application/json; charset=utf-8',
          ...(answer.retryAfterS !== undefined ? { 'Retry-After': String(answer.retryAfterS) } : {}),
        });
        res.end(JSON.stringify(answer.body));
      }
      viewer.close();
    }
  }

  private async replay(
    scope: EventScope,
    afterId: number,
    upToId: number,
    send: (e: ProgressEvent) => boolean,
    res: ServerResponse,
    isClosed: () => boolean,
  ): Promise<void> {
    let cursor = afterId;
    while (!isClosed()) {
      const page = await this.events.inScope(scope, cursor, upToId, REPLAY_PAGE);
      for (const event of page) {
        if (!send(event) && !isClosed()) await drainedOrClosed(res);
        cursor = event.id;
      }
      if (page.length < REPLAY_PAGE) return;
    }
  }

  /** Ends every open stream, so shutdown does not wait on viewers. */
  beforeApplicationShutdown(): void {
    for (const viewer of [...this.viewers]) viewer.close();
  }
}

/** Waits until the socket can take more, or is gone: a viewer leaving mid-replay must not strand a waiter. */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}
