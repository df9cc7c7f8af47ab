import type { Agent } from '../cluster/agent.entity';
import type { Cluster } from '../cluster/cluster.entity';
import type { ClustersService } from '../cluster/clusters.service';
import type { Tx } from '../database/database';
import type { Plan } from '../policies/planner';
import type { UpgradeOptions } from '../policies/upgrade-options';
import type { Upgrade } from './upgrade.entity';
import type { UpgradeRepository } from './upgrade.repository';
import { ENDED_STEP_STATUSES, type UpgradeStep } from './upgrade-step.entity';
import { expectedWindows, type PlanWindows, predictor, type RuleWindows, ruleWindows } from './window-rules';

/**
 * What maintenance windows read from the database, for the executor's pass and for a plan: the
 * cluster's windows, each agent's own, and the cluster's step history (the predictions). The rules
 * are pure, in window-rules.ts and policies/maintenance-windows.ts; docs/maintenance-windows.md.
 */

/** The windows of a cluster and its agents, with predictions from the cluster's history. */
async function readWindows(
  tx: Tx,
  upgrades: UpgradeRepository,
  cluster: Pick<Cluster, 'id' | 'windows'>,
  packageKind: Upgrade['packageKind'],
  options: Pick<UpgradeOptions, 'phaseTimeoutS'>,
  agents: Array<Pick<Agent, 'id' | 'windows'>>,
): Promise<RuleWindows> {
  const history = await upgrades.recentStepDurations(
    tx.em,
    cluster.id,
    packageKind,
    agents.map((a) => a.id),
  );
  return ruleWindows(
    cluster.windows,
    new Map(agents.map((a) => [a.id, a.windows])),
    predictor(history, options.phaseTimeoutS),
  );
}

/**
 * For one executor pass: undefined unless the upgrade respects windows and has a unit left that is
 * not under way (no command queued for any step of it), whose start the windows decide.
 */
export async function windowsForPass(
  tx: Tx,
  upgrades: UpgradeRepository,
  clusters: Pick<ClustersService, 'require'>,
  upgrade: Upgrade,
  steps: UpgradeStep[],
  agents: Agent[],
): Promise<RuleWindows | undefined> {
  // A rollback round ignores windows, and a paused upgrade starts nothing: no history to read.
  if (!upgrade.options.respectWindows || upgrade.rollbackRound > 0 || upgrade.status !== 'running') return undefined;
  const underWay = new Set(steps.filter((s) => s.commandId !== null).map((s) => s.unit));
  if (!steps.some((s) => !underWay.has(s.unit) && !ENDED_STEP_STATUSES.includes(s.status))) return undefined;
  const cluster = await clusters.require(upgrade.clusterId, tx);
  return readWindows(tx, upgrades, cluster, upgrade.packageKind, upgrade.options, agents);
}

/**
 * For a plan (preview and create), with options.respectWindows: the window each batch is expected
 * to run in, a warning for agents no window limits, and a refusal for units no window is long
 * enough for. Nothing without respectWindows.
 */
export async function windowsForPlan(
  tx: Tx,
  upgrades: UpgradeRepository,
  cluster: Cluster,
  packageKind: Upgrade['packageKind'],
  options: UpgradeOptions,
  agents: Agent[],
  plan: Plan,
  when: { now: Date; scheduledAt?: string },
): Promise<PlanWindows> {
  if (!options.respectWindows) return { batches: [], warnings: [], refusals: [] };
  const windows = await readWindows(tx, upgrades, cluster, packageKind, options, agents);
  const names = new Map(agents.map((a) => [a.id, a.name]));
  // A scheduled upgrade starts looking for windows at its time.
  const scheduled = when.scheduledAt ? new Date(when.scheduledAt) : null;
  const from = scheduled && scheduled > when.now ? scheduled : when.now;
  return expectedWindows(plan, windows, from, (id) => names.get(id) ?? id);
}
