import type { MaintenanceWindow } from '../policies/maintenance-windows';
import type { PlannedStep } from '../policies/planner';
import {
  AGENT_SAMPLES,
  expectedWindows,
  predictor,
  type RuleWindows,
  ruleWindows,
  type StepDuration,
  unitPredictedMs,
  type WindowStep,
} from './window-rules';

const MIN = 60_000;
// A Monday, 12:00 UTC.
const NOW = new Date('2026-06-01T12:00:00.000Z');
const at = (iso: string) => new Date(iso);

/** Mondays 13:00-15:00 UTC: an hour from NOW. */
const MONDAY_AFTERNOON: MaintenanceWindow[] = [
  { days: ['mon'], start: '13:00', durationMinutes: 120, timeZone: 'UTC' },
];

/** The cluster's windows, agents' own (by id; absent: the cluster's), every step predicted `minutes`. */
const windows = (
  cluster: MaintenanceWindow[] | null,
  own: Record<string, MaintenanceWindow[] | null> = {},
  minutes = 30,
): RuleWindows => ruleWindows(cluster, new Map(Object.entries(own)), () => minutes * MIN);

describe('window rules: predictions', () => {
  const d = (agentId: string, minutes: number, kind: StepDuration['kind'] = 'upgrade'): StepDuration => ({
    agentId,
    kind,
    ms: minutes * MIN,
  });

  it.each<[string, StepDuration[], string, StepDuration['kind'], number]>([
    ["the median of the agent's own steps", [d('a', 10), d('a', 30), d('a', 20), d('b', 90)], 'a', 'upgrade', 20],
    ['an even count: the mean of the middle two', [d('a', 10), d('a', 20), d('a', 30), d('a', 40)], 'a', 'upgrade', 25],
    ["without history of its own, the cluster's median", [d('b', 10), d('c', 30), d('d', 20)], 'a', 'upgrade', 20],
    ['without any history, phaseTimeoutS', [], 'a', 'upgrade', 30],
    ['upgrades and takeovers apart', [d('a', 10), d('a', 2, 'switchover')], 'a', 'switchback', 2],
    ['a takeover without history: phaseTimeoutS', [d('a', 10)], 'a', 'switchover', 30],
    ['a manual step takes no time of the executor', [d('a', 10)], 'a', 'manual', 0],
    [
      `only the agent's latest ${AGENT_SAMPLES} count (newest first)`,
      [...Array.from({ length: AGENT_SAMPLES }, () => d('a', 5)), ...Array.from({ length: 20 }, () => d('a', 500))],
      'a',
      'upgrade',
      5,
    ],
  ])('%s', (_name, history, agentId, kind, minutes) => {
    expect(predictor(history, 1800)(agentId, kind)).toBe(minutes * MIN);
  });

  const ws = (id: string, over: Partial<WindowStep> = {}): WindowStep => ({
    id,
    kind: 'upgrade',
    agentId: id,
    dependsOn: [],
    runWhen: 'succeeded',
    ended: false,
    ...over,
  });
  const tenMinutes = () => 10 * MIN;

  it.each<[string, WindowStep[], number]>([
    ['one upgrade', [ws('a')], 10],
    ['a pair upgraded together: at once', [ws('a'), ws('b')], 10],
    [
      'backup-first: one after the other',
      [ws('b'), ws('s', { kind: 'switchover', agentId: 'b', dependsOn: ['b'] }), ws('a', { dependsOn: ['s'] })],
      30,
    ],
    [
      'a switchback on failure takes no time; one that always runs does',
      [ws('b'), ws('s', { kind: 'switchback', dependsOn: ['b'], runWhen: 'failed' })],
      10,
    ],
    ['a step that ended takes no time', [ws('b', { ended: true }), ws('a', { dependsOn: ['b'] })], 10],
  ])('a unit: %s', (_name, steps, minutes) => {
    expect(unitPredictedMs(steps, tenMinutes)).toBe(minutes * MIN);
  });
});

describe('window rules: where a plan is expected to run', () => {
  const planned = (agentId: string, unit: number, batch: number, over: Partial<PlannedStep> = {}): PlannedStep => ({
    key: `upgrade:${agentId}`,
    kind: 'upgrade',
    agentId,
    fromAgentId: null,
    failoverGroup: null,
    unit,
    batch,
    dependsOn: [],
    runWhen: 'succeeded',
    status: 'pending',
    note: null,
    ...over,
  });

  it('each batch after the one before it, in the first window that holds it', () => {
    // Mondays 13:00-15:00; 50 minutes a unit: batches 0 and 1 fit this Monday, batch 2 the next.
    const plan = {
      steps: [planned('a', 0, 0), planned('b', 1, 1), planned('c', 2, 2), planned('d', 3, 3, { status: 'skipped' })],
    };
    const found = expectedWindows(plan, windows(MONDAY_AFTERNOON, {}, 50), NOW);
    expect(
      found.batches.map((b) => ({
        ...b,
        expectedStartAt: b.expectedStartAt?.toISOString(),
        expectedEndAt: b.expectedEndAt?.toISOString(),
        window: b.window && `${b.window.opensAt.toISOString()} - ${b.window.closesAt.toISOString()}`,
      })),
    ).toEqual([
      {
        batch: 0,
        predictedMinutes: 50,
        expectedStartAt: '2026-06-01T13:00:00.000Z',
        expectedEndAt: '2026-06-01T13:50:00.000Z',
        window: '2026-06-01T13:00:00.000Z - 2026-06-01T15:00:00.000Z',
      },
      {
        batch: 1,
        predictedMinutes: 50,
        expectedStartAt: '2026-06-01T13:50:00.000Z',
        expectedEndAt: '2026-06-01T14:40:00.000Z',
        window: '2026-06-01T13:00:00.000Z - 2026-06-01T15:00:00.000Z',
      },
      {
        batch: 2,
        predictedMinutes: 50,
        expectedStartAt: '2026-06-08T13:00:00.000Z',
        expectedEndAt: '2026-06-08T13:50:00.000Z',
        window: '2026-06-08T13:00:00.000Z - 2026-06-08T15:00:00.000Z',
      },
    ]);
    expect(found.refusals).toEqual([]);
    expect(found.warnings).toEqual([]);
  });

  it('refuses a unit no window holds, and cannot say when the batches after it run', () => {
    const plan = { steps: [planned('a', 0, 0), planned('b', 1, 1)] };
    const found = expectedWindows(
      plan,
      ruleWindows(MONDAY_AFTERNOON, new Map(), (agentId) => (agentId === 'a' ? 150 : 10) * MIN),
      NOW,
    );
    expect(found.batches.map((b) => [b.batch, b.predictedMinutes, b.expectedStartAt, b.window])).toEqual([
      [0, 150, null, null],
      [1, 10, null, null],
    ]);
    expect(found.refusals).toEqual([
      {
        code: 'NO_WINDOW_FITS',
        message: expect.stringContaining('no maintenance window in the next 56 days is long enough for a (150 min)'),
      },
    ]);
  });

  it('names the agents no window limits', () => {
    const plan = { steps: [planned('a', 0, 0), planned('b', 1, 0)] };
    const found = expectedWindows(plan, windows(MONDAY_AFTERNOON, { b: [] }), NOW);
    expect(found.warnings).toEqual([expect.objectContaining({ code: 'NO_WINDOWS', agentIds: ['b'] })]);
    // b may start now; a waits for 13:00: the batch starts now and runs into a's window.
    expect(found.batches[0].expectedStartAt).toEqual(NOW);
    expect(found.batches[0].expectedEndAt).toEqual(at('2026-06-01T13:30:00Z'));
  });
});
