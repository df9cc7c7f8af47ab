import { Option, type Command } from 'commander';
import type { Schemas } from '../api';
import { asJson, table } from '../output';
import { allAgents, resolveCluster } from '../resolve';
import { action, collectLabel } from '../session';

const STATES: Schemas['AgentState'][] = ['unknown', 'offline', 'idle', 'busy', 'upgrading', 'terminating'];

export function agentCommands(program: Command): void {
  const agents = program.command('agents').description("a cluster's agents");

  agents
    .command('list')
    .description("a cluster's agents: state, version, version status")
    .requiredOption('--cluster <cluster>', 'the cluster, by id or name')
    .addOption(new Option('--state <state>', 'only agents in this state').choices(STATES))
    .option('--label <key=value>', 'only agents carrying this label (repeatable: every one)', collectLabel)
    .addHelpText(
      'after',
      '\nExamples:\n  lockstep agents list --cluster production\n  lockstep agents list --cluster production --state offline --json\n  lockstep agents list --cluster production --label site=eu-1 --label tier=db',
    )
    .action(
      action(
        async (
          { client, out },
          flags: { cluster: string; state?: Schemas['AgentState']; label?: Record<string, string> },
        ) => {
          const cluster = await resolveCluster(client, flags.cluster);
          const label = Object.entries(flags.label ?? {}).map(([key, value]) => `${key}=${value}`);
          const list = await allAgents(client, cluster.id, {
            ...(flags.state ? { state: flags.state } : {}),
            ...(label.length ? { label } : {}),
          });
          if (out.json) return out.result(asJson(list));
          out.result(
            table(
              ['NAME', 'ADDRESS', 'ROLE', 'PAIR', 'STATE', 'VERSION', 'STATUS', 'LABELS', 'LAST SEEN', 'ID'],
              list.map((a) => [
                a.name,
                a.address,
                a.role + (a.role !== 'standalone' && a.active ? ' (active)' : ''),
                a.failoverGroup,
                a.state,
                a.version,
                a.versionStatus,
                Object.entries(a.labels)
                  .map(([key, value]) => `${key}=${value}`)
                  .join(','),
                a.lastSeenAt,
                a.id,
              ]),
            ),
          );
        },
      ),
    );
}
