import type { Command } from 'commander';
import { expectData } from '../api';
import { asJson, counts, table } from '../output';
import { resolveCluster } from '../resolve';
import { action } from '../session';

export function clusterCommands(program: Command): void {
  const clusters = program.command('clusters').description('clusters: their versions and agents at a glance');

  clusters
    .command('list')
    .description('every cluster, with its target version and whether its agents agree on one')
    .addHelpText('after', '\nExample:\n  lockstep clusters list')
    .action(
      action(async ({ client, out }) => {
        const all = expectData(await client.GET('/api/v1/clusters'), 'list clusters');
        if (out.json) return out.result(asJson(all));
        out.result(
          table(
            ['NAME', 'PRODUCT', 'TARGET', 'AGENTS', 'CONSISTENT', 'VERSIONS', 'ID'],
            all.map((c) => [
              c.name,
              c.product,
              c.targetVersion,
              c.agentCount,
              c.consistent ? 'yes' : 'no',
              counts(c.versions),
              c.id,
            ]),
          ),
        );
      }),
    );

  clusters
    .command('show')
    .argument('<cluster>', 'the cluster, by id or name')
    .description("one cluster: target, versions, agents' states and version statuses")
    .addHelpText('after', '\nExample:\n  lockstep clusters show production')
    .action(
      action(async ({ client, out }, ref: string) => {
        const c = await resolveCluster(client, ref);
        if (out.json) return out.result(asJson(c));
        out.result(
          [
            `${c.name} (${c.id}), product ${c.product}`,
            `target          ${c.targetVersion ?? '-'}${c.webappsTargetVersion ? `, web apps ${c.webappsTargetVersion}` : ''}`,
            `consistent      ${c.consistent ? 'yes' : 'no'}`,
            `versions        ${counts(c.versions)}`,
            `agents          ${c.agentCount}: ${counts(c.states)}`,
            `version status  ${counts(c.versionStatuses)}`,
            `default policy  ${c.defaultPolicy}`,
          ].join('\n'),
        );
      }),
    );
}
