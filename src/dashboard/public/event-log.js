// A virtual event log: every event is kept (as data), only the lines in sight, and a few either side,
// are in the DOM. The scroller holds a spacer as tall as all the lines, so its scroll bar, the wheel
// and the keys (it takes focus) reach every line; each line is one line high (no wrapping: a long one
// scrolls sideways), which is what lets a scroll position name its lines. Lines are oldest first and
// the log follows the newest unless the reader scrolled up; lines are drawn at most once a frame.
import { h } from './lib.js';

/** Lines drawn above and below those in sight, so a small scroll shows lines already there. */
const OVERSCAN = 12;

/**
 * `format(event)` gives a line's text, asked only when the line is drawn; `summary(count)` the text
 * of the caption under the log (how many events it holds). Returns the log's element, its caption,
 * and add(events) to append an array of events (newer than those it has).
 */
export function eventLog({ id, label, format, summary }) {
  const events = [];
  const lines = h('div', { class: 'log-lines' });
  const range = h('div', { class: 'log-range' }, lines);
  const caption = h('p', { class: 'muted', id: `${id}-summary` });
  const element = h(
    'div',
    { class: 'events', id, tabindex: 0, 'aria-label': label, 'aria-describedby': caption.id },
    range,
  );
  let lineHeight = 0;
  let following = true;
  let scheduled = false;
  let drawn = { first: -1, last: -1, count: -1 };

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(draw);
  }

  function draw() {
    scheduled = false;
    caption.textContent = summary(events.length);
    element.dataset.count = String(events.length);
    // Detached (the view is being built) or hidden: drawn once it is laid out (the observer below).
    if (!element.isConnected || element.clientWidth === 0) return;
    if (!lineHeight) lineHeight = measure();
    range.style.height = `${events.length * lineHeight}px`;
    if (following) element.scrollTop = element.scrollHeight;
    const first = Math.max(0, Math.floor(element.scrollTop / lineHeight) - OVERSCAN);
    const last = Math.min(events.length, Math.ceil((element.scrollTop + element.clientHeight) / lineHeight) + OVERSCAN);
    if (first === drawn.first && last === drawn.last && events.length === drawn.count) return;
    // Lines still in range keep their nodes: only those scrolled into range are made.
    const kept = new Map();
    for (const node of lines.children) kept.set(Number(node.dataset.index), node);
    const nodes = [];
    for (let i = first; i < last; i++)
      nodes.push(
        kept.get(i) ?? h('div', { class: 'line', 'data-index': i, 'data-id': events[i].id }, format(events[i])),
      );
    lines.style.transform = `translateY(${first * lineHeight}px)`;
    lines.replaceChildren(...nodes);
    drawn = { first, last, count: events.length };
  }

  /** The height of one line as drawn (CSS sets it in em; zoom and font size change it in pixels). */
  function measure() {
    const probe = h('div', { class: 'line' }, ' ');
    lines.append(probe);
    const height = probe.getBoundingClientRect().height;
    probe.remove();
    return height || 16;
  }

  element.addEventListener(
    'scroll',
    () => {
      following = element.scrollTop + element.clientHeight >= element.scrollHeight - Math.max(2, lineHeight / 2);
      schedule();
    },
    { passive: true },
  );
  // Attached, resized (a phone turned, the window narrowed): the lines in sight change.
  new ResizeObserver(schedule).observe(element);

  return {
    element,
    caption,
    /** Appends events, oldest first; they must be newer than those the log has. */
    add(more) {
      for (const e of more) events.push(e);
      schedule();
    },
    get count() {
      return events.length;
    },
  };
}
