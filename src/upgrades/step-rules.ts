import * as semver from 'semver';
import { checkPrerequisites, type Prerequisites } from '../packages/prerequisites';
import type { RunWhen, StepKind } from '../policies/planner';
import type { UpgradeOptions } from '../policies/upgrade-options';
import type { UpgradeStatus } from './upgrade.entity';
import { ENDED_STEP_STATUSES, FAILED_STEP_STATUSES, type StepStatus, type WaitReason } from './upgrade-step.entity';
import { type RuleWindows, type WindowGate, windowGates } from './window-rules';

/**
 * The executor's rules, pure: an upgrade, its steps and its agents as they are now in; what must
 * happen next out. The executor applies the actions in one transaction and only then do agents see
 * any command, so a crash between deciding and applying loses nothing: the next pass decides again.
 */

export interface RuleAgent {
  id: string;
  name: string;
  paired: boolean;
  online: boolean;
  busy: boolean;
  version: string | null;
  webappsVersion: string | null;
  lastUpgradeFailed: boolean;
  facts: { os?: string; freeDiskMb?: number } | null;
  /** In a pair, the member serving now (a standalone agent serves alone: no gate applies). */
  active: boolean;
  /** The other member of its failover pair, if it has one; the map passed to decide holds it. */
  peerId: string | null;
}

export interface RuleStep {
  id: string;
  kind: StepKind;
  agentId: string;
  unit: number;
  batch: number;
  dependsOn: string[];
  runWhen: RunWhen;
  status: StepStatus;
  waitingFor: WaitReason | null;
  waitingSince: Date | null;
  phase: string | null;
  phaseStartedAt: Date | null;
  attempts: number;
  /** The command of the current attempt, queued once the step started. */
  commandId: string | null;
  /** Waiting for `window`: when the window it waits for opens. */
  windowOpensAt?: Date | null;
  /** A rollback round's step: the version its agent goes back to, or runs when it takes over. */
  toVersion?: string | null;
}

export interface RuleUpgrade {
  status: UpgradeStatus;
  options: Pick<UpgradeOptions, 'waitForIdle' | 'idleTimeoutS' | 'offlineTimeoutS' | 'phaseTimeoutS'> &
    Partial<Pick<UpgradeOptions, 'maxMixedMinutes' | 'maxMixedAgents' | 'onBudget'>>;
  /**
   * The mixed-version budget's measures, when the upgrade has a budget: for how many seconds the
   * cluster has run more than one version (counted from the budget's start; null: it does not now),
   * and how many of the upgrade's agents it left behind on another version meanwhile.
   */
  budget?: { mixedForS: number | null; leftBehind: number };
  canaryPending: boolean;
  /** Failed units after which no new unit starts; null = no limit. */
  failureLimit: number | null;
  pkg: { version: string; kind: 'full' | 'webapps'; prerequisites: Prerequisites };
  /** The operator's override of the package's fromVersion prerequisite. */
  ignoreVersionCheck?: boolean;
  /**
   * How long a queued command may wait for its agent to fetch it: offlineTimeoutS, but never less
   * than the server's heartbeat timeout (an online agent may be a whole poll interval away).
   */
  pickupTimeoutS?: number;
  /** options.respectWindows: the agents' maintenance windows and predicted step durations (window-rules.ts). */
  windows?: RuleWindows;
  /**
   * Which steps these are: the upgrade's own, or a rollback round's (docs/rollback.md), which ends
   * `rolled-back` or `rollback-failed` and knows no failure threshold or canary.
   */
  stage?: 'upgrade' | 'rollback';
  /** options.onFailure: `rollback` starts no new unit after a failure, and rolls back once the rest ended. */
  onFailure?: 'stop' | 'rollback';
}

export type StepAction =
  /** `until`: for a `window` wait, when the window it waits for opens. */
  | { type: 'wait'; stepId: string; for: WaitReason; until?: Date }
  /** Queue the step's command (-> waiting for the agent to fetch it; running once it did). */
  | { type: 'start'; stepId: string }
  | { type: 'fail'; stepId: string; error: string }
  /** Its agent was offline, busy or unreachable when its turn came: not a failure of the agent (-> missed). */
  | { type: 'miss'; stepId: string; reason: string }
  /** Will not run: a step it needs did not succeed, or the failure threshold stopped new units (-> cancelled). */
  | { type: 'block'; stepId: string; reason: string; cause: 'dependency' | 'threshold' }
  /** Not needed: a conditional step whose condition did not hold (-> skipped). */
  | { type: 'skip'; stepId: string; reason: string };

export type UpgradeAction =
  /** `by`: what part of Lockstep acted, for the audit trail (docs/audit.md). */
  | { type: 'pause'; reason: string; by: 'budget' | 'canary' }
  /** A failure under onFailure: rollback, once every step ended, or a spent budget: the upgrade rolls back. */
  | { type: 'rollback'; reason: string; by: 'budget' | 'failure-policy' }
  | {
      type: 'finish';
      status: Extract<
        UpgradeStatus,
        'succeeded' | 'failed' | 'completed-with-errors' | 'cancelled' | 'rolled-back' | 'rollback-failed'
      >;
      reason: string | null;
    };

export interface Decision {
  steps: StepAction[];
  upgrade: UpgradeAction | null;
}

const ended = (s: StepStatus) => ENDED_STEP_STATUSES.includes(s);

/** The step's command is out: queued for its agent (not fetched yet) or being carried out. */
export const commandOut = (status: StepStatus, waitingFor: WaitReason | null): boolean =>
  status === 'running' || (status === 'waiting' && waitingFor === 'pickup');
const failed = (s: StepStatus) => FAILED_STEP_STATUSES.includes(s);
const seconds = (from: Date | null, now: Date) => (from ? (now.getTime() - from.getTime()) / 1000 : 0);

/**
 * One call of decide: the actions so far, and the statuses they leave, so a block cascades to later
 * steps in the same pass.
 */
class Pass {
  readonly actions: StepAction[] = [];
  private readonly status: Map<string, StepStatus>;
  private readonly unitOf: Map<string, number>;
  /** Units with a failed step, kept as actions fail steps: the threshold check stays O(1) per step. */
  private readonly failedUnitSet: Set<number>;

  constructor(steps: RuleStep[]) {
    this.status = new Map(steps.map((s) => [s.id, s.status]));
    this.unitOf = new Map(steps.map((s) => [s.id, s.unit]));
    this.failedUnitSet = new Set(steps.filter((s) => failed(s.status)).map((s) => s.unit));
  }

  statusOf(stepId: string): StepStatus {
    return this.status.get(stepId)!;
  }

  get failedUnits(): number {
    return this.failedUnitSet.size;
  }

  act(action: StepAction, next?: StepStatus): void {
    this.actions.push(action);
    if (next) this.status.set(action.stepId, next);
    if (next && failed(next)) this.failedUnitSet.add(this.unitOf.get(action.stepId)!);
  }
}

/** What every step of one pass is judged against. */
interface PassContext {
  upgrade: RuleUpgrade;
  agents: Map<string, RuleAgent>;
  now: Date;
  pass: Pass;
  byId: Map<string, RuleStep>;
  /** The lowest batch with a step not ended: batches run one after the other. */
  currentBatch: number;
  thresholdReached: () => boolean;
  peerUpgrading: (agentId: string) => boolean;
  /** With options.respectWindows, a unit's window gate; null where windows do not apply. */
  windowGate: (unit: number) => WindowGate | null;
}

export function decide(given: RuleUpgrade, steps: RuleStep[], agents: Map<string, RuleAgent>, now: Date): Decision {
  const upgrade = asRunning(given);
  if (!['running', 'paused', 'cancelled'].includes(upgrade.status)) return { steps: [], upgrade: null };
  const pass = new Pass(steps);
  timeOutCommands(upgrade, steps, agents, now, pass);
  const currentBatch = lowestOpenBatch(steps, pass);
  const halted = haltBeforeSteps(upgrade, steps, pass, currentBatch);
  if (halted !== undefined) return { steps: pass.actions, upgrade: halted };

  const upgradeStepsOf = upgradeStepsByAgent(steps);
  const context: PassContext = {
    upgrade,
    agents,
    now,
    pass,
    byId: new Map(steps.map((s) => [s.id, s])),
    currentBatch,
    thresholdReached: () => thresholdReached(upgrade, pass.failedUnits),
    peerUpgrading: (peerId) => (upgradeStepsOf.get(peerId) ?? []).some((s) => stopsWithIt(s, pass.statusOf(s.id))),
    windowGate: windowGates(upgrade, steps, agents, now),
  };
  for (const unit of groupByUnit(steps).values()) {
    // Under way once a command of it was queued: a unit still waiting for its agents, its peer or
    // its window has not started, and the failure threshold (or onFailure) still stops it.
    const started = unit.some((s) => s.attempts > 0 || pass.statusOf(s.id) === 'running');
    for (const step of unit) driveStep(context, step, started);
  }
  if (!steps.every((s) => ended(pass.statusOf(s.id)))) return { steps: pass.actions, upgrade: null };
  return { steps: pass.actions, upgrade: ending(upgrade, steps, pass, agents) };
}

/** A rollback round runs as an upgrade does; no canary, no threshold (its failures are reported). */
function asRunning(given: RuleUpgrade): RuleUpgrade {
  if (given.stage !== 'rollback') return given;
  return { ...given, status: given.status === 'rolling-back' ? 'running' : given.status, canaryPending: false };
}

/**
 * What stops the pass before any step is driven: a cancelled upgrade (it finishes once no command
 * is out), a mixed-version budget that ran out, canary units that ended. undefined: go on.
 */
function haltBeforeSteps(
  upgrade: RuleUpgrade,
  steps: RuleStep[],
  pass: Pass,
  currentBatch: number,
): UpgradeAction | null | undefined {
  if (upgrade.status === 'cancelled') {
    // A step whose command is out (running, or queued for the agent) ends with the agent's report.
    const running = steps.some((s) => commandOut(pass.statusOf(s.id), s.waitingFor));
    return running ? null : { type: 'finish', status: 'cancelled', reason: null };
  }
  const spent = upgrade.status === 'running' && upgrade.stage !== 'rollback' ? budgetSpent(upgrade) : null;
  if (spent)
    return { type: upgrade.options.onBudget === 'rollback' ? 'rollback' : 'pause', reason: spent, by: 'budget' };
  if (upgrade.status === 'running' && upgrade.canaryPending && currentBatch > 0 && Number.isFinite(currentBatch))
    return { type: 'pause', reason: 'the canary units ended: check them, then resume the upgrade', by: 'canary' };
  return undefined;
}

/** Every step ended: how the upgrade (or its rollback round) ends, or that it rolls back (onFailure). */
function ending(upgrade: RuleUpgrade, steps: RuleStep[], pass: Pass, agents: Map<string, RuleAgent>): UpgradeAction {
  const statusOf = (id: string) => pass.statusOf(id);
  if (upgrade.stage === 'rollback') return finishRollback(steps, statusOf, agents);
  const end = finish(steps, statusOf, thresholdReached(upgrade, pass.failedUnits));
  if (upgrade.onFailure === 'rollback' && pass.failedUnits > 0)
    return { type: 'rollback', reason: `options.onFailure is rollback: ${end.reason}`, by: 'failure-policy' };
  return end;
}

/** Whether no new unit may start: the failure threshold, or any failure under onFailure: rollback. */
function thresholdReached(upgrade: RuleUpgrade, failedUnits: number): boolean {
  if (upgrade.stage === 'rollback') return false;
  if (upgrade.onFailure === 'rollback') return failedUnits > 0;
  return upgrade.failureLimit !== null && failedUnits >= upgrade.failureLimit;
}

/** A rollback round whose steps all ended: rolled back when each did its part, else why not. */
function finishRollback(
  steps: RuleStep[],
  statusOf: (stepId: string) => StepStatus,
  agents: Map<string, RuleAgent>,
): UpgradeAction {
  const notDone = steps.filter((s) => !['succeeded', 'skipped'].includes(statusOf(s.id)));
  if (notDone.length === 0) return { type: 'finish', status: 'rolled-back', reason: null };
  const named = notDone
    .slice(0, 5)
    .map((s) => `the ${s.kind} of ${agents.get(s.agentId)?.name ?? s.agentId} ended ${statusOf(s.id)}`);
  return {
    type: 'finish',
    status: 'rollback-failed',
    reason: `${notDone.length} rollback step(s) did not succeed (${named.join('; ')}${notDone.length > 5 ? '; ...' : ''}); each step says why, and a new rollback picks up from there`,
  };
}

/**
 * Which mixed-version budget ran out, in words (the reason of the pause or rollback), or null:
 * the cluster ran more than one version for longer than maxMixedMinutes, or more of the upgrade's
 * agents than maxMixedAgents were left behind on another version while others run the new one.
 */
export function budgetSpent(upgrade: Pick<RuleUpgrade, 'options' | 'budget'>): string | null {
  const { maxMixedMinutes, maxMixedAgents, onBudget } = upgrade.options;
  const { mixedForS, leftBehind } = upgrade.budget ?? { mixedForS: null, leftBehind: 0 };
  const then = onBudget === 'rollback' ? 'rolled back' : 'paused';
  if (maxMixedMinutes !== undefined && mixedForS !== null && mixedForS > maxMixedMinutes * 60)
    return `the mixed-version budget ran out (maxMixedMinutes ${maxMixedMinutes}): the cluster has run more than one version for ${Math.floor(mixedForS / 60)} min; ${then}`;
  if (maxMixedAgents !== undefined && leftBehind > maxMixedAgents)
    return `the mixed-version budget ran out (maxMixedAgents ${maxMixedAgents}): ${leftBehind} agent(s) were left behind on another version; ${then}`;
  return null;
}

/** Batches run one after the other: the current one is the lowest with a step not ended (none: Infinity). */
function lowestOpenBatch(steps: RuleStep[], pass: Pass): number {
  let currentBatch = Number.POSITIVE_INFINITY;
  for (const step of steps) if (!ended(pass.statusOf(step.id)) && step.batch < currentBatch) currentBatch = step.batch;
  return currentBatch;
}

/** Each agent's upgrade steps in this upgrade, for the pair gate. */
function upgradeStepsByAgent(steps: RuleStep[]): Map<string, RuleStep[]> {
  const upgradeStepsOf = new Map<string, RuleStep[]>();
  for (const s of steps)
    if (s.kind === 'upgrade') upgradeStepsOf.set(s.agentId, [...(upgradeStepsOf.get(s.agentId) ?? []), s]);
  return upgradeStepsOf;
}

/**
 * A running step whose phase outlasts phaseTimeoutS fails; a command queued but not fetched within
 * the pickup limit is missed (the agent never began, so nothing on its host changed).
 */
function timeOutCommands(
  upgrade: RuleUpgrade,
  steps: RuleStep[],
  agents: Map<string, RuleAgent>,
  now: Date,
  pass: Pass,
): void {
  const pickupLimit = Math.max(upgrade.options.offlineTimeoutS, upgrade.pickupTimeoutS ?? 0);
  for (const step of steps) {
    if (step.status === 'running' && seconds(step.phaseStartedAt, now) > upgrade.options.phaseTimeoutS) {
      const error = `phase ${step.phase ?? 'start'} ran longer than phaseTimeoutS (${upgrade.options.phaseTimeoutS}s)`;
      pass.act({ type: 'fail', stepId: step.id, error }, 'failed');
    } else if (
      step.status === 'waiting' &&
      step.waitingFor === 'pickup' &&
      seconds(step.waitingSince, now) > pickupLimit
    ) {
      const name = agents.get(step.agentId)?.name ?? step.agentId;
      const reason = `${name} did not fetch its command within ${pickupLimit}s`;
      pass.act({ type: 'miss', stepId: step.id, reason }, 'missed');
    }
  }
}

/** The next action of one step that has not ended and has no command out, if any. */
function driveStep(context: PassContext, step: RuleStep, unitStarted: boolean): void {
  const { upgrade, pass } = context;
  const current = pass.statusOf(step.id);
  if (ended(current) || commandOut(current, step.waitingFor)) return;
  if (!unitStarted && !mayStartUnit(context, step)) return;
  if (upgrade.status === 'paused') return; // no new step starts; running ones finish

  const deps = step.dependsOn.map((id) => ({ step: context.byId.get(id)!, status: pass.statusOf(id) }));
  if (deps.some((d) => !ended(d.status))) {
    if (current !== 'waiting' || step.waitingFor !== 'dependencies')
      pass.act({ type: 'wait', stepId: step.id, for: 'dependencies' }, 'waiting');
    return;
  }
  const verdict = judgeDependencies(step.runWhen, deps);
  if (verdict.run === false) {
    pass.act(
      verdict.block
        ? { type: 'block', stepId: step.id, reason: verdict.reason, cause: 'dependency' }
        : { type: 'skip', stepId: step.id, reason: verdict.reason },
      verdict.block ? 'cancelled' : 'skipped',
    );
    return;
  }
  if (heldByWindow(context, step)) return;
  const afterFailure = deps.some((d) => failed(d.status));
  const afterUpgrade = deps.some((d) => d.step.kind === 'upgrade' && d.step.agentId === step.agentId);
  const next = readiness(upgrade, step, context.agents, {
    afterFailure,
    afterUpgrade,
    peerUpgrading: context.peerUpgrading,
  });
  actOnReadiness(context, step, next);
}

/**
 * With options.respectWindows, a unit nothing of which has run yet starts only inside its agents'
 * maintenance windows, with time enough left for its predicted duration (window-rules.ts): a step
 * that would start waits for `window` instead, until the opening it fits in, with no time limit;
 * with no window long enough in sight it misses its turn. A unit under way is never held.
 */
function heldByWindow(context: PassContext, step: RuleStep): boolean {
  const gate = context.windowGate(step.unit);
  if (!gate || gate.open) return false;
  const { pass } = context;
  if (gate.opensAt === null) {
    pass.act({ type: 'miss', stepId: step.id, reason: gate.why }, 'missed');
    return true;
  }
  const same =
    pass.statusOf(step.id) === 'waiting' &&
    step.waitingFor === 'window' &&
    step.windowOpensAt?.getTime() === gate.opensAt.getTime();
  if (!same) pass.act({ type: 'wait', stepId: step.id, for: 'window', until: gate.opensAt }, 'waiting');
  return true;
}

/**
 * Whether a step of a unit not started yet may go on: not once the failure threshold is reached
 * (it is blocked), nor in a later batch, nor while the upgrade is paused.
 */
function mayStartUnit(context: PassContext, step: RuleStep): boolean {
  const { upgrade, pass } = context;
  if (context.thresholdReached()) {
    const reason = `not started: ${pass.failedUnits} unit(s) failed, which reached the failure threshold`;
    pass.act({ type: 'block', stepId: step.id, reason, cause: 'threshold' }, 'cancelled');
    return false;
  }
  return step.batch <= context.currentBatch && upgrade.status !== 'paused';
}

/** Starts, fails, or waits for what is missing: missed (or, for a shut gate, failed) past its limit. */
function actOnReadiness(context: PassContext, step: RuleStep, next: Readiness): void {
  const { upgrade, pass } = context;
  if (next.ready) {
    pass.act({ type: 'start', stepId: step.id }, 'waiting');
    return;
  }
  if ('error' in next) {
    pass.act({ type: 'fail', stepId: step.id, error: next.error }, 'failed');
    return;
  }
  const sameWait = pass.statusOf(step.id) === 'waiting' && step.waitingFor === next.waitFor;
  const limit =
    next.waitFor === 'idle'
      ? upgrade.options.idleTimeoutS
      : next.waitFor === 'gate'
        ? upgrade.options.phaseTimeoutS
        : upgrade.options.offlineTimeoutS;
  if (sameWait && seconds(step.waitingSince, context.now) > limit) {
    // A switchover's gate that never opened is a failure of the agent taking over; an agent
    // that was away or busy (or a serving member whose peer could not take over) missed its turn.
    if (next.waitFor === 'gate')
      pass.act({ type: 'fail', stepId: step.id, error: `${next.why} for longer than ${limit}s` }, 'failed');
    else pass.act({ type: 'miss', stepId: step.id, reason: `${next.why} for longer than ${limit}s` }, 'missed');
  } else if (!sameWait) {
    pass.act({ type: 'wait', stepId: step.id, for: next.waitFor }, 'waiting');
  }
}

function groupByUnit(steps: RuleStep[]): Map<number, RuleStep[]> {
  const units = new Map<number, RuleStep[]>();
  for (const step of steps) {
    const unit = units.get(step.unit);
    if (unit) unit.push(step);
    else units.set(step.unit, [step]);
  }
  return units;
}

type Verdict = { run: true } | { run: false; block: boolean; reason: string };

function judgeDependencies(runWhen: RunWhen, deps: Array<{ step: RuleStep; status: StepStatus }>): Verdict {
  const describe = (d: { step: RuleStep; status: StepStatus }) =>
    `the ${d.step.kind} step of agent ${d.step.agentId} ended ${d.status}`;
  const notOk = deps.find((d) => d.status !== 'succeeded' && d.status !== 'skipped');
  if (runWhen === 'succeeded')
    return notOk ? { run: false, block: true, reason: `blocked: ${describe(notOk)}` } : { run: true };
  if (runWhen === 'failed') {
    return deps.some((d) => failed(d.status))
      ? { run: true }
      : { run: false, block: false, reason: 'not needed: the step it guards did not fail' };
  }
  // 'ended': after the step it follows ended, unless that step never ran (then nothing changed hands).
  const neverRan = deps.find((d) => d.status === 'cancelled' || d.status === 'missed');
  return neverRan ? { run: false, block: false, reason: `not needed: ${describe(neverRan)}` } : { run: true };
}

/**
 * Whether a peer's upgrade step goes with this one (simultaneous): it runs or ran, or may start now
 * (no step before it). A peer's step that waits for steps before it (a backup-first unit) does not.
 */
export function stopsWithIt(peerStep: Pick<RuleStep, 'kind' | 'dependsOn'>, status: StepStatus): boolean {
  if (peerStep.kind !== 'upgrade') return false;
  return (
    status === 'running' ||
    status === 'succeeded' ||
    ((status === 'pending' || status === 'waiting') && peerStep.dependsOn.length === 0)
  );
}

/**
 * Why stopping this agent now would leave its pair with no member serving, or null when it may
 * stop: it is the standby, it has no peer, or its peer is online, healthy and upgraded with it in
 * the same upgrade (simultaneous). Checked when its step would start and again when the agent
 * fetches the command, since the peer may fail or go away in between.
 */
export function pairGate(
  agent: Pick<RuleAgent, 'name' | 'active'>,
  peer: Pick<RuleAgent, 'id' | 'name' | 'online' | 'lastUpgradeFailed'> | undefined,
  peerUpgrading: (agentId: string) => boolean,
): string | null {
  if (!agent.active || !peer) return null;
  const problem = !peer.online
    ? 'is offline'
    : peer.lastUpgradeFailed
      ? 'failed its last upgrade'
      : !peerUpgrading(peer.id)
        ? 'has not taken over'
        : null;
  return problem
    ? `${agent.name} serves its pair and ${peer.name} ${problem}, so stopping it would leave no member serving`
    : null;
}

type Readiness = { ready: true } | { ready: false; error: string } | { ready: false; waitFor: WaitReason; why: string };

interface ReadinessContext {
  /** A step it depends on failed (a switchback after a failed upgrade). */
  afterFailure: boolean;
  /** It follows an upgrade of the same agent (a switchover to a freshly upgraded standby). */
  afterUpgrade: boolean;
  /** Whether an agent has an upgrade step in this upgrade that is about to run, running or done. */
  peerUpgrading: (agentId: string) => boolean;
}

/**
 * Whether a step whose dependencies allow it can start now. An upgrade needs its agent online and,
 * with waitForIdle, idle, and its prerequisites met on fresh facts; a serving pair member also
 * needs its peer online, healthy and upgraded with it (simultaneous), since otherwise stopping it
 * leaves the pair with no member to serve: plans hand over first, and this gate holds whatever the
 * plan. A switchover or switchback is gated like a database failover: the agent taking over is
 * online, idle and healthy, and on the package version when it was just upgraded for it (after a
 * failed upgrade it takes back over on the version it rolled back to; before an upgrade of its
 * peer it takes over on the version it runs).
 */
function readiness(
  upgrade: RuleUpgrade,
  step: RuleStep,
  agents: Map<string, RuleAgent>,
  context: ReadinessContext,
): Readiness {
  const agent = agents.get(step.agentId);
  if (!agent) return { ready: false, error: `agent ${step.agentId} was removed` };
  if (step.kind === 'manual') return { ready: false, error: 'manual steps are not run by the executor' };
  if (!agent.paired || !agent.online)
    return { ready: false, waitFor: 'online', why: `${agent.name} was ${agent.paired ? 'offline' : 'never paired'}` };
  if (step.kind === 'upgrade') return upgradeReadiness(upgrade, agent, agents, context);
  if (step.kind === 'rollback') return rollbackReadiness(upgrade, agent, agents);
  return upgrade.stage === 'rollback'
    ? takeoverAfterRollback(upgrade, agent, step)
    : takeoverReadiness(upgrade, agent, context);
}

/**
 * A rollback stops its agent: idle with waitForIdle, and never the pair's serving member (no
 * rollback runs together with its peer's: the plan hands over first, and this gate holds whatever
 * the plan says).
 */
function rollbackReadiness(upgrade: RuleUpgrade, agent: RuleAgent, agents: Map<string, RuleAgent>): Readiness {
  if (agent.busy && upgrade.options.waitForIdle)
    return { ready: false, waitFor: 'idle', why: `${agent.name} stayed busy` };
  const unsafe = pairGate(agent, agent.peerId ? agents.get(agent.peerId) : undefined, () => false);
  return unsafe ? { ready: false, waitFor: 'peer', why: unsafe } : { ready: true };
}

/** A switchover of a rollback: the agent taking over is idle and runs what it ran before the upgrade. */
function takeoverAfterRollback(upgrade: RuleUpgrade, agent: RuleAgent, step: RuleStep): Readiness {
  const installed = upgrade.pkg.kind === 'webapps' ? agent.webappsVersion : agent.version;
  const wanted = step.toVersion ?? null;
  const problems: string[] = [];
  if (agent.busy) problems.push('busy');
  if (installed !== wanted) problems.push(`runs ${installed ?? 'no version'}, not ${wanted ?? 'none'}`);
  if (problems.length === 0) return { ready: true };
  return { ready: false, waitFor: 'gate', why: `${agent.name} could not take over (${problems.join(', ')})` };
}

/** An upgrade: its agent idle (with waitForIdle), the pair gate open, the prerequisites met on fresh facts. */
function upgradeReadiness(
  upgrade: RuleUpgrade,
  agent: RuleAgent,
  agents: Map<string, RuleAgent>,
  context: ReadinessContext,
): Readiness {
  if (agent.busy && upgrade.options.waitForIdle)
    return { ready: false, waitFor: 'idle', why: `${agent.name} stayed busy` };
  const unsafe = pairGate(agent, agent.peerId ? agents.get(agent.peerId) : undefined, context.peerUpgrading);
  if (unsafe) return { ready: false, waitFor: 'peer', why: unsafe };
  const prerequisites = upgrade.ignoreVersionCheck
    ? { ...upgrade.pkg.prerequisites, fromVersion: undefined }
    : upgrade.pkg.prerequisites;
  const check = checkPrerequisites({ ...upgrade.pkg, prerequisites }, [
    { id: agent.id, name: agent.name, version: agent.version, facts: agent.facts },
  ]);
  if (check.failures.length > 0) {
    return {
      ready: false,
      error: `prerequisites unmet: ${check.failures.map((f) => `${f.check} requires ${f.required}, agent has ${f.actual}`).join('; ')}`,
    };
  }
  return { ready: true };
}

/** A switchover or switchback: the agent taking over is idle and healthy, on the version when just upgraded for it. */
function takeoverReadiness(upgrade: RuleUpgrade, agent: RuleAgent, context: ReadinessContext): Readiness {
  const installed = upgrade.pkg.kind === 'webapps' ? agent.webappsVersion : agent.version;
  const onVersion = !!installed && semver.valid(installed) !== null && semver.eq(installed, upgrade.pkg.version);
  const problems: string[] = [];
  if (agent.busy) problems.push('busy');
  if (!context.afterFailure && agent.lastUpgradeFailed) problems.push('its last upgrade failed');
  if (!context.afterFailure && context.afterUpgrade && !onVersion)
    problems.push(`runs ${installed ?? 'an unknown version'}, not ${upgrade.pkg.version}`);
  if (problems.length === 0) return { ready: true };
  return { ready: false, waitFor: 'gate', why: `${agent.name} could not take over (${problems.join(', ')})` };
}

function finish(steps: RuleStep[], statusOf: (stepId: string) => StepStatus, thresholdReached: boolean): UpgradeAction {
  const finalStatus = (s: RuleStep) => statusOf(s.id);
  const failures = steps.filter((s) => failed(finalStatus(s)));
  const upgraded = steps.filter((s) => s.kind === 'upgrade' && finalStatus(s) === 'succeeded');
  const missed = new Set(steps.filter((s) => finalStatus(s) === 'missed').map((s) => s.agentId)).size;
  if (failures.length === 0) {
    // Agents that were away or busy are not failures: auto-upgrade brings them up once back. Steps
    // blocked by a missed step, or by one that succeeded late (see finishedLate), did not run: said too.
    const blocked = steps.filter((s) => finalStatus(s) === 'cancelled').length;
    const notes = [
      ...(missed
        ? [
            `${missed} agent(s) missed their turn (offline, busy or their pair could not hand over); auto-upgrade or a retry brings them up`,
          ]
        : []),
      ...(blocked ? [`${blocked} step(s) did not run (each step says why); a retry runs them`] : []),
    ];
    return { type: 'finish', status: 'succeeded', reason: notes.length ? notes.join('; ') : null };
  }
  const reason = `${failures.length} step(s) failed${thresholdReached ? ', which reached the failure threshold' : ''}`;
  if (thresholdReached && steps.some((s) => finalStatus(s) === 'cancelled'))
    return { type: 'finish', status: 'failed', reason };
  return { type: 'finish', status: upgraded.length > 0 ? 'completed-with-errors' : 'failed', reason };
}

/**
 * How an upgrade whose steps have all ended ends, as decide judges it: for a finished upgrade
 * judged again after one of its steps turned out to have succeeded (see finishedLate).
 */
export function judgeEnd(steps: RuleStep[], failureLimit: number | null): UpgradeAction {
  const status = new Map(steps.map((s) => [s.id, s.status]));
  const failedUnits = new Set(steps.filter((s) => failed(s.status)).map((s) => s.unit)).size;
  return finish(steps, (id) => status.get(id)!, failureLimit !== null && failedUnits >= failureLimit);
}

/**
 * Whether an upgrade step the server failed while its agent was still at it in fact finished: its
 * phase ran past phaseTimeoutS, so the executor failed the step and withdrew the command after the
 * agent had fetched it (no end was ever recorded: the agent's late report is refused), and the
 * agent now reports, on a heartbeat, the version the step installs. Its report is what happened:
 * the step succeeded (late), and its agent runs that version and is no longer failed. Steps the
 * failure already blocked, switched back or stopped by the failure threshold stay as they ended:
 * the upgrade has moved past them (docs/operations.md).
 */
export function finishedLate(
  step: Pick<RuleStep, 'kind' | 'status' | 'commandId'>,
  command: { id: string; status: string; fetchedAt: Date | null } | null,
  agent: Pick<RuleAgent, 'online' | 'version' | 'webappsVersion'>,
  pkg: Pick<RuleUpgrade['pkg'], 'version' | 'kind'>,
): boolean {
  if (step.kind !== 'upgrade' || step.status !== 'failed' || !command || command.id !== step.commandId) return false;
  if (command.status !== 'cancelled' || command.fetchedAt === null || !agent.online) return false;
  const installed = pkg.kind === 'webapps' ? agent.webappsVersion : agent.version;
  return !!installed && semver.valid(installed) !== null && semver.eq(installed, pkg.version);
}

/** The upgrade's percent: every step that does work counts the same; ended steps count whole. */
export function upgradePercent(steps: Array<Pick<RuleStep, 'status'> & { percent: number }>): number {
  return percentFromSummary(steps.map((s) => ({ status: s.status, count: 1, percent: s.percent })));
}

/** The same, from per-status counts and percent sums (as one GROUP BY query gives them). */
export function percentFromSummary(summary: Array<{ status: StepStatus; count: number; percent: number }>): number {
  let counted = 0;
  let sum = 0;
  for (const { status, count, percent } of summary) {
    if (status === 'skipped' || status === 'manual') continue;
    counted += count;
    sum += ended(status) ? 100 * count : status === 'running' ? percent : 0;
  }
  return counted === 0 ? 100 : Math.floor(sum / counted);
}
