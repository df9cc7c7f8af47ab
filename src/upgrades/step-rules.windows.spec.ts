import { ruleAgent, ruleAgents, ruleStep } from '../testing/rule-fixtures';
import type { MaintenanceWindow } from '../policies/maintenance-windows';
import { decide, type RuleAgent, type RuleStep, type RuleUpgrade } from './step-rules';
import { type RuleWindows, ruleWindows } from './window-rules';

const MIN = 60_000;
// A Monday, 12:00 UTC.
const NOW = new Date('2026-06-01T12:00:00.000Z');
const at = (iso: string) => new Date(iso);
const ago = (s: number) => new Date(NOW.getTime() - s * 1000);

/** Mondays 13:00-15:00 UTC: an hour from NOW. */
const MONDAY_AFTERNOON: MaintenanceWindow[] = [
  { days: ['mon'], start: '13:00', durationMinutes: 120, timeZone: 'UTC' },
];
/** Mondays 11:00-14:00 UTC: open at NOW, two hours left. */
const MONDAY_MIDDAY: MaintenanceWindow[] = [{ days: ['mon'], start: '11:00', durationMinutes: 180, timeZone: 'UTC' }];

const upgrade = (windows?: RuleWindows, over: Partial<RuleUpgrade> = {}): RuleUpgrade => ({
  status: 'running',
  options: { waitForIdle: true, idleTimeoutS: 60, offlineTimeoutS: 30, phaseTimeoutS: 1800 },
  canaryPending: false,
  failureLimit: 1,
  pkg: { version: '1.1.0', kind: 'full', prerequisites: {} },
  windows,
  ...over,
});

const agent = ruleAgent;

const step = ruleStep;

const agents = ruleAgents;
/** The cluster's windows, agents' own (by id; absent: the cluster's), every step predicted `minutes`. */
const windows = (
  cluster: MaintenanceWindow[] | null,
  own: Record<string, MaintenanceWindow[] | null> = {},
  minutes = 30,
): RuleWindows => ruleWindows(cluster, new Map(Object.entries(own)), () => minutes * MIN);
const short = (d: ReturnType<typeof decide>) =>
  d.steps.map((a) =>
    a.type === 'wait'
      ? `wait ${a.stepId} ${a.for}${a.until ? ` until ${a.until.toISOString()}` : ''}`
      : `${a.type} ${a.stepId}`,
  );

describe('step rules: maintenance windows (options.respectWindows)', () => {
  it.each<[string, RuleWindows | undefined, RuleStep[], RuleAgent[], string[], Date?]>([
    ['without respectWindows, windows are not looked at', undefined, [step('a')], [agent('a')], ['start a']],
    [
      'outside its window, a unit waits for the window, until it opens',
      windows(MONDAY_AFTERNOON),
      [step('a')],
      [agent('a')],
      ['wait a window until 2026-06-01T13:00:00.000Z'],
    ],
    [
      'still outside: no change',
      windows(MONDAY_AFTERNOON),
      [
        step('a', {
          status: 'waiting',
          waitingFor: 'window',
          waitingSince: ago(600),
          windowOpensAt: at('2026-06-01T13:00:00Z'),
        }),
      ],
      [agent('a')],
      [],
    ],
    [
      'a window wait has no time limit',
      windows(MONDAY_AFTERNOON),
      [
        step('a', {
          status: 'waiting',
          waitingFor: 'window',
          waitingSince: ago(30 * 86400),
          windowOpensAt: at('2026-06-01T13:00:00Z'),
        }),
      ],
      [agent('a')],
      [],
    ],
    [
      'the windows changed: it waits for the new opening',
      windows(MONDAY_AFTERNOON),
      [
        step('a', {
          status: 'waiting',
          waitingFor: 'window',
          waitingSince: ago(600),
          windowOpensAt: at('2026-06-08T13:00:00Z'),
        }),
      ],
      [agent('a')],
      ['wait a window until 2026-06-01T13:00:00.000Z'],
    ],
    [
      'it starts once the clock is in the window',
      windows(MONDAY_AFTERNOON),
      [
        step('a', {
          status: 'waiting',
          waitingFor: 'window',
          waitingSince: ago(3600),
          windowOpensAt: at('2026-06-01T13:00:00Z'),
        }),
      ],
      [agent('a')],
      ['start a'],
      at('2026-06-01T13:00:00Z'),
    ],
    [
      'inside, but its predicted 30 minutes do not fit before 15:00: the next window',
      windows(MONDAY_AFTERNOON),
      [step('a')],
      [agent('a')],
      ['wait a window until 2026-06-08T13:00:00.000Z'],
      at('2026-06-01T14:31:00Z'),
    ],
    [
      'inside, and they fit exactly: it starts',
      windows(MONDAY_AFTERNOON),
      [step('a')],
      [agent('a')],
      ['start a'],
      at('2026-06-01T14:30:00Z'),
    ],
    [
      'no window is ever long enough: it misses its turn',
      windows(MONDAY_AFTERNOON, {}, 121),
      [step('a')],
      [agent('a')],
      ['miss a'],
    ],
    [
      'outside its window an offline agent waits for the window, not for the agent (no offline timeout runs)',
      windows(MONDAY_AFTERNOON),
      [step('a')],
      [agent('a', { online: false })],
      ['wait a window until 2026-06-01T13:00:00.000Z'],
    ],
    [
      'inside, an offline agent is waited for as ever',
      windows(MONDAY_MIDDAY),
      [step('a')],
      [agent('a', { online: false })],
      ['wait a online'],
    ],
    [
      'a waiting agent whose window closed waits for the window again',
      windows(MONDAY_AFTERNOON),
      [step('a', { status: 'waiting', waitingFor: 'online', waitingSince: ago(10) })],
      [agent('a', { online: false })],
      ['wait a window until 2026-06-01T13:00:00.000Z'],
    ],
    [
      "an agent with its own windows: they replace the cluster's",
      windows(MONDAY_AFTERNOON, { a: MONDAY_MIDDAY }),
      [step('a')],
      [agent('a')],
      ['start a'],
    ],
    [
      'an agent with its own empty list: any time',
      windows(MONDAY_AFTERNOON, { a: [] }),
      [step('a')],
      [agent('a')],
      ['start a'],
    ],
    [
      "an agent whose own windows are null takes the cluster's",
      windows(MONDAY_MIDDAY, { a: null }),
      [step('a')],
      [agent('a')],
      ['start a'],
    ],
    ['a cluster with no windows: any time', windows(null), [step('a')], [agent('a')], ['start a']],
    [
      'a pair upgraded together starts only when both members are in their windows',
      windows(MONDAY_AFTERNOON, { a: MONDAY_MIDDAY }),
      [step('a'), step('b')],
      [agent('a', { peerId: 'b' }), agent('b', { peerId: 'a', active: false })],
      ['wait a window until 2026-06-01T13:00:00.000Z', 'wait b window until 2026-06-01T13:00:00.000Z'],
    ],
    [
      'a unit under way is never held: its switchover follows outside the window',
      windows(MONDAY_AFTERNOON),
      [
        step('b', { status: 'succeeded', attempts: 1, commandId: 'c1' }),
        step('s', { kind: 'switchover', agentId: 'b', dependsOn: ['b'] }),
      ],
      [agent('a', { peerId: 'b' }), agent('b', { peerId: 'a', active: false, version: '1.1.0' })],
      ['start s'],
    ],
    [
      'a running step outside its window is not cut',
      windows(MONDAY_AFTERNOON),
      [step('a', { status: 'running', attempts: 1, commandId: 'c1', phaseStartedAt: ago(60) })],
      [agent('a')],
      [],
    ],
    [
      'a later batch waits for its batch, not for a window',
      windows(MONDAY_AFTERNOON),
      [
        step('a', { status: 'running', attempts: 1, commandId: 'c1', phaseStartedAt: ago(60) }),
        step('b', { unit: 1, batch: 1 }),
      ],
      [agent('a'), agent('b')],
      [],
    ],
  ])('%s', (_name, w, steps, list, expected, now = NOW) => {
    expect(short(decide(upgrade(w), steps, agents(...list), now))).toEqual(expected);
  });

  it('a unit is judged by its whole predicted duration: steps in a row must fit together', () => {
    // Backup-first: the backup's upgrade, the switchover, the main's upgrade: 3 x 45 = 135 min > 120.
    const steps = [
      step('b'),
      step('s', { kind: 'switchover', agentId: 'b', dependsOn: ['b'] }),
      step('a', { dependsOn: ['s'] }),
    ];
    const pair = [agent('a', { peerId: 'b' }), agent('b', { peerId: 'a', active: false })];
    expect(
      short(decide(upgrade(windows(MONDAY_AFTERNOON, {}, 45)), steps, agents(...pair), at('2026-06-01T13:00:00Z'))),
    ).toEqual(['miss b', 'block s', 'block a']);
    // 3 x 40 = 120 min: it starts at the opening.
    expect(
      short(decide(upgrade(windows(MONDAY_AFTERNOON, {}, 40)), steps, agents(...pair), at('2026-06-01T13:00:00Z'))),
    ).toEqual(['start b', 'wait s dependencies', 'wait a dependencies']);
  });

  it('a paused upgrade leaves its window waits as they are', () => {
    const d = decide(upgrade(windows(MONDAY_AFTERNOON), { status: 'paused' }), [step('a')], agents(agent('a')), NOW);
    expect(short(d)).toEqual([]);
  });

  it('a rollback runs at once, whatever the windows', () => {
    const d = decide(upgrade(windows(MONDAY_AFTERNOON), { stage: 'rollback' }), [step('a')], agents(agent('a')), NOW);
    expect(short(d)).toEqual(['start a']);
  });

  it('says what the unit waits for in its miss', () => {
    const d = decide(upgrade(windows(MONDAY_AFTERNOON, {}, 121)), [step('a')], agents(agent('a')), NOW);
    expect(d.steps).toEqual([
      {
        type: 'miss',
        stepId: 'a',
        reason: 'no maintenance window of a in the next 56 days is long enough for the 121 min it is predicted to take',
      },
    ]);
  });
});
