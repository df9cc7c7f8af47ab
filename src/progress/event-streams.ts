import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Subscription } from 'rxjs';
import { toErrorResponse } from '../common/error-body';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { type StreamResetDto, toEventDto } from './event.dto';
import { EventFeed } from './event-feed';
import { ProgressEvent } from './progress-event.entity';
import { EventScope, matchesScope, ProgressEventRepository } from './progress-event.repository';

const REPLAY_PAGE = 500;
/** Tell browsers how long to wait before reconnecting after a drop. */
const RETRY_MS = 3000;
/** The reconnect delay a stopping process asks for: soon, to another replica. */
const SHUTDOWN_RETRY_MS = 500;

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
 * One viewer's stream, its state in one place: whether it is closed, whether the replay still runs
 * (live events are held meanwhile), the last id sent, and the upgrade's state for a stream that ends
 * with its upgrade. Every frame goes through `write`, which cuts a viewer that falls too far behind.
 */
class Viewer {
  closed = false;
  replaying = true;
  lastSent: number;
  /** Live events that arrived during the replay, sent once it is done. */
  readonly held: ProgressEvent[] = [];
  /** The upgrade's newest upgrade.status, when the stream ends with its upgrade. */
  upgrade: UpgradeState | null = null;
  subscription: Subscription | undefined;
  keepAlive: NodeJS.Timeout | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly scope: EventScope,
    readonly endsWithUpgrade: boolean,
    lastEventId: number | undefined,
    private readonly maxBufferBytes: number,
    private readonly onClose: (viewer: Viewer, reason?: string) => void,
  ) {
    this.lastSent = lastEventId ?? 0;
  }

  close(reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.subscription?.unsubscribe();
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.onClose(this, reason);
    if (reason) {
      // end() would queue behind the unsent data a stalled client never reads; cut it off instead.
      this.res.destroy();
    } else if (!this.res.writableEnded) {
      this.res.end();
    }
  }

  write(frame: string): boolean {
    if (this.closed) return false;
    const ok = this.res.write(frame);
    if (this.res.writableLength > this.maxBufferBytes)
      this.close(`viewer too slow (${this.res.writableLength} bytes unsent); it will reconnect and replay`);
    return ok;
  }

  /** Sends an event unless an event with its id or a later one was sent already. */
  send(event: ProgressEvent): boolean {
    if (event.id <= this.lastSent) return true;
    this.lastSent = event.id;
    return this.write(frameOf(event));
  }

  /** A live event of the scope: held during the replay, else sent. */
  receive(event: ProgressEvent, highWaterMark: () => number): void {
    if (!this.replaying) {
      this.sendAfterReplay(event);
      this.endIfUpgradeEnded(highWaterMark());
      return;
    }
    this.held.push(event);
    if (this.held.length * 256 > this.maxBufferBytes) this.close('too many events arrived during replay');
  }

  /** Sends an event after the replay (held or live), and follows the upgrade's state: also from events the client had already. */
  sendAfterReplay(event: ProgressEvent): void {
    this.send(event);
    // Only newer than what was read: events the client had already may arrive live after that read.
    if (this.endsWithUpgrade && event.type === 'upgrade.status' && (!this.upgrade || event.id > this.upgrade.id))
      this.upgrade = upgradeStateOf(event);
  }

  /** The replay is done: what was held goes out, in order. */
  releaseHeld(): void {
    this.replaying = false;
    for (const event of this.held.splice(0)) this.sendAfterReplay(event);
  }

  /** The upgrade ended and everything up to the feed's mark was sent: say so, and close. */
  endIfUpgradeEnded(highWaterMark: number): boolean {
    if (!this.upgrade?.ended || this.closed) return false;
    const id = Math.max(this.lastSent, highWaterMark);
    this.write(
      `id: ${id}\nevent: end\ndata: ${JSON.stringify({ ...this.upgrade.data, upgradeId: this.scope.id })}\n\n`,
    );
    this.close();
    return true;
  }
}

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
    const viewer = new Viewer(
      res,
      scope,
      scope.kind === 'upgrade' && options.endWhenUpgradeEnds === true,
      lastEventId,
      this.config.sseMaxBufferBytes,
      (closed, reason) => {
        this.viewers.delete(closed);
        if (reason) this.logger.warn(`dropping an event stream: ${reason}`);
      },
    );
    this.viewers.add(viewer);
    req.on('close', () => viewer.close());
    res.on('error', () => viewer.close());
    try {
      await this.open(viewer, res, scope, lastEventId);
    } catch (error) {
      this.logger.error(`event stream failed: ${(error as Error).message}`);
      if (!res.headersSent && !viewer.closed) {
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

  /** Opens the stream: subscribe and hold, replay up to the feed's mark, release what was held, go live. */
  private async open(
    viewer: Viewer,
    res: ServerResponse,
    scope: EventScope,
    lastEventId: number | undefined,
  ): Promise<void> {
    // Before the headers, so that a client that sees the stream open is already subscribed;
    // nothing awaits between this and the subscription below.
    await this.feed.prepareForSubscriber();
    if (viewer.closed) return; // the viewer left meanwhile: subscribe to nothing
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
      Connection: 'keep-alive',
    });
    viewer.write(`retry: ${RETRY_MS}\n\n`);
    viewer.subscription = this.feed.events$.subscribe((event) => {
      if (matchesScope(event, scope)) viewer.receive(event, () => this.feed.highWaterMark);
    });
    const highWaterMark = this.feed.highWaterMark;
    // Events committed while the feed had no listener and after its mark was moved: read them now.
    void this.feed.poke();

    if (lastEventId !== undefined) await this.replayOrReset(viewer, res, scope, lastEventId, highWaterMark);
    if (viewer.endsWithUpgrade) {
      // Up to what the client has now (the mark, or its own Last-Event-ID when that is later):
      // later events come through the feed, in order.
      const newest = await this.events.newestOfType(scope, 'upgrade.status', Math.max(highWaterMark, viewer.lastSent));
      viewer.upgrade = newest ? upgradeStateOf(newest) : null;
    }
    if (viewer.closed) return;
    viewer.releaseHeld();
    if (viewer.endIfUpgradeEnded(this.feed.highWaterMark)) return;
    viewer.keepAlive = setInterval(() => viewer.write(': keep-alive\n\n'), this.config.sseKeepAliveMs);
  }

  /**
   * Replays the events after Last-Event-ID up to the mark. 0 asks for everything retained. If events
   * after it are gone (retention) or the id is from another log, replaying would leave a hole: the
   * client gets `reset` and must reload instead.
   */
  private async replayOrReset(
    viewer: Viewer,
    res: ServerResponse,
    scope: EventScope,
    lastEventId: number,
    highWaterMark: number,
  ): Promise<void> {
    const oldest = await this.events.minId();
    const newest = await this.events.maxId();
    if (lastEventId > 0 && ((oldest !== null && lastEventId < oldest - 1) || lastEventId > newest)) {
      const reset: StreamResetDto = {
        reason: lastEventId > newest ? 'unknown-event-id' : 'events-expired',
        lastEventId,
        oldestRetainedId: oldest,
      };
      viewer.write(`id: ${highWaterMark}\nevent: reset\ndata: ${JSON.stringify(reset)}\n\n`);
      viewer.lastSent = highWaterMark;
    } else {
      await this.replay(
        scope,
        lastEventId,
        highWaterMark,
        (e) => viewer.send(e),
        res,
        () => viewer.closed,
      );
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

  /**
   * Ends every open stream, so shutdown does not wait on viewers; each is told to reconnect soon
   * (another replica answers, and Last-Event-ID resumes where it stopped).
   */
  beforeApplicationShutdown(): void {
    for (const viewer of [...this.viewers]) {
      viewer.write(`: this Lockstep process is stopping; reconnect\nretry: ${SHUTDOWN_RETRY_MS}\n\n`);
      viewer.close();
    }
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
