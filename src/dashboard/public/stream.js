// Following an event stream with single-use stream tickets, resuming after drops.
import { api, EVENT_TYPES, redraw, state } from './lib.js';

/**
 * Follows a stream ('upgrade' or 'cluster'). EventSource cannot send a token, so each connection
 * uses a fresh single-use stream ticket; after a drop it asks for another and resumes after the
 * last event received, so nothing is lost or shown twice. An upgrade's stream starts after
 * options.afterId (the last event of its history the page read as JSON), or from its first event
 * without it; a cluster's starts live, and onOpen(false) lets the page read what it shows
 * again rather than replay the cluster's whole log.
 *
 * An upgrade's stream ends with an `end` event once the upgrade ended, unless options.follow asks
 * it to stay open (to show a later retry). On `end` the EventSource is closed: left open it would
 * reconnect by itself, and so would the error handler below.
 */
export function follow(kind, id, handlers, options = {}) {
  let lastId = options.afterId ?? 0;
  let closed = false;
  let source = null;
  let retryMs = 500;
  const stream = {
    close: () => {
      closed = true;
      if (source) source.close();
    },
  };
  state.stream = stream;
  async function open() {
    if (closed || state.stream !== stream) return;
    try {
      const ticket = await api('POST', '/api/v1/stream-tickets', { stream: kind, id });
      if (closed) return;
      const resumed = lastId > 0 || kind === 'upgrade';
      source = new EventSource(
        `${ticket.url}${resumed ? `&lastEventId=${lastId}` : ''}${options.follow ? '&follow=true' : ''}`,
      );
      source.onopen = () => handlers.onOpen && handlers.onOpen(resumed);
      // Browsers only hear the named events they listen for: every type the server writes.
      for (const type of EVENT_TYPES) {
        source.addEventListener(type, (m) => {
          const eventId = Number(m.lastEventId);
          if (eventId <= lastId) return;
          lastId = eventId;
          retryMs = 500;
          const event = JSON.parse(m.data);
          handlers.onEvent({ id: eventId, type, createdAt: event.createdAt, data: event.data });
        });
      }
      source.addEventListener('reset', () => {
        stream.close();
        redraw();
      });
      source.addEventListener('end', (m) => {
        stream.close();
        if (handlers.onEnd) handlers.onEnd(JSON.parse(m.data));
      });
      source.onerror = () => {
        source.close();
        if (!closed) setTimeout(open, retryMs);
        retryMs = Math.min(retryMs * 2, 10_000);
      };
    } catch {
      if (!closed) setTimeout(open, (retryMs = Math.min(retryMs * 2, 10_000)));
    }
  }
  open();
}
