import { EventSource } from 'eventsource';
import { EVENT_TYPES } from '../../src/progress/progress-event.entity';

export interface ReceivedEvent {
  id: number;
  type: string;
  data: Record<string, unknown>;
}

/**
 * A real SSE client (the `eventsource` package) on one stream, recording every event in order.
 * Headers (a bearer token, Last-Event-ID) go through its fetch hook, as a server-side client would.
 */
export class StreamClient {
  readonly events: ReceivedEvent[] = [];
  readonly errors: Array<{ code?: number; message?: string }> = [];
  private readonly source: EventSource;
  readonly opened: Promise<void>;

  constructor(url: string, options: { token?: string; lastEventId?: number } = {}) {
    this.source = new EventSource(url, {
      fetch: (input, init) =>
        fetch(input, {
          ...init,
          // The first connection resumes after options.lastEventId; a reconnection after the last
          // event received, which the library puts in init.headers itself.
          headers: {
            ...(options.lastEventId !== undefined ? { 'Last-Event-ID': String(options.lastEventId) } : {}),
            ...(init?.headers as Record<string, string>),
            ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}),
          },
        }),
    });
    for (const type of [...EVENT_TYPES, 'reset']) {
      this.source.addEventListener(type, (e) =>
        this.events.push({ id: Number(e.lastEventId), type, data: JSON.parse(e.data) as Record<string, unknown> }),
      );
    }
    this.opened = new Promise((resolve, reject) => {
      this.source.onopen = () => resolve();
      this.source.onerror = (e) => {
        this.errors.push({ code: e.code, message: e.message });
        if (this.source.readyState === EventSource.CLOSED)
          reject(new Error(`stream closed: ${e.code ?? ''} ${e.message ?? ''}`));
      };
    });
  }

  get lastId(): number | undefined {
    return this.events.at(-1)?.id;
  }

  /** Resolves once `predicate` holds for the events received, or fails after `timeoutMs`. */
  async waitFor(predicate: (events: ReceivedEvent[]) => boolean, timeoutMs = 10_000): Promise<ReceivedEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.events)) {
      if (Date.now() > deadline)
        throw new Error(
          `timed out; received ${this.events.length} events: ${JSON.stringify(this.events.map((e) => [e.id, e.type]))}`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.events;
  }

  close(): void {
    this.source.close();
  }
}

/** Polls until `check` holds (for effects that follow a disconnect), or fails after `timeoutMs`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
