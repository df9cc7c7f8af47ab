import {
  commonOpenings,
  type Fit,
  fitAmong,
  HORIZON_DAYS,
  type MaintenanceWindow,
  type Span,
} from '../policies/maintenance-windows';
import type { Plan, PlanNotice, RunWhen, StepKind } from '../policies/planner';
import type { RuleAgent, RuleStep } from './step-rules';
import { ENDED_STEP_STATUSES } from './upgrade-step.entity';

/**
 * Maintenance windows in an upgrade (options.respectWindows), pure: how long a unit is predicted to
 * take, and whether it may start now. The executor (each pass) and the preview read the agents'
 * windows and the cluster's step history and hand them in; docs/maintenance-windows.md has the rules.
 */

/** One step that ran to success: which agent, what kind, how long from its start to its end. */
export interface StepDuration {
  agentId: string;
  kind: StepKind;
  ms: number;
}

/** What the windows of an upgrade's agents and their predicted step durations are. */
export interface RuleWindows {
  /** An agent's windows: its own list if it has one (even empty), else its cluster's; empty = any time. */
  of(agentId: string): readonly MaintenanceWindow[];
  /** How long a step of this kind on this agent is predicted to take, in ms. */
  predictMs(agentId: string, kind: StepKind): number;
  /** nextFit (maintenance-windows.ts), the openings of each set of lists computed once for many calls. */
  fit(lists: ReadonlyArray<readonly MaintenanceWindow[]>, now: Date, predictedMs: number): Fit | null;
}

/** Of an agent's own history, the latest this many durations count; of the cluster's, CLUSTER_SAMPLES. */
export const AGENT_SAMPLES = 10;
export const CLUSTER_SAMPLES = 100;

/** Upgrades against takeovers (a switchover or switchback takes the same time whatever the package). */
const group = (kind: StepKind): 'upgrade' | 'takeover' | null =>
  kind === 'upgrade' ? 'upgrade' : kind === 'switchover' || kind === 'switchback' ? 'takeover' : null;

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * The predicted duration of one step: the median of the agent's latest AGENT_SAMPLES steps of that
 * kind that succeeded (upgrades only with packages of the upgrade's kind: the history is read so),
 * else the median of the cluster's latest CLUSTER_SAMPLES, else phaseTimeoutS (the longest the
 * operator lets one phase take: a stand-in until the cluster has history). `history` is newest first.
 */
export function predictor(history: StepDuration[], phaseTimeoutS: number): (agentId: string, kind: StepKind) => number {
  const perAgent = new Map<string, number[]>();
  const perCluster = new Map<string, number[]>();
  for (const { agentId, kind, ms } of history) {
    const g = group(kind);
    if (!g || ms < 0) continue;
    const agentKey = `${g}:${agentId}`;
    const own = perAgent.get(agentKey) ?? [];
    if (own.length < AGENT_SAMPLES) perAgent.set(agentKey, [...own, ms]);
    const all = perCluster.get(g) ?? [];
    if (all.length < CLUSTER_SAMPLES) perCluster.set(g, [...all, ms]);
  }
  const medians = new Map([...perAgent, ...perCluster].map(([key, values]) => [key, median(values)]));
  return (agentId, kind) => {
    const g = group(kind);
    if (!g) return 0;
    return medians.get(`${g}:${agentId}`) ?? medians.get(g) ?? phaseTimeoutS * 1000;
  };
}

const HORIZON_MS = HORIZON_DAYS * 24 * 3600_000;

/**
 * RuleWindows from each agent's own windows (null: its cluster's) and a predictor. The openings of
 * each set of lists are computed once, two horizons ahead, and scanned for each unit: a pass over
 * thousands of units with their own predictions, or a preview of thousands of batches one after
 * the other, does luxon's work once per set of windows, not once per unit.
 */
export function ruleWindows(
  clusterWindows: readonly MaintenanceWindow[] | null,
  agentWindows: Map<string, readonly MaintenanceWindow[] | null>,
  predictMs: (agentId: string, kind: StepKind) => number,
): RuleWindows {
  const known = new Map<string, { from: number; to: number; spans: Span[] | null }>();
  // Lists by content (stored in normal form, so equal lists read the same): thousands of agents
  // with their own copy of the same windows share one computation. Each object is read once.
  const idsByContent = new Map<string, number>();
  const idsByList = new Map<readonly MaintenanceWindow[], number>();
  const idOf = (list: readonly MaintenanceWindow[]) => {
    let id = idsByList.get(list);
    if (id === undefined) {
      const content = JSON.stringify(list);
      id = idsByContent.get(content) ?? idsByContent.size;
      idsByContent.set(content, id);
      idsByList.set(list, id);
    }
    return id;
  };
  const none: readonly MaintenanceWindow[] = [];
  return {
    of: (agentId) => agentWindows.get(agentId) ?? clusterWindows ?? none,
    predictMs,
    fit: (lists, now, predictedMs) => {
      const key = lists.map(idOf).join(',');
      let openings = known.get(key);
      const at = now.getTime();
      if (!openings || at < openings.from || at + HORIZON_MS > openings.to) {
        openings = {
          from: at,
          to: at + 2 * HORIZON_MS,
          spans: commonOpenings(lists, now, new Date(at + 2 * HORIZON_MS)),
        };
        known.set(key, openings);
      }
      return fitAmong(openings.spans, now, predictedMs, new Date(at + HORIZON_MS));
    },
  };
}

/** What a unit's window decision needs of its steps. */
export interface WindowStep {
  id: string;
  kind: StepKind;
  agentId: string;
  fromAgentId?: string | null;
  dependsOn: string[];
  runWhen: RunWhen;
  /** Whether the step has ended (skipped, manual, done): it takes no more time. */
  ended: boolean;
}

/**
 * A unit's predicted duration: its steps run after the steps they depend on, so the longest chain
 * (a pair under backup-first: the backup's upgrade, the switchover, the main's upgrade, one after
 * the other; under simultaneous, both upgrades at once). A step that runs only after a failure (a
 * switchback on failure) and a step that ended take no time. Steps come in plan order.
 */
export function unitPredictedMs(steps: WindowStep[], predictMs: RuleWindows['predictMs']): number {
  const finish = new Map<string, number>();
  for (const step of steps) {
    const after = Math.max(0, ...step.dependsOn.map((id) => finish.get(id) ?? 0));
    const own = step.ended || step.runWhen === 'failed' ? 0 : predictMs(step.agentId, step.kind);
    finish.set(step.id, after + own);
  }
  return Math.max(0, ...finish.values());
}

/** The agents a unit stops or hands over between: whose windows it must be inside. */
export function unitAgents(steps: WindowStep[]): string[] {
  const live = steps.filter((s) => !s.ended);
  return [...new Set(live.flatMap((s) => [s.agentId, ...(s.fromAgentId ? [s.fromAgentId] : [])]))];
}

export type WindowGate =
  /** Inside every window of the unit's agents, with time enough left: it may start. */
  | { open: true }
  /** Not now: the unit waits for `opensAt`, the start of the first window long enough. */
  | { open: false; opensAt: Date; why: string }
  /** No window within HORIZON_DAYS is long enough for the prediction: it never will. */
  | { open: false; opensAt: null; why: string };

const minutes = (ms: number) => `${Math.ceil(ms / 60_000)} min`;

/**
 * Whether a unit that has not started may start now: every agent of it inside its windows, and the
 * unit's predicted duration fits before the first of them closes.
 */
export function unitWindowGate(
  steps: WindowStep[],
  windows: RuleWindows,
  now: Date,
  name: (agentId: string) => string = (id) => id,
): WindowGate {
  const agents = unitAgents(steps);
  const predicted = unitPredictedMs(steps, (agentId, kind) => windows.predictMs(agentId, kind));
  const fit = windows.fit(
    agents.map((a) => windows.of(a)),
    now,
    predicted,
  );
  const who = agents.map(name).join(' and ');
  if (!fit)
    return {
      open: false,
      opensAt: null,
      why: `no maintenance window of ${who} in the next ${HORIZON_DAYS} days is long enough for the ${minutes(predicted)} it is predicted to take`,
    };
  if (fit.startsAt.getTime() <= now.getTime()) return { open: true };
  return {
    open: false,
    opensAt: fit.startsAt,
    why: `waits for a maintenance window of ${who} long enough for the ${minutes(predicted)} it is predicted to take`,
  };
}

/**
 * decide's view of the windows for one pass: per unit, its gate (remembered), or null where windows
 * do not apply: the upgrade does not respect them, it is a rollback (which runs at once), or the
 * unit is under way (a command was queued for one of its steps: a unit that began is never held,
 * nor cut, and its later steps follow at once).
 */
export function windowGates(
  upgrade: { windows?: RuleWindows; stage?: string },
  steps: RuleStep[],
  agents: Map<string, Pick<RuleAgent, 'name' | 'peerId'>>,
  now: Date,
): (unit: number) => WindowGate | null {
  const windows = upgrade.windows;
  if (!windows || upgrade.stage === 'rollback') return () => null;
  const units = new Map<number, RuleStep[]>();
  for (const step of steps) units.set(step.unit, [...(units.get(step.unit) ?? []), step]);
  const gates = new Map<number, WindowGate | null>();
  const name = (agentId: string) => agents.get(agentId)?.name ?? agentId;
  const toWindowStep = (s: RuleStep): WindowStep => ({
    ...s,
    // A takeover hands over from the agent's peer: both stop or serve in it.
    fromAgentId: s.kind === 'switchover' || s.kind === 'switchback' ? (agents.get(s.agentId)?.peerId ?? null) : null,
    ended: ENDED_STEP_STATUSES.includes(s.status),
  });
  return (unit) => {
    if (!gates.has(unit)) {
      const own = units.get(unit) ?? [];
      const underWay = own.some((s) => s.commandId !== null);
      gates.set(unit, underWay ? null : unitWindowGate(own.map(toWindowStep), windows, now, name));
    }
    return gates.get(unit)!;
  };
}

/** The window a batch of a plan is expected to run in (the preview shows it). */
export interface BatchWindow {
  batch: number;
  /** Its longest unit's predicted duration, in minutes. */
  predictedMinutes: number;
  /** When its first unit is expected to start: once the batch before it ended, inside its window; null when a unit never fits. */
  expectedStartAt: Date | null;
  /** When its last unit is expected to end. */
  expectedEndAt: Date | null;
  /** From the first opening to the last closing of its units' windows; null when no window limits its agents, or none fits. */
  window: Span | null;
}

export interface PlanWindows {
  batches: BatchWindow[];
  warnings: PlanNotice[];
  refusals: PlanNotice[];
}

/** A plan's units that have work, by batch, in batch order; their steps as WindowSteps. */
function unitsByBatch(plan: Pick<Plan, 'steps'>): Array<[number, WindowStep[][]]> {
  const batches = new Map<number, Map<number, WindowStep[]>>();
  for (const s of plan.steps) {
    const units = batches.get(s.batch) ?? new Map<number, WindowStep[]>();
    batches.set(s.batch, units);
    const step: WindowStep = { ...s, id: s.key, ended: s.status !== 'pending' };
    units.set(s.unit, [...(units.get(s.unit) ?? []), step]);
  }
  return [...batches.entries()]
    .map(([batch, units]): [number, WindowStep[][]] => [
      batch,
      [...units.values()].filter((u) => u.some((s) => !s.ended)),
    ])
    .filter(([, units]) => units.length > 0)
    .sort(([a], [b]) => a - b);
}

/**
 * Where a plan's batches are expected to run with options.respectWindows: each batch once the one
 * before it ended (no pause counted), each unit at the first opening of its agents' windows that
 * holds its predicted duration. A unit no window holds within HORIZON_DAYS refuses the plan (it
 * would wait for ever); agents no window limits are named in a warning.
 */
export function expectedWindows(
  plan: Pick<Plan, 'steps'>,
  windows: RuleWindows,
  now: Date,
  name: (agentId: string) => string = (id) => id,
): PlanWindows {
  const batches: BatchWindow[] = [];
  const tooLong: string[] = [];
  const unlimited = new Set<string>();
  let from: Date | null = now;
  for (const [batch, units] of unitsByBatch(plan)) {
    const runs = units.map((unit) => {
      const agents = unitAgents(unit);
      for (const a of agents) if (windows.of(a).length === 0) unlimited.add(a);
      const predicted = unitPredictedMs(unit, (agentId, kind) => windows.predictMs(agentId, kind));
      const fit =
        from &&
        windows.fit(
          agents.map((a) => windows.of(a)),
          from,
          predicted,
        );
      if (from && !fit) tooLong.push(`${agents.map(name).join(' and ')} (${minutes(predicted)})`);
      return { predicted, fit };
    });
    const predictedMinutes = Math.ceil(Math.max(...runs.map((r) => r.predicted)) / 60_000);
    const fits = runs.map((r) => r.fit);
    if (!from || fits.some((f) => !f)) {
      batches.push({ batch, predictedMinutes, expectedStartAt: null, expectedEndAt: null, window: null });
      from = null;
      continue;
    }
    const starts = fits.map((f) => f!.startsAt.getTime());
    const end = Math.max(...runs.map((r, i) => starts[i] + r.predicted));
    const spans = fits.flatMap((f) => (f!.window ? [f!.window] : []));
    batches.push({
      batch,
      predictedMinutes,
      expectedStartAt: new Date(Math.min(...starts)),
      expectedEndAt: new Date(end),
      window: spans.length
        ? {
            opensAt: new Date(Math.min(...spans.map((s) => s.opensAt.getTime()))),
            closesAt: new Date(Math.max(...spans.map((s) => s.closesAt.getTime()))),
          }
        : null,
    });
    from = new Date(end);
  }
  return {
    batches,
    warnings: unlimited.size
      ? [
          {
            code: 'NO_WINDOWS',
            message: `options.respectWindows: ${[...unlimited].map(name).join(', ')} ${unlimited.size === 1 ? 'has' : 'have'} no maintenance windows (neither its own nor the cluster's), so nothing limits when ${unlimited.size === 1 ? 'it is' : 'they are'} upgraded.`,
            agentIds: [...unlimited],
          },
        ]
      : [],
    refusals: tooLong.length
      ? [
          {
            code: 'NO_WINDOW_FITS',
            message: `options.respectWindows: no maintenance window in the next ${HORIZON_DAYS} days is long enough for ${tooLong.join(', ')}, the time predicted from past upgrades (or phaseTimeoutS); lengthen the windows, or upgrade without respectWindows.`,
          },
        ]
      : [],
  };
}
