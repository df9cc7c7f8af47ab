import * as fc from 'fast-check';
import {
  commonOpenings,
  fitAmong,
  HORIZON_DAYS,
  type MaintenanceWindow,
  nextFit,
  normalizeWindows,
  openings,
  openWindowAt,
  WEEKDAYS,
  windowProblems,
} from './maintenance-windows';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const at = (iso: string) => new Date(iso);
const win = (
  days: MaintenanceWindow['days'],
  start: string,
  durationMinutes: number,
  timeZone = 'Europe/Berlin',
): MaintenanceWindow => ({ days, start, durationMinutes, timeZone });
const iso = (span: { opensAt: Date; closesAt: Date } | null) =>
  span && { opensAt: span.opensAt.toISOString(), closesAt: span.closesAt.toISOString() };

describe('maintenance windows: when a window is open', () => {
  // 2026-06-06 is a Saturday; Berlin is on summer time (UTC+2) then. 2026-03-29 and 2026-10-25 are
  // the Sundays of Berlin's spring (02:00 -> 03:00) and autumn (03:00 -> 02:00) changes.
  const saturdayNight = win(['sat'], '22:00', 240);
  const fridayLate = win(['fri'], '23:00', 120, 'UTC');
  const cases: Array<[string, MaintenanceWindow[], string, { opensAt: string; closesAt: string } | null]> = [
    [
      'inside, local time',
      [saturdayNight],
      '2026-06-06T21:00:00Z',
      { opensAt: '2026-06-06T20:00:00.000Z', closesAt: '2026-06-07T00:00:00.000Z' },
    ],
    [
      'the opening instant is inside',
      [saturdayNight],
      '2026-06-06T20:00:00Z',
      { opensAt: '2026-06-06T20:00:00.000Z', closesAt: '2026-06-07T00:00:00.000Z' },
    ],
    ['the closing instant is outside', [saturdayNight], '2026-06-07T00:00:00Z', null],
    ['a minute before it opens', [saturdayNight], '2026-06-06T19:59:00Z', null],
    ['another day of the week', [saturdayNight], '2026-06-05T21:00:00Z', null],
    // Across midnight: the window belongs to the day it opens on.
    [
      "after midnight, in Friday's window",
      [fridayLate],
      '2026-06-06T00:30:00Z',
      { opensAt: '2026-06-05T23:00:00.000Z', closesAt: '2026-06-06T01:00:00.000Z' },
    ],
    ['after midnight on a Friday: Thursday has none', [fridayLate], '2026-06-05T00:30:00Z', null],
    [
      // Back to back with the next one: open as far as it looks ahead (a week).
      'a week-long window opened last Monday',
      [win(['mon'], '00:00', 7 * 24 * 60, 'UTC')],
      '2026-06-07T12:00:00Z',
      { opensAt: '2026-06-01T00:00:00.000Z', closesAt: '2026-06-15T00:00:00.000Z' },
    ],
    // Spring change: 02:30 does not exist on 2026-03-29; the window opens at 03:30 CEST (01:30Z) and lasts its hour.
    [
      'spring change: 02:30 is skipped, it opens at 03:30',
      [win(['sun'], '02:30', 60)],
      '2026-03-29T01:30:00Z',
      { opensAt: '2026-03-29T01:30:00.000Z', closesAt: '2026-03-29T02:30:00.000Z' },
    ],
    ['spring change: not open at 03:00 CEST', [win(['sun'], '02:30', 60)], '2026-03-29T01:00:00Z', null],
    // Across the spring change: three hours of real time, 01:00 CET to 05:00 CEST on the wall.
    [
      'spring change: a window across it lasts its real minutes',
      [win(['sun'], '01:00', 180)],
      '2026-03-29T02:59:00Z',
      { opensAt: '2026-03-29T00:00:00.000Z', closesAt: '2026-03-29T03:00:00.000Z' },
    ],
    // Autumn change: 02:30 happens twice; the window opens at the first (CEST, 00:30Z) and lasts an hour.
    [
      'autumn change: 02:30 twice, it opens at the first',
      [win(['sun'], '02:30', 60)],
      '2026-10-25T00:30:00Z',
      { opensAt: '2026-10-25T00:30:00.000Z', closesAt: '2026-10-25T01:30:00.000Z' },
    ],
    ['autumn change: closed again at the second 02:30', [win(['sun'], '02:30', 60)], '2026-10-25T01:30:00Z', null],
    // Across the autumn change: four hours of real time, 23:00 CEST to 02:00 CET on the wall.
    [
      'autumn change: a window across it lasts its real minutes',
      [win(['sat'], '23:00', 240)],
      '2026-10-25T00:59:00Z',
      { opensAt: '2026-10-24T21:00:00.000Z', closesAt: '2026-10-25T01:00:00.000Z' },
    ],
    [
      'the week after, the window follows the wall clock (winter time)',
      [win(['sun'], '02:30', 60)],
      '2026-11-01T01:30:00Z',
      { opensAt: '2026-11-01T01:30:00.000Z', closesAt: '2026-11-01T02:30:00.000Z' },
    ],
    [
      'New York, summer time',
      [win(['sat'], '22:00', 60, 'America/New_York')],
      '2026-06-07T02:30:00Z',
      { opensAt: '2026-06-07T02:00:00.000Z', closesAt: '2026-06-07T03:00:00.000Z' },
    ],
    // Windows that overlap or touch are one: Monday 22:00 to Tuesday 04:00.
    [
      'touching windows are one',
      [win(['mon'], '22:00', 120, 'UTC'), win(['tue'], '00:00', 240, 'UTC')],
      '2026-06-08T23:00:00Z',
      { opensAt: '2026-06-08T22:00:00.000Z', closesAt: '2026-06-09T04:00:00.000Z' },
    ],
    ['an empty list has no opening', [], '2026-06-08T23:00:00Z', null],
  ];
  it.each(cases)('%s', (_name, windows, now, expected) => {
    expect(iso(openWindowAt(windows, at(now)))).toEqual(expected);
  });
});

describe('maintenance windows: where a unit of a predicted duration fits', () => {
  const saturdayNight = win(['sat'], '22:00', 240);
  const nightly = win(['mon', 'tue', 'wed', 'thu', 'fri'], '01:00', 120, 'UTC');
  const fit = (lists: MaintenanceWindow[][], now: string, minutes: number) => {
    const found = nextFit(lists, at(now), minutes * MIN);
    return found && { startsAt: found.startsAt.toISOString(), window: iso(found.window) };
  };
  const cases: Array<[string, MaintenanceWindow[][], string, number, ReturnType<typeof fit>]> = [
    [
      'inside, with time enough: now',
      [[saturdayNight]],
      '2026-06-06T21:00:00Z',
      60,
      {
        startsAt: '2026-06-06T21:00:00.000Z',
        window: { opensAt: '2026-06-06T20:00:00.000Z', closesAt: '2026-06-07T00:00:00.000Z' },
      },
    ],
    [
      'inside, exactly the time left: now',
      [[saturdayNight]],
      '2026-06-06T21:00:00Z',
      180,
      {
        startsAt: '2026-06-06T21:00:00.000Z',
        window: { opensAt: '2026-06-06T20:00:00.000Z', closesAt: '2026-06-07T00:00:00.000Z' },
      },
    ],
    [
      'inside, too little time left: the next window',
      [[saturdayNight]],
      '2026-06-06T21:00:00Z',
      181,
      {
        startsAt: '2026-06-13T20:00:00.000Z',
        window: { opensAt: '2026-06-13T20:00:00.000Z', closesAt: '2026-06-14T00:00:00.000Z' },
      },
    ],
    [
      'outside: when it opens',
      [[nightly]],
      '2026-06-08T12:00:00Z',
      90,
      {
        startsAt: '2026-06-09T01:00:00.000Z',
        window: { opensAt: '2026-06-09T01:00:00.000Z', closesAt: '2026-06-09T03:00:00.000Z' },
      },
    ],
    [
      'on Friday after the last nightly window: Monday',
      [[nightly]],
      '2026-06-12T12:00:00Z',
      90,
      {
        startsAt: '2026-06-15T01:00:00.000Z',
        window: { opensAt: '2026-06-15T01:00:00.000Z', closesAt: '2026-06-15T03:00:00.000Z' },
      },
    ],
    ['longer than any window: never', [[nightly]], '2026-06-08T12:00:00Z', 121, null],
    [
      'no windows: now, unlimited',
      [[]],
      '2026-06-08T12:00:00Z',
      600,
      { startsAt: '2026-06-08T12:00:00.000Z', window: null },
    ],
    [
      'an empty list does not limit the others',
      [[], [nightly]],
      '2026-06-08T12:00:00Z',
      60,
      {
        startsAt: '2026-06-09T01:00:00.000Z',
        window: { opensAt: '2026-06-09T01:00:00.000Z', closesAt: '2026-06-09T03:00:00.000Z' },
      },
    ],
    // A pair: both members in their windows at once, 22:00-24:00 UTC.
    [
      'two agents: where both are open',
      [[win(['sat'], '20:00', 240, 'UTC')], [win(['sat'], '22:00', 240, 'UTC')]],
      '2026-06-06T12:00:00Z',
      120,
      {
        startsAt: '2026-06-06T22:00:00.000Z',
        window: { opensAt: '2026-06-06T22:00:00.000Z', closesAt: '2026-06-07T00:00:00.000Z' },
      },
    ],
    [
      'two agents: their overlap is too short',
      [[win(['sat'], '20:00', 240, 'UTC')], [win(['sat'], '22:00', 240, 'UTC')]],
      '2026-06-06T12:00:00Z',
      121,
      null,
    ],
    // Every day all day, merged: one long opening, so a 30-hour unit fits at once (the opening is
    // known as far as the search looked: HORIZON_DAYS).
    [
      'merged daily windows hold a unit longer than a day',
      [[win([...WEEKDAYS], '00:00', 1440, 'UTC')]],
      '2026-06-08T12:00:00Z',
      30 * 60,
      {
        startsAt: '2026-06-08T12:00:00.000Z',
        window: { opensAt: '2026-06-08T00:00:00.000Z', closesAt: '2026-08-04T00:00:00.000Z' },
      },
    ],
    // A week-long window opening every Monday is always open: a unit of 10 days fits (searched past the first week).
    [
      'a unit longer than the first range searched',
      [[win(['mon'], '00:00', 7 * 24 * 60, 'UTC')]],
      '2026-06-08T12:00:00Z',
      10 * 24 * 60,
      {
        startsAt: '2026-06-08T12:00:00.000Z',
        window: { opensAt: '2026-06-08T00:00:00.000Z', closesAt: '2026-08-10T00:00:00.000Z' },
      },
    ],
    // Spring change: the night of 2026-03-29 is an hour shorter on the wall, not in a window's real minutes.
    [
      'spring change: a 3-hour window still holds a 3-hour unit',
      [[win(['sun'], '01:00', 180)]],
      '2026-03-28T12:00:00Z',
      180,
      {
        startsAt: '2026-03-29T00:00:00.000Z',
        window: { opensAt: '2026-03-29T00:00:00.000Z', closesAt: '2026-03-29T03:00:00.000Z' },
      },
    ],
    // Autumn change: the night of 2026-10-25 is an hour longer on the wall; the window is still 4 hours.
    [
      'autumn change: a 4-hour window holds a 4-hour unit',
      [[win(['sat'], '23:00', 240)]],
      '2026-10-24T12:00:00Z',
      240,
      {
        startsAt: '2026-10-24T21:00:00.000Z',
        window: { opensAt: '2026-10-24T21:00:00.000Z', closesAt: '2026-10-25T01:00:00.000Z' },
      },
    ],
    ['autumn change: and not one minute more', [[win(['sat'], '23:00', 240)]], '2026-10-24T12:00:00Z', 241, null],
  ];
  it.each(cases)('%s', (_name, lists, now, minutes, expected) => {
    expect(fit(lists, now, minutes)).toEqual(expected);
  });
});

describe('maintenance windows: validation and normal form', () => {
  const good = { days: ['sat'], start: '22:00', durationMinutes: 240, timeZone: 'Europe/Berlin' };
  const cases: Array<[string, unknown, string[]]> = [
    ['a good window', [good], []],
    ['an empty list', [], []],
    ['not a list', good, ['windows must be a list of maintenance windows']],
    ['too many', Array.from({ length: 21 }, () => good), ['windows takes at most 20 windows']],
    [
      'not an object',
      [5],
      [
        'windows[0] must be a window: {"days": ["sat"], "start": "22:00", "durationMinutes": 240, "timeZone": "Europe/Berlin"}',
      ],
    ],
    [
      'an unknown time zone',
      [{ ...good, timeZone: 'Mars/Olympus' }],
      ['windows[0].timeZone must be an IANA time zone such as Europe/Berlin'],
    ],
    [
      'an offset is not a zone',
      [{ ...good, timeZone: '+02:00' }],
      ['windows[0].timeZone must be an IANA time zone such as Europe/Berlin'],
    ],
    [
      'a missing time zone',
      [{ ...good, timeZone: undefined }],
      ['windows[0].timeZone must be an IANA time zone such as Europe/Berlin'],
    ],
    [
      'a start past 23:59',
      [good, { ...good, start: '24:00' }],
      ['windows[1].start must be a time of day "HH:mm" (24-hour), such as "22:00"'],
    ],
    [
      'a start without its zero',
      [{ ...good, start: '2:00' }],
      ['windows[0].start must be a time of day "HH:mm" (24-hour), such as "22:00"'],
    ],
    [
      'no days',
      [{ ...good, days: [] }],
      ['windows[0].days must be a list of different days, each one of: mon, tue, wed, thu, fri, sat, sun'],
    ],
    [
      'a day twice',
      [{ ...good, days: ['sat', 'sat'] }],
      ['windows[0].days must be a list of different days, each one of: mon, tue, wed, thu, fri, sat, sun'],
    ],
    [
      'a day spelled out',
      [{ ...good, days: ['Saturday'] }],
      ['windows[0].days must be a list of different days, each one of: mon, tue, wed, thu, fri, sat, sun'],
    ],
    [
      'no duration',
      [{ ...good, durationMinutes: 0 }],
      ['windows[0].durationMinutes must be a whole number of minutes from 1 to 10080 (a week)'],
    ],
    [
      'longer than a week',
      [{ ...good, durationMinutes: 10081 }],
      ['windows[0].durationMinutes must be a whole number of minutes from 1 to 10080 (a week)'],
    ],
    [
      'a fraction of a minute',
      [{ ...good, durationMinutes: 1.5 }],
      ['windows[0].durationMinutes must be a whole number of minutes from 1 to 10080 (a week)'],
    ],
    [
      'a number as text',
      [{ ...good, durationMinutes: '240' }],
      ['windows[0].durationMinutes must be a whole number of minutes from 1 to 10080 (a week)'],
    ],
    ['an unknown field', [{ ...good, end: '23:00' }], ['windows[0].end is not a known field; remove it']],
  ];
  it.each(cases)('%s', (_name, value, problems) => {
    expect(windowProblems(value, 'windows')).toEqual(problems);
  });

  it('keeps days in week order and spells the time zone as the zone database does', () => {
    expect(normalizeWindows([win(['sun', 'mon', 'fri'], '01:00', 60, 'europe/berlin')])).toEqual([
      win(['mon', 'fri', 'sun'], '01:00', 60, 'Europe/Berlin'),
    ]);
  });
});

describe('maintenance windows: properties', () => {
  const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'America/Santiago'];
  const windowArb = fc.record({
    days: fc.subarray([...WEEKDAYS], { minLength: 1 }),
    start: fc
      .tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
      .map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`),
    durationMinutes: fc.integer({ min: 1, max: 3000 }),
    timeZone: fc.constantFrom(...ZONES),
  });
  const listArb = fc.array(windowArb, { minLength: 0, maxLength: 3 });
  // Through 2026, both daylight-saving changes of every zone above included.
  const nowArb = fc.integer({ min: Date.UTC(2026, 0, 1), max: Date.UTC(2027, 0, 1) }).map((ms) => new Date(ms));
  const predictedArb = fc.integer({ min: 1, max: 12 * 60 }).map((m) => m * MIN);

  it('a fit starts no earlier than now, inside every window, and stays inside for the predicted time', () => {
    fc.assert(
      fc.property(fc.array(listArb, { minLength: 1, maxLength: 3 }), nowArb, predictedArb, (lists, now, predicted) => {
        const found = nextFit(lists, now, predicted);
        if (!found) return;
        expect(found.startsAt.getTime()).toBeGreaterThanOrEqual(now.getTime());
        const end = new Date(found.startsAt.getTime() + predicted);
        for (const list of lists.filter((l) => l.length > 0)) {
          // One opening of each list covers the whole run: it never closes in between.
          const covering = openings(list, found.startsAt, end);
          expect(covering).toHaveLength(1);
          expect(covering[0].opensAt.getTime()).toBeLessThanOrEqual(found.startsAt.getTime());
          expect(covering[0].closesAt.getTime()).toBeGreaterThanOrEqual(end.getTime());
        }
      }),
      { numRuns: 200 },
    );
  });

  it('nothing earlier fits, and no fit means none within the horizon (the search ahead agrees with one look over it all)', () => {
    fc.assert(
      fc.property(fc.array(listArb, { minLength: 1, maxLength: 2 }), nowArb, predictedArb, (lists, now, predicted) => {
        const found = nextFit(lists, now, predicted);
        const spans = commonOpenings(lists, now, new Date(now.getTime() + HORIZON_DAYS * DAY));
        if (spans === null) {
          expect(found).toEqual({ startsAt: now, window: null });
          return;
        }
        const fits = spans.filter(
          (s) => s.closesAt.getTime() - Math.max(now.getTime(), s.opensAt.getTime()) >= predicted,
        );
        if (!found) {
          expect(fits).toEqual([]);
          return;
        }
        const first = fits[0];
        expect(found.startsAt.getTime()).toBe(Math.max(now.getTime(), first.opensAt.getTime()));
        // The same from openings computed once over a longer range (as the executor keeps them).
        const longer = commonOpenings(
          lists,
          new Date(now.getTime() - DAY),
          new Date(now.getTime() + 2 * HORIZON_DAYS * DAY),
        );
        const among = fitAmong(longer, now, predicted, new Date(now.getTime() + HORIZON_DAYS * DAY));
        expect(among?.startsAt).toEqual(found.startsAt);
      }),
      { numRuns: 200 },
    );
  });

  it('each opening of a window lasts exactly its minutes and opens at its start on the wall clock, unless the clocks skipped it', () => {
    fc.assert(
      fc.property(windowArb, nowArb, (window, now) => {
        // One day a week and shorter than a week: openings never overlap, so none is merged.
        const single = { ...window, days: window.days.slice(0, 1) };
        for (const span of openings([single], now, new Date(now.getTime() + 14 * DAY))) {
          expect(span.closesAt.getTime() - span.opensAt.getTime()).toBe(single.durationMinutes * MIN);
          const wall = new Intl.DateTimeFormat('en-GB', {
            timeZone: single.timeZone,
            hour: '2-digit',
            minute: '2-digit',
            hourCycle: 'h23',
          }).format(span.opensAt);
          // A start the clocks skipped opens later by the jump (at most an hour here).
          const minutes = (t: string) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5));
          const late = minutes(wall) - minutes(single.start);
          expect(late === 0 || (late > 0 && late <= 60)).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('open at a time exactly when some opening around it contains it', () => {
    fc.assert(
      fc.property(listArb, nowArb, (list, now) => {
        const around = openings(list, new Date(now.getTime() - 8 * DAY), new Date(now.getTime() + DAY));
        const inside = around.find((s) => s.opensAt <= now && now < s.closesAt) ?? null;
        const open = openWindowAt(list, now);
        expect(open === null).toBe(inside === null);
        if (!open || !inside) return;
        expect(open.opensAt.getTime()).toBeLessThanOrEqual(now.getTime());
        // The same closing, unless back-to-back openings run past what either looked at.
        if (inside.closesAt.getTime() < now.getTime() + DAY) expect(open.closesAt).toEqual(inside.closesAt);
      }),
      { numRuns: 200 },
    );
  });
});
