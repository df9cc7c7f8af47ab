import { DateTime, IANAZone } from 'luxon';

/**
 * Maintenance windows: when a cluster's (or one agent's) upgrades may start. Pure: no Nest, no
 * database, no clock (`now` is an argument); luxon does the time zones and daylight-saving changes.
 *
 * The rules (docs/maintenance-windows.md):
 * - A window opens on each of its `days` at `start`, wall-clock time in `timeZone`, and stays open
 *   `durationMinutes` of real elapsed time. A window may run past midnight: it belongs to the day it
 *   opens on ("fri 23:00 for 120 minutes" is open until Saturday 01:00).
 * - A start that does not exist that day (02:30 on the spring change in Europe/Berlin, where 02:00
 *   becomes 03:00) opens as much later as the clocks jumped (03:30), as iCalendar (RFC 5545) and
 *   luxon read such a time. A start that happens twice (02:30 on the autumn change) opens at the
 *   first of them, also as iCalendar does. Either way the window is open its whole duration.
 * - Windows of one list that overlap or touch are one window: "mon 22:00 for 4 h" and
 *   "tue 00:00 for 4 h" are one window from Monday 22:00 to Tuesday 04:00.
 * - An empty list limits nothing: any time is in it.
 * - Several agents (a failover pair) are in their windows together only where all their windows
 *   overlap: the intersection.
 */

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface MaintenanceWindow {
  /** The days it opens on. */
  days: Weekday[];
  /** When it opens, "HH:mm" (24-hour), wall-clock time in `timeZone`. */
  start: string;
  /** How long it stays open, in real elapsed minutes (at most a week). */
  durationMinutes: number;
  /** An IANA time zone, such as Europe/Berlin. */
  timeZone: string;
}

/** One opening of a window (or of several merged): from opensAt (included) to closesAt (excluded). */
export interface Span {
  opensAt: Date;
  closesAt: Date;
}

/** Where a unit of work of a predicted duration can run: it starts at `startsAt`, inside `window`. */
export interface Fit {
  /** now, when it can start at once; else when its window opens. */
  startsAt: Date;
  /** The window it runs in; null when no window limits it (every list was empty). */
  window: Span | null;
}

export const MAX_WINDOWS = 20;
export const MAX_WINDOW_MINUTES = 7 * 24 * 60;
/** How far ahead a window that fits is looked for; none within it means none will come. */
export const HORIZON_DAYS = 56;

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
const START = /^([01]\d|2[0-3]):([0-5]\d)$/;
const FIELDS = new Set(['days', 'start', 'durationMinutes', 'timeZone']);

/** What is wrong with a list of windows, each in words naming its field under `field` (`windows[0].start must be ...`). */
export function windowProblems(value: unknown, field: string): string[] {
  if (!Array.isArray(value)) return [`${field} must be a list of maintenance windows`];
  if (value.length > MAX_WINDOWS) return [`${field} takes at most ${MAX_WINDOWS} windows`];
  return value.flatMap((window, i) => oneWindowProblems(window, `${field}[${i}]`));
}

function oneWindowProblems(window: unknown, at: string): string[] {
  if (typeof window !== 'object' || window === null || Array.isArray(window))
    return [
      `${at} must be a window: {"days": ["sat"], "start": "22:00", "durationMinutes": 240, "timeZone": "Europe/Berlin"}`,
    ];
  const w = window as Record<string, unknown>;
  const problems = Object.keys(w)
    .filter((key) => !FIELDS.has(key))
    .map((key) => `${at}.${key} is not a known field; remove it`);
  const days = w.days;
  if (
    !Array.isArray(days) ||
    days.length === 0 ||
    days.some((d) => !WEEKDAYS.includes(d as Weekday)) ||
    new Set(days).size !== days.length
  )
    problems.push(`${at}.days must be a list of different days, each one of: ${WEEKDAYS.join(', ')}`);
  if (typeof w.start !== 'string' || !START.test(w.start))
    problems.push(`${at}.start must be a time of day "HH:mm" (24-hour), such as "22:00"`);
  const minutes = w.durationMinutes;
  if (typeof minutes !== 'number' || !Number.isInteger(minutes) || minutes < 1 || minutes > MAX_WINDOW_MINUTES)
    problems.push(`${at}.durationMinutes must be a whole number of minutes from 1 to ${MAX_WINDOW_MINUTES} (a week)`);
  if (!isTimeZone(w.timeZone)) problems.push(`${at}.timeZone must be an IANA time zone such as Europe/Berlin`);
  return problems;
}

/** An IANA time zone name that this runtime knows ("Europe/Berlin", "UTC"); not an offset such as "+02:00". */
export function isTimeZone(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 64 && IANAZone.isValidZone(value);
}

/** Windows as stored: days in week order, the time zone spelled as the zone database spells it ("europe/berlin" is Europe/Berlin). */
export function normalizeWindows(windows: MaintenanceWindow[]): MaintenanceWindow[] {
  return windows.map((w) => ({
    days: WEEKDAYS.filter((d) => w.days.includes(d)),
    start: w.start,
    durationMinutes: w.durationMinutes,
    timeZone: new Intl.DateTimeFormat('en-US', { timeZone: w.timeZone }).resolvedOptions().timeZone,
  }));
}

/**
 * Every opening of one list of windows that is open at some time in [from, to), merged where they
 * overlap or touch, in order. An opening that began before `from` is included while still open;
 * merged openings are seen as far as each reaches into the range, so the opensAt of one that began
 * with an opening closed before `from` (windows back to back all week) is the earliest one seen.
 */
export function openings(windows: readonly MaintenanceWindow[], from: Date, to: Date): Span[] {
  const all: Span[] = [];
  for (const window of windows) all.push(...openingsOfOne(window, from, to));
  all.sort((a, b) => a.opensAt.getTime() - b.opensAt.getTime());
  const merged: Span[] = [];
  for (const span of all) {
    const last = merged.at(-1);
    if (last && span.opensAt.getTime() <= last.closesAt.getTime()) {
      if (span.closesAt > last.closesAt) last.closesAt = span.closesAt;
    } else merged.push({ ...span });
  }
  return merged;
}

function openingsOfOne(window: MaintenanceWindow, from: Date, to: Date): Span[] {
  const zone = IANAZone.create(window.timeZone);
  const [hour, minute] = window.start.split(':').map(Number);
  const durationMs = window.durationMinutes * MINUTE_MS;
  // Calendar days in the window's zone, from early enough that an opening still open at `from` is
  // seen (a window may last a week), to the day `to` falls on.
  const first = DateTime.fromJSDate(new Date(from.getTime() - durationMs - DAY_MS), { zone });
  const last = DateTime.fromJSDate(to, { zone });
  const spans: Span[] = [];
  for (
    let day = DateTime.utc(first.year, first.month, first.day);
    day.toISODate()! <= last.toISODate()!;
    day = day.plus({ days: 1 })
  ) {
    if (!window.days.includes(WEEKDAYS[day.weekday - 1])) continue;
    const opensAt = wallClock(day, hour, minute, zone);
    const closesAt = new Date(opensAt.getTime() + durationMs);
    if (closesAt > from && opensAt < to) spans.push({ opensAt, closesAt });
  }
  return spans;
}

/**
 * The instant a wall-clock time of a calendar day has in a zone: luxon moves a time the clocks
 * skip forward by the jump; of a time that happens twice, the first.
 */
function wallClock(day: DateTime, hour: number, minute: number, zone: IANAZone): Date {
  const local = DateTime.fromObject({ year: day.year, month: day.month, day: day.day, hour, minute }, { zone });
  const candidates = local.getPossibleOffsets();
  const earliest = Math.min(local.toMillis(), ...candidates.map((c) => c.toMillis()));
  return new Date(earliest);
}

/** Where the spans of two lists overlap: the times both are open. */
function intersect(a: Span[], b: Span[]): Span[] {
  const out: Span[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const opensAt = Math.max(a[i].opensAt.getTime(), b[j].opensAt.getTime());
    const closesAt = Math.min(a[i].closesAt.getTime(), b[j].closesAt.getTime());
    if (opensAt < closesAt) out.push({ opensAt: new Date(opensAt), closesAt: new Date(closesAt) });
    if (a[i].closesAt.getTime() < b[j].closesAt.getTime()) i++;
    else j++;
  }
  return out;
}

/** The times every non-empty list is open within [from, to); null when every list is empty (nothing limits). */
export function commonOpenings(
  lists: ReadonlyArray<readonly MaintenanceWindow[]>,
  from: Date,
  to: Date,
): Span[] | null {
  const limiting = lists.filter((l) => l.length > 0);
  if (limiting.length === 0) return null;
  return limiting.map((l) => openings(l, from, to)).reduce(intersect);
}

/**
 * The opening of a list of windows that `now` is in, or null when it is closed (an empty list has
 * no opening: null too). Its closesAt counts the openings it runs into, as far as a week ahead.
 */
export function openWindowAt(windows: readonly MaintenanceWindow[], now: Date): Span | null {
  return openings(windows, now, new Date(now.getTime() + 7 * DAY_MS)).find((s) => s.opensAt <= now) ?? null;
}

/**
 * nextFit among openings already computed (commonOpenings' answer over a range that covers
 * [now, until)): for many runs against the same windows, each a scan instead of luxon's work again.
 * Openings from `until` on are not looked at.
 */
export function fitAmong(spans: Span[] | null, now: Date, predictedMs: number, until: Date): Fit | null {
  if (spans === null) return { startsAt: now, window: null };
  for (const span of spans) {
    if (span.closesAt <= now) continue;
    if (span.opensAt >= until) return null;
    const startsAt = span.opensAt > now ? span.opensAt : now;
    if (startsAt.getTime() + predictedMs <= span.closesAt.getTime()) return { startsAt, window: span };
  }
  return null;
}

/**
 * The first time from `now` on when every list is open and stays open `predictedMs` more: now, if
 * the current window has that long left, else the opening of the first window long enough (within
 * HORIZON_DAYS). Null when no window within the horizon is that long.
 */
export function nextFit(
  lists: ReadonlyArray<readonly MaintenanceWindow[]>,
  now: Date,
  predictedMs: number,
  horizonDays = HORIZON_DAYS,
): Fit | null {
  const end = now.getTime() + horizonDays * DAY_MS;
  // Most answers are within days: look a week ahead first, further only when nothing there is known
  // to fit (a span reaching the end of the range may go on past it, so it is judged on a longer one).
  for (let range = Math.min(8 * DAY_MS, end - now.getTime()); ; range = Math.min(range * 2, end - now.getTime())) {
    const to = new Date(now.getTime() + range);
    const spans = commonOpenings(lists, now, to);
    if (spans === null) return { startsAt: now, window: null };
    const complete = to.getTime() >= end;
    for (const span of spans) {
      if (!complete && span.closesAt >= to) break;
      const startsAt = span.opensAt > now ? span.opensAt : now;
      if (startsAt.getTime() + predictedMs <= span.closesAt.getTime()) return { startsAt, window: span };
    }
    if (complete) return null;
  }
}
