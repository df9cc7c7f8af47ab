import type { PlanNotice, PlannedStep } from './planner';

/**
 * The rollback planner: an upgrade's record (the agents as they were before it, the backups its
 * steps took) and the agents as they are now in; the steps that bring them back out. Pure, like
 * the upgrade planner. The rules are in docs/rollback.md:
 *
 * - An agent is rolled back when what the package installs (its version, or its web-apps version)
 *   is not what it was before the upgrade; with the data of the backup the upgrade took.
 * - Pair-aware whatever the upgrade's policy: the serving member is never stopped. Its standby is
 *   rolled back first, takes over once it is back and healthy (a switchover), and only then is the
 *   former serving member rolled back. Last, the member that served before the upgrade takes back
 *   over, so each pair's roles are as they were.
 * - Every agent the plan cannot bring back is a refusal, and the whole rollback is refused: no
 *   backup, no version recorded before, or a later upgrade changed it since.
 */

export interface RollbackPriorAgent {
  version: string | null;
  webappsVersion: string | null;
  active: boolean;
  failoverGroup: string | null;
}

export interface RollbackAgent {
  id: string;
  name: string;
  failoverGroup: string | null;
  active: boolean;
  version: string | null;
  webappsVersion: string | null;
}

export interface RollbackRequest {
  pkg: { version: string; kind: 'full' | 'webapps' };
  /** The upgrade's agents and their peers, by id, as they were before it. */
  prior: Record<string, RollbackPriorAgent>;
  /** Those agents as they are now; one missing was removed since. */
  agents: RollbackAgent[];
  /** The backup each agent's upgrade step reported taking (its last attempt's), by agent id. */
  backups: Record<string, string | null | undefined>;
  /** The batch each agent's upgrade step ran in: the rollback keeps the upgrade's pace. */
  batchOf: Record<string, number | undefined>;
  /** Agents a later upgrade changed since, with that upgrade's id. */
  changedLater: Record<string, string | undefined>;
  /** Agents whose upgrade step the server gave up on while they were at it: what they run is unknown. */
  outcomeUnknown?: string[];
}

/** A rollback's step: a planned step with the version it brings its agent back to (see UpgradeStep.toVersion). */
export interface RollbackStep extends PlannedStep {
  kind: 'rollback' | 'switchover';
  toVersion: string | null;
  /** A rollback step's: the backup it restores. */
  backup: string | null;
}

export interface RollbackPlan {
  steps: RollbackStep[];
  units: number;
  batches: number;
  /** Agents left as they are, and why (already back, removed). */
  notes: PlanNotice[];
  refusals: PlanNotice[];
}

const installed = (a: Pick<RollbackAgent, 'version' | 'webappsVersion'>, kind: 'full' | 'webapps') =>
  kind === 'webapps' ? a.webappsVersion : a.version;

/** The steps of one unit (a standalone agent, or a pair), chained: each runs once the one before succeeded. */
class UnitSteps {
  readonly steps: RollbackStep[] = [];
  constructor(private readonly group: string | null) {}

  add(step: Omit<RollbackStep, 'dependsOn' | 'runWhen' | 'status' | 'unit' | 'batch' | 'failoverGroup'>): void {
    const before = this.steps.at(-1);
    this.steps.push({
      ...step,
      failoverGroup: this.group,
      unit: 0,
      batch: 0,
      dependsOn: before ? [before.key] : [],
      runWhen: 'succeeded',
      status: 'pending',
    });
  }
}

export function planRollback(request: RollbackRequest): RollbackPlan {
  const { pkg, prior } = request;
  const notes: PlanNotice[] = [];
  const refusals: PlanNotice[] = [];
  const now = new Map(request.agents.map((a) => [a.id, a]));
  const changed = new Set<string>();

  for (const id of request.outcomeUnknown ?? []) {
    const name = now.get(id)?.name ?? id;
    refusals.push({
      code: 'OUTCOME_UNKNOWN',
      message: `${name}'s upgrade step was failed by the server while the agent was at it: what it runs is unknown until it reports again (a late finish is recorded then); roll back after that`,
      agentIds: [id],
    });
  }
  for (const [id, before] of Object.entries(prior)) {
    const agent = now.get(id);
    if (!agent) {
      notes.push({ code: 'AGENT_REMOVED', message: `agent ${id} was removed since the upgrade`, agentIds: [id] });
      continue;
    }
    const was = installed(before, pkg.kind);
    if (installed(agent, pkg.kind) === was) continue;
    const refusal = refusalOf(request, agent, was);
    if (refusal) refusals.push(refusal);
    else if (!request.outcomeUnknown?.includes(id)) changed.add(id);
  }
  const unknown = new Set(request.outcomeUnknown ?? []);
  const back = Object.keys(prior).filter((id) => now.has(id) && !changed.has(id) && !unknown.has(id));
  if (back.length)
    notes.push({
      code: 'ALREADY_BACK',
      message: `${back.length} agent(s) run what they ran before the upgrade: nothing to roll back there`,
      agentIds: back,
    });
  refusals.push(...unclearPairs(request, now));
  if (refusals.length) return { steps: [], units: 0, batches: 0, notes, refusals };

  const units = [
    ...pairsOf(request, now).map((members) => pairUnit(request, members, changed)),
    ...[...changed].filter((id) => !pairOf(request, now, id)).map((id) => standaloneUnit(request, now.get(id)!)),
  ].filter((u) => u.steps.length > 0);
  return { ...numbered(request, units), notes, refusals };
}

/** Why this changed agent cannot be brought back, or null. */
function refusalOf(request: RollbackRequest, agent: RollbackAgent, was: string | null): PlanNotice | null {
  const later = request.changedLater[agent.id];
  if (later)
    return {
      code: 'CHANGED_SINCE',
      message: `${agent.name} was changed by a later upgrade (${later}): roll that one back first`,
      agentIds: [agent.id],
    };
  if (request.pkg.kind === 'full' && was === null)
    return {
      code: 'NO_PRIOR_VERSION',
      message: `${agent.name} reported no version before the upgrade: there is no version to go back to`,
      agentIds: [agent.id],
    };
  if (!request.backups[agent.id])
    return {
      code: 'NO_BACKUP',
      message: `${agent.name} has no backup from this upgrade (it ran without the backup phase, or its agent did not report one): restore it by hand`,
      agentIds: [agent.id],
    };
  return null;
}

/** The failover pairs among the upgrade's agents, both members still there. */
function pairsOf(request: RollbackRequest, now: Map<string, RollbackAgent>): RollbackAgent[][] {
  const groups = new Map<string, RollbackAgent[]>();
  for (const id of Object.keys(request.prior)) {
    const agent = now.get(id);
    if (!agent?.failoverGroup) continue;
    groups.set(agent.failoverGroup, [...(groups.get(agent.failoverGroup) ?? []), agent]);
  }
  return [...groups.values()].filter((members) => members.length === 2);
}

/** Pairs whose two members both serve now: stopping either would leave one serving, not knowing which; fix the roles first. */
function unclearPairs(request: RollbackRequest, now: Map<string, RollbackAgent>): PlanNotice[] {
  return pairsOf(request, now)
    .filter((members) => members.every((m) => m.active))
    .map((members) => ({
      code: 'PAIR_ROLES_UNCLEAR',
      message: `both ${members[0].name} and ${members[1].name} serve pair ${members[0].failoverGroup}: make one the standby first`,
      agentIds: members.map((m) => m.id),
    }));
}

function pairOf(request: RollbackRequest, now: Map<string, RollbackAgent>, id: string): boolean {
  const group = now.get(id)?.failoverGroup;
  return !!group && pairsOf(request, now).some((members) => members[0].failoverGroup === group);
}

function rollbackStep(request: RollbackRequest, agent: RollbackAgent): Parameters<UnitSteps['add']>[0] {
  return {
    key: `rollback:${agent.id}`,
    kind: 'rollback',
    agentId: agent.id,
    fromAgentId: null,
    toVersion: installed(request.prior[agent.id], request.pkg.kind),
    backup: request.backups[agent.id] ?? null,
    note: null,
  };
}

function standaloneUnit(request: RollbackRequest, agent: RollbackAgent): UnitSteps {
  const unit = new UnitSteps(agent.failoverGroup);
  unit.add(rollbackStep(request, agent));
  return unit;
}

/**
 * A pair: the standby first, then a switchover to it and the former serving member, then the
 * roles as they were. A pair with no member serving (or both) has no one to protect: its members
 * are rolled back one after the other, and the member that served before takes over at the end.
 */
function pairUnit(request: RollbackRequest, members: RollbackAgent[], changed: Set<string>): UnitSteps {
  const unit = new UnitSteps(members[0].failoverGroup);
  const serving = members.filter((m) => m.active);
  const takeOver = (to: RollbackAgent, from: RollbackAgent, n: number) =>
    unit.add({
      key: `switchover:${n}:${from.id}>${to.id}`,
      kind: 'switchover',
      agentId: to.id,
      fromAgentId: from.id,
      toVersion: installed(request.prior[to.id], request.pkg.kind),
      backup: null,
      note: null,
    });
  const servedBefore = members.filter((m) => request.prior[m.id]?.active);
  if (serving.length === 0) {
    // No member serves (both stopped, or never set): nothing to protect; the one that served before takes over.
    for (const m of members) if (changed.has(m.id)) unit.add(rollbackStep(request, m));
    if (servedBefore.length === 1)
      takeOver(
        servedBefore[0],
        members.find((m) => m !== servedBefore[0])!,
        2,
      );
    return unit;
  }
  const [active] = serving;
  const standby = members.find((m) => m !== active)!;
  if (changed.has(standby.id)) unit.add(rollbackStep(request, standby));
  let servingAfter = active;
  if (changed.has(active.id)) {
    takeOver(standby, active, 1);
    unit.add(rollbackStep(request, active));
    servingAfter = standby;
  }
  if (servedBefore.length === 1 && servedBefore[0] !== servingAfter) takeOver(servedBefore[0], servingAfter, 2);
  return unit;
}

/** Units numbered in the order of the upgrade's batches (a unit runs in its earliest member's batch). */
function numbered(request: RollbackRequest, units: UnitSteps[]): Pick<RollbackPlan, 'steps' | 'units' | 'batches'> {
  const batchOf = (u: UnitSteps) =>
    Math.min(...u.steps.map((s) => request.batchOf[s.agentId] ?? Number.MAX_SAFE_INTEGER));
  const order = units.map((u, i) => ({ u, i, batch: batchOf(u) })).sort((a, b) => a.batch - b.batch || a.i - b.i);
  const batchNumbers = [...new Set(order.map((o) => o.batch))];
  const steps = order.flatMap(({ u, batch }, unit) =>
    u.steps.map((s) => ({ ...s, unit, batch: batchNumbers.indexOf(batch) })),
  );
  return { steps, units: units.length, batches: batchNumbers.length };
}
