import type { Agent } from '../cluster/agent.entity';
import type { Upgrade } from './upgrade.entity';

/**
 * What auto-upgrade records on an agent it leaves alone, in one place (docs/version-model.md,
 * "Auto-upgrade"): pure values, written by the executor, the upgrades service and auto-upgrade.
 */

/** How long auto-upgrade leaves an agent alone after its n-th attempt in a row did not bring it up: 1 min doubling, at most an hour. */
export const autoUpgradeBackoffMs = (attempts: number): number =>
  Math.min(60 * 60_000, 60_000 * 2 ** Math.max(0, attempts - 1));

/** One more attempt that did not bring the agent up: held back for the next, longer, back-off. */
export function setBack(agent: Pick<Agent, 'autoUpgradeAttempts'>, now: Date, why: string): Partial<Agent> {
  const attempts = agent.autoUpgradeAttempts + 1;
  return {
    autoUpgradeAttempts: attempts,
    autoUpgradeRetryAt: new Date(now.getTime() + autoUpgradeBackoffMs(attempts)),
    autoUpgradeBlocked: why,
  };
}

/** What an agent left behind on purpose (a cancel, the failure threshold) records: auto-upgrade leaves it until someone acts. */
export const leftBehind = (upgrade: Pick<Upgrade, 'id'>, why: string): Partial<Agent> => ({
  autoUpgradeBlocked: `left behind by upgrade ${upgrade.id}: ${why}; retry it, upgrade it now, or start a new upgrade`,
  autoUpgradeRetryAt: null,
});

/** Someone acted on the agent, or it reached the target: nothing holds auto-upgrade back from it. */
export const AUTO_UPGRADE_FREE: Partial<Agent> = {
  autoUpgradeBlocked: null,
  autoUpgradeRetryAt: null,
  autoUpgradeAttempts: 0,
};
