import * as semver from 'semver';
import type { ConcretePolicy, CountOrPercent, FailoverPolicy, UpgradeOptions } from './upgrade-options';

/**
 * The planner: agents, package, policy and options in; a plan out. Pure: no Nest, no database, no
 * clock, so every planning rule (README "Upgrades", docs/version-model.md) is a table of cases in planner.spec.ts.
 *
 * A unit is what `maxParallel` counts: a standalone agent, or a failover pair. Units run in
 * batches; a step depends on the steps before it in its unit only, so a failure stays in its unit.
 */

export interface PlanAgent {
  id: string;
  name: string;
  address: string;
  role: 'standalone' | 'main' | 'backup';
  failoverGroup: string | null;
  active: boolean;
  version: string | null;
  webappsVersion: string | null;
  /** Never paired: it has never reported anything. */
  paired: boolean;
  online: boolean;
  busy: boolean;
  remoteUpgrade: boolean;
  /** Whether it ever reported facts (os, disk...), without which prerequisites cannot be checked. */
  factsKnown: boolean;
}

export interface PlanRequest {
  /** The agents asked for. */
  targets: PlanAgent[];
  /** Every agent of the cluster: pairs are completed from it, and the mixed-version warning reads it. */
  cluster: PlanAgent[];
  pkg: { version: string; kind: 'full' | 'webapps' };
  policy: FailoverPolicy;
  clusterDefaultPolicy: ConcretePolicy;
  options: UpgradeOptions;
}

/** What a step does; `rollback` steps come only in a rollback round (docs/rollback.md). */
export const STEP_KINDS = ['upgrade', 'switchover', 'switchback', 'manual', 'rollback'] as const;
export type StepKind = (typeof STEP_KINDS)[number];
/** When a step may run, judged on its dependencies once they ended. */
export type RunWhen = 'succeeded' | 'failed' | 'ended';

export interface PlannedStep {
  /** Unique within the plan; the upgrades module maps it to a step id. */
  key: string;
  kind: StepKind;
  /** The agent that is upgraded, or that takes over in a switchover or switchback. */
  agentId: string;
  /** For switchover and switchback: the agent handing over. */
  fromAgentId: string | null;
  failoverGroup: string | null;
  unit: number;
  batch: number;
  dependsOn: string[];
  runWhen: RunWhen;
  status: 'pending' | 'skipped' | 'manual';
  note: string | null;
}

export interface PlanNotice {
  code: string;
  message: string;
  agentIds?: string[];
}

export interface Plan {
  resolvedPolicy: ConcretePolicy;
  steps: PlannedStep[];
  /** Units that have work to do, and how they fall into batches. */
  units: number;
  batches: number;
  /** `maxParallel` and `failureThreshold` resolved against the units: counts of units. */
  maxParallel: number;
  failureLimit: number;
  warnings: PlanNotice[];
  refusals: PlanNotice[];
}

/**
 * What a failover policy does with a failover pair: every per-policy choice of the planner, one
 * entry per policy. Standalone agents, and a pair member targeted without its peer, ignore the
 * policy. To add a policy: its name in FAILOVER_POLICIES (upgrade-options.ts), which makes this
 * table fail to compile until it has an entry, then its cases in planner.spec.ts
 * (docs/ARCHITECTURE.md, "A failover policy").
 */
export interface PolicyRule {
  /**
   * `together`: both members upgrade at once (the pair does not serve meanwhile), unless the
   * standby is on the version already or is a legacy agent (see pairSteps). `standby-first`: the
   * standby upgrades, takes over (a switchover), and only then is the serving member upgraded.
   */
  order: 'together' | 'standby-first';
  /**
   * After a switchover, whether the serving member takes back over once it is upgraded: `always`
   * (after its upgrade succeeded, and also after it failed with options.switchBackOnFailure), or
   * `on-failure` (only after its upgrade failed, with options.switchBackOnFailure).
   */
  switchback: 'always' | 'on-failure';
  /**
   * A legacy policy keeps one member serving on the old version while the other runs the new one:
   * across a major version the two may not talk to each other, so such a plan is refused
   * (LEGACY_POLICY_ON_MAJOR) unless options.allowLegacyPolicyOnMajor.
   */
  legacy: boolean;
}

export const POLICY_RULES: Readonly<Record<ConcretePolicy, PolicyRule>> = {
  simultaneous: { order: 'together', switchback: 'on-failure', legacy: false },
  'backup-first': { order: 'standby-first', switchback: 'on-failure', legacy: true },
  'backup-first-switchback': { order: 'standby-first', switchback: 'always', legacy: true },
};

/** What the package replaces on the agent: its core version, or its web-apps version. */
export const installedOf = (
  agent: Pick<PlanAgent, 'version' | 'webappsVersion'>,
  pkg: PlanRequest['pkg'],
): string | null => (pkg.kind === 'webapps' ? agent.webappsVersion : agent.version);

/** Whether the agent already runs what the package installs. */
export function alreadyOn(agent: Pick<PlanAgent, 'version' | 'webappsVersion'>, pkg: PlanRequest['pkg']): boolean {
  const installed = installedOf(agent, pkg);
  if (!installed) return false;
  if (installed === pkg.version) return true;
  return compareMemo(installed, pkg.version) === 0;
}

/**
 * semver comparisons parse both strings each time; a cluster has a handful of distinct versions
 * and a plan compares each agent several times, so results are kept per pair of versions.
 * null = the installed version is not semver.
 */
const comparisons = new Map<string, number | null>();
export function compareMemo(installed: string, target: string): number | null {
  const key = `${installed} ${target}`;
  let result = comparisons.get(key);
  if (result === undefined) {
    result = semver.valid(installed) ? semver.compare(installed, target) : null;
    if (comparisons.size > 10_000) comparisons.clear();
    comparisons.set(key, result);
  }
  return result;
}

/** `maxParallel` as a count of units: 0 = all; a percent rounds down but is at least one. */
export function resolveParallel(value: CountOrPercent, units: number): number {
  const all = Math.max(units, 1);
  if (typeof value === 'number') return value === 0 ? all : Math.min(value, all);
  const share = Math.floor((Number(value.slice(0, -1)) * units) / 100);
  return Math.min(Math.max(share, 1), all);
}

/** `failureThreshold` as a count of failed units: 0 (or "0%") = no limit; a percent rounds up. */
export function resolveFailureLimit(value: CountOrPercent, units: number): number {
  if (typeof value === 'number') return value === 0 ? Number.POSITIVE_INFINITY : value;
  const percent = Number(value.slice(0, -1));
  if (percent === 0) return Number.POSITIVE_INFINITY;
  return Math.max(1, Math.ceil((percent * units) / 100));
}

interface Unit {
  name: string;
  steps: Omit<PlannedStep, 'unit' | 'batch'>[];
}

export function plan(request: PlanRequest): Plan {
  const { pkg, options } = request;
  const resolvedPolicy: ConcretePolicy = request.policy === 'default' ? request.clusterDefaultPolicy : request.policy;
  const warnings: PlanNotice[] = [];
  const refusals: PlanNotice[] = [];
  const warn = (code: string, message: string, agents: PlanAgent[] = []) =>
    warnings.push({ code, message, ...(agents.length ? { agentIds: agents.map((a) => a.id) } : {}) });

  if (request.targets.length === 0) {
    refusals.push({
      code: 'NO_AGENTS',
      message: 'The upgrade targets no agent: register agents in the cluster, or name some in target.',
    });
  }

  const units = buildUnits(request, resolvedPolicy, warn);

  // Going back to an older version is planned only when asked for: a package older than what an
  // agent runs is more often a mistake (the wrong file) than a decision.
  const downgrades = request.targets.filter((a) => {
    const installed = installedOf(a, pkg);
    return installed !== null && a.remoteUpgrade && (compareMemo(installed, pkg.version) ?? 0) > 0;
  });
  if (downgrades.length > 0 && !options.allowDowngrade) {
    refusals.push({
      code: 'DOWNGRADE',
      message: `${pkg.version} is older than what ${downgrades.length} target(s) run (${downgrades.map((a) => `${a.name} ${installedOf(a, pkg)}`).join(', ')}): set options.allowDowngrade to go back, or choose a newer package.`,
      agentIds: downgrades.map((a) => a.id),
    });
  } else if (downgrades.length > 0) {
    warn(
      'DOWNGRADE',
      `A downgrade: ${downgrades.length} target(s) go back from a newer version to ${pkg.version} (${downgrades.map((a) => a.name).join(', ')}); their data must suit the older version.`,
      downgrades,
    );
  }

  // A legacy policy stops one member while the other serves on the old version: across a major
  // version (up or down) the two may not talk to each other, so it must be asked for knowingly.
  const pairTargets = request.targets.filter((a) => a.failoverGroup);
  const major = semver.major(pkg.version);
  const majors = new Map<string, number | null>();
  const majorOf = (v: string) => {
    if (!majors.has(v)) majors.set(v, semver.valid(v) ? semver.major(v) : null);
    return majors.get(v)!;
  };
  const crossesMajor = pairTargets.filter((a) => {
    const installed = installedOf(a, pkg);
    return installed !== null && (majorOf(installed) ?? major) !== major;
  });
  if (POLICY_RULES[resolvedPolicy].legacy && crossesMajor.length > 0 && !options.allowLegacyPolicyOnMajor) {
    refusals.push({
      code: 'LEGACY_POLICY_ON_MAJOR',
      message: `Policy ${resolvedPolicy} on a major-version upgrade to ${pkg.version}: use simultaneous, or set options.allowLegacyPolicyOnMajor to acknowledge the risk.`,
      agentIds: crossesMajor.map((a) => a.id),
    });
  }

  addAgentWarnings(request, warn);

  // Batches: canary units first (then the upgrade pauses), then groups of maxParallel.
  const working = units.filter((u) => u.steps.some((s) => s.status === 'pending'));
  const maxParallel = resolveParallel(options.maxParallel, working.length);
  const canary = Math.min(options.canary, working.length);
  const batchOf = new Map<Unit, number>();
  working.forEach((unit, i) => {
    const batch =
      canary > 0 ? (i < canary ? 0 : 1 + Math.floor((i - canary) / maxParallel)) : Math.floor(i / maxParallel);
    batchOf.set(unit, batch);
  });
  const steps: PlannedStep[] = [];
  units.forEach((unit, index) => {
    for (const step of unit.steps) steps.push({ ...step, unit: index, batch: batchOf.get(unit) ?? 0 });
  });
  const batches = working.length === 0 ? 0 : batchOf.get(working[working.length - 1])! + 1;
  if (request.targets.length > 0 && working.length === 0) {
    warn(
      'NOTHING_TO_DO',
      `No agent needs remote work: every target is on ${pkg.version} already or must be upgraded by hand.`,
    );
  }

  return {
    resolvedPolicy,
    steps,
    units: working.length,
    batches,
    maxParallel,
    failureLimit: resolveFailureLimit(options.failureThreshold, working.length),
    warnings,
    refusals,
  };
}

/** Standalone agents and pairs, in a stable order (pairs by group name, then agents by name). */
function buildUnits(
  request: PlanRequest,
  policy: ConcretePolicy,
  warn: (code: string, message: string, agents?: PlanAgent[]) => void,
): Unit[] {
  const targetIds = new Set(request.targets.map((a) => a.id));
  const groups = groupBy(request.targets);
  const clusterGroups = groupBy(request.cluster);
  const units: Unit[] = [];
  for (const [group, targeted] of [...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const members = clusterGroups.get(group) ?? [];
    const untargeted = members.filter((a) => !targetIds.has(a.id));
    if (members.length < 2) {
      const lone = targeted[0];
      warn(
        'PAIR_INCOMPLETE',
        `Failover group ${group} has only its ${lone.role} (${lone.name}): it is upgraded alone and does not serve while it upgrades.`,
        [lone],
      );
      units.push({ name: group, steps: [singleStep(lone, request.pkg)] });
    } else if (untargeted.length > 0 && untargeted.every((peer) => alreadyOn(peer, request.pkg))) {
      // The peer is on the version already (upgraded while this member was offline or busy, or an
      // auto-upgrade catching this one up): plan the whole pair, so a serving member hands over to
      // its upgraded peer before it stops, and a standby one is simply upgraded.
      units.push({ name: group, steps: pairSteps(group, members, request, policy, warn) });
    } else if (untargeted.length > 0) {
      const lone = targeted[0];
      const peer = untargeted[0];
      warn(
        'PAIR_PARTIAL',
        `Only ${lone.name} of failover group ${group} is targeted, not ${peer.name}: the pair runs mixed versions until ${peer.name} is upgraded too.`,
        [lone, peer],
      );
      units.push({ name: group, steps: partialPairSteps(group, lone, peer, request, warn) });
    } else {
      units.push({ name: group, steps: pairSteps(group, members, request, policy, warn) });
    }
  }
  const byName = (a: PlanAgent, b: PlanAgent) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1);
  const standalone = request.targets.filter((a) => !a.failoverGroup).sort(byName);
  for (const agent of standalone) units.push({ name: agent.name, steps: [singleStep(agent, request.pkg)] });
  return units;
}

/** Agents of failover groups by group name. */
function groupBy(agents: PlanAgent[]): Map<string, PlanAgent[]> {
  const groups = new Map<string, PlanAgent[]>();
  for (const agent of agents) {
    if (!agent.failoverGroup) continue;
    const members = groups.get(agent.failoverGroup);
    if (members) members.push(agent);
    else groups.set(agent.failoverGroup, [agent]);
  }
  return groups;
}

function singleStep(agent: PlanAgent, pkg: PlanRequest['pkg']): Unit['steps'][number] {
  const base = {
    key: `upgrade:${agent.id}`,
    agentId: agent.id,
    fromAgentId: null,
    failoverGroup: agent.failoverGroup,
    dependsOn: [],
    runWhen: 'succeeded' as const,
  };
  if (alreadyOn(agent, pkg)) return { ...base, kind: 'upgrade', status: 'skipped', note: `already on ${pkg.version}` };
  if (!agent.remoteUpgrade) return { ...base, kind: 'manual', status: 'manual', note: manualNote(agent, pkg) };
  return { ...base, kind: 'upgrade', status: 'pending', note: null };
}

const manualNote = (agent: PlanAgent, pkg: PlanRequest['pkg']) =>
  `${agent.name} cannot upgrade remotely (legacy agent): install ${pkg.version} on ${agent.address} by hand, then pair it again with a new pairing key.`;

/**
 * One member of a pair targeted without its peer. A standby member is simply upgraded. A serving
 * one first hands over to its peer, which takes over on the version it runs (a role swap, not an
 * upgrade), so the pair keeps a serving member; with `switchBackOnFailure` it takes back over when
 * its upgrade fails.
 */
function partialPairSteps(
  group: string,
  lone: PlanAgent,
  peer: PlanAgent,
  request: PlanRequest,
  warn: (code: string, message: string, agents?: PlanAgent[]) => void,
): Unit['steps'] {
  const step = singleStep(lone, request.pkg);
  const serving = lone.active || (!peer.active && lone.role === 'main');
  if (!serving || step.status !== 'pending') return [step];
  if (!peer.remoteUpgrade) {
    warn(
      'PAIR_MANUAL',
      `${lone.name} serves failover group ${group} and its peer ${peer.name} is a legacy agent that cannot take over remotely: hand over by hand, then upgrade ${lone.name}.`,
      [lone, peer],
    );
    return [
      {
        ...step,
        kind: 'manual',
        status: 'manual',
        note: `${lone.name} serves ${group}: switch over to ${peer.name} by hand, then install ${request.pkg.version} on ${lone.address}.`,
      },
    ];
  }
  const handover = takeoverStep(
    'switchover',
    group,
    peer,
    lone,
    [],
    'succeeded',
    `${peer.name} takes over from ${lone.name} on the version it runs, before ${lone.name} stops`,
  );
  const steps: Unit['steps'] = [handover, { ...step, dependsOn: [handover.key] }];
  if (request.options.switchBackOnFailure) {
    steps.push(
      takeoverStep(
        'switchback',
        group,
        lone,
        peer,
        [step.key],
        'failed',
        `only if the upgrade of ${lone.name} fails: it takes back over on the version it rolled back to`,
      ),
    );
  }
  return steps;
}

/** A switchover or switchback: `to` takes over from `from`. */
function takeoverStep(
  kind: 'switchover' | 'switchback',
  group: string,
  to: PlanAgent,
  from: PlanAgent,
  dependsOn: string[],
  runWhen: RunWhen,
  note: string | null,
): Unit['steps'][number] {
  return {
    key: `${kind}:${group}`,
    kind,
    agentId: to.id,
    fromAgentId: from.id,
    failoverGroup: group,
    dependsOn,
    runWhen,
    status: 'pending',
    note,
  };
}

/**
 * A pair, as its policy's rule says (POLICY_RULES). `together`: both members upgrade at once.
 * `standby-first`: the standby member (the backup, unless the pair has switched over already)
 * upgrades first, takes over, and only then is the serving member touched; then the switchback
 * (switchbackStep).
 */
function pairSteps(
  group: string,
  members: PlanAgent[],
  request: PlanRequest,
  policy: ConcretePolicy,
  warn: (code: string, message: string, agents?: PlanAgent[]) => void,
): Unit['steps'] {
  const { pkg, options } = request;
  const rule = POLICY_RULES[policy];
  const serving = members.find((a) => a.active) ?? members.find((a) => a.role === 'main')!;
  const standby = members.find((a) => a !== serving)!;

  // Both at once, as asked; but when the standby runs the version already (a late member caught
  // up), nothing would serve while the serving member upgrades alone: it hands over first.
  const standbyDone = alreadyOn(standby, pkg) && !alreadyOn(serving, pkg);
  // A legacy standby is upgraded by hand and cannot take over remotely: its serving member would
  // stop with nothing to serve, so under any policy the pair is then done by hand.
  const legacyStandby = !standby.remoteUpgrade && !alreadyOn(standby, pkg);
  if (rule.order === 'together' && !standbyDone && !legacyStandby)
    return [singleStep(standby, pkg), singleStep(serving, pkg)];

  const legacy = members.filter((a) => !a.remoteUpgrade && !alreadyOn(a, pkg));
  if (legacy.length > 0) {
    // A switchover needs both members driven remotely; a pair with a legacy member is done by hand.
    warn(
      'PAIR_MANUAL',
      `Failover group ${group} has a legacy member (${legacy.map((a) => a.name).join(', ')}): under ${policy} the whole pair is upgraded by hand.`,
      members,
    );
    return [standby, serving].map((agent) => {
      const step = singleStep(agent, pkg);
      return step.status === 'skipped'
        ? step
        : { ...step, kind: 'manual' as const, status: 'manual' as const, note: manualNote({ ...agent }, pkg) };
    });
  }
  if (standby.role === 'main') {
    warn(
      'PAIR_SWITCHED_OVER',
      `In failover group ${group} the backup ${serving.name} serves now: the standby main ${standby.name} is upgraded first.`,
      [serving, standby],
    );
  }
  if (!standby.online) {
    warn(
      'PAIR_STANDBY_OFFLINE',
      `${standby.name}, the standby of ${group}, is offline: its upgrade waits up to ${options.offlineTimeoutS}s for it, and ${serving.name} is not touched unless it is upgraded and took over.`,
      [standby],
    );
  }
  if (!serving.online) {
    warn(
      'PAIR_SERVING_OFFLINE',
      `${serving.name}, the serving member of ${group}, is offline: after ${standby.name} is upgraded and took over, the upgrade of ${serving.name} waits up to ${options.offlineTimeoutS}s for it.`,
      [serving],
    );
  }

  const first = singleStep(standby, pkg);
  const second = singleStep(serving, pkg);
  if (second.status === 'skipped') return [first, second]; // the serving member is on the version: no switchover needed
  const switchover = takeoverStep(
    'switchover',
    group,
    standby,
    serving,
    [first.key],
    'succeeded',
    `${standby.name} takes over from ${serving.name}`,
  );
  const steps: Unit['steps'] = [first, switchover, { ...second, dependsOn: [switchover.key] }];
  const switchback = switchbackStep(rule, group, serving, standby, second.key, options);
  if (switchback) steps.push(switchback);
  return steps;
}

/**
 * The serving member taking back over from the standby once its own upgrade (`upgradeKey`) ended,
 * or null. With `switchBackOnFailure` it also does when its upgrade failed and it rolled back: it
 * serves again on the version it had, which the standby no longer runs.
 */
function switchbackStep(
  rule: PolicyRule,
  group: string,
  serving: PlanAgent,
  standby: PlanAgent,
  upgradeKey: string,
  options: UpgradeOptions,
): Unit['steps'][number] | null {
  if (rule.switchback === 'always') {
    const runWhen = options.switchBackOnFailure ? 'ended' : 'succeeded';
    const note = `${serving.name} takes back over from ${standby.name}`;
    return takeoverStep('switchback', group, serving, standby, [upgradeKey], runWhen, note);
  }
  if (!options.switchBackOnFailure) return null;
  const note = `only if the upgrade of ${serving.name} fails: it takes back over on the version it rolled back to`;
  return takeoverStep('switchback', group, serving, standby, [upgradeKey], 'failed', note);
}

function addAgentWarnings(
  request: PlanRequest,
  warn: (code: string, message: string, agents?: PlanAgent[]) => void,
): void {
  const { pkg, options, targets } = request;
  const toWork = targets.filter((a) => !alreadyOn(a, pkg) && a.remoteUpgrade);
  const unpaired = toWork.filter((a) => !a.paired);
  const offline = toWork.filter((a) => a.paired && !a.online);
  const busy = toWork.filter((a) => a.online && a.busy);
  const unknown = toWork.filter((a) => !a.version || !a.factsKnown);
  const names = (agents: PlanAgent[]) => agents.map((a) => a.name).join(', ');
  if (unpaired.length)
    warn(
      'AGENTS_UNPAIRED',
      `${unpaired.length} target(s) never paired (${names(unpaired)}): each step waits up to ${options.offlineTimeoutS}s for its agent to come online, then misses its turn (auto-upgrade brings it up later).`,
      unpaired,
    );
  if (offline.length)
    warn(
      'AGENTS_OFFLINE',
      `${offline.length} target(s) offline now (${names(offline)}): each step waits up to ${options.offlineTimeoutS}s for its agent, then misses its turn (auto-upgrade brings it up later).`,
      offline,
    );
  if (busy.length) {
    warn(
      'AGENTS_BUSY',
      options.waitForIdle
        ? `${busy.length} target(s) busy now (${names(busy)}): each is told to hold and is upgraded once idle, waiting up to ${options.idleTimeoutS}s.`
        : `${busy.length} target(s) busy now (${names(busy)}) and waitForIdle is off: their work is interrupted.`,
      busy,
    );
  }
  if (unknown.length)
    warn(
      'FACTS_UNKNOWN',
      `${unknown.length} target(s) have not reported their version or facts (${names(unknown)}): prerequisites are checked again before each starts.`,
      unknown,
    );
  const manual = targets.filter((a) => !a.remoteUpgrade && !alreadyOn(a, pkg));
  if (manual.length)
    warn(
      'MANUAL_STEPS',
      `${manual.length} legacy agent(s) (${names(manual)}) cannot upgrade remotely: reinstall them with ${pkg.version} by hand and pair them again.`,
      manual,
    );

  const targetIds = new Set(targets.map((a) => a.id));
  const leftBehind = request.cluster.filter((a) => !targetIds.has(a.id) && !alreadyOn(a, pkg));
  if (leftBehind.length + manual.length > 0 && request.cluster.length > 1) {
    warn(
      'MIXED_VERSIONS',
      `Afterwards the cluster runs mixed versions: ${leftBehind.length + manual.length} agent(s) stay off ${pkg.version} (${names([...leftBehind, ...manual])}); all agents of a cluster must run one version.`,
      [...leftBehind, ...manual],
    );
  }
}
