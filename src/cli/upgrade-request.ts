import { Option, type Command } from 'commander';
import type { Schemas } from './api';
import { agentIdsFor } from './resolve';
import { collectLabel, collectList, collectOption } from './session';

export interface UpgradeFlags {
  agents?: string[];
  target?: string[];
  label?: Record<string, string>;
  policy?: Schemas['FailoverPolicy'];
  option?: Record<string, unknown>;
  at?: string;
}

const POLICIES: Schemas['FailoverPolicy'][] = ['default', 'simultaneous', 'backup-first', 'backup-first-switchback'];

/** The flags that shape an upgrade, shared by `upgrades preview|start` and `packages upload --mode install`. */
export function withUpgradeFlags(command: Command): Command {
  return command
    .option('--target <agents>', 'the same as --agents; "all" (the default) for every agent', collectList)
    .option(
      '--agents <agents>',
      'only these agents, by name, id or address (comma-separated, repeatable); default all',
      collectList,
    )
    .option(
      '--label <key=value>',
      'the agents carrying this label (repeatable: every one); with --agents, those as well',
      collectLabel,
    )
    .addOption(new Option('--policy <policy>', "failover policy; default: the cluster's").choices(POLICIES))
    .option('--option <key=value>', 'an upgrade option (repeatable), e.g. maxParallel=25% canary=1', collectOption)
    .option('--at <time>', 'start later, at this ISO-8601 time');
}

/**
 * What the API's target, policy and options are for these flags (agents named as the operator
 * named them, and the labels asked for: the server takes the agents named either way). `clusterAgents` is read only when agents are named; a caller that has the list
 * already passes it, so a large cluster is not paged through twice.
 */
export async function upgradeFields(
  clusterAgents: () => Promise<Schemas['AgentDto'][]>,
  flags: UpgradeFlags,
): Promise<Pick<Schemas['CreateUpgradeDto'], 'target' | 'policy' | 'options' | 'scheduledAt'>> {
  const named = [...(flags.agents ?? []), ...(flags.target ?? [])].filter((ref) => ref !== 'all');
  const labels = flags.label && Object.keys(flags.label).length ? flags.label : undefined;
  const target: Schemas['UpgradeTargetDto'] =
    named.length || labels
      ? {
          ...(named.length ? { agentIds: agentIdsFor(await clusterAgents(), named) } : {}),
          ...(labels ? { labels } : {}),
        }
      : { all: true };
  return {
    target,
    ...(flags.policy ? { policy: flags.policy } : {}),
    ...(flags.option ? { options: flags.option } : {}),
    ...(flags.at ? { scheduledAt: flags.at } : {}),
  };
}
