import { InvalidArgumentError, Option, type Command } from 'commander';
import { expectData, type Schemas } from '../api';

import { asJson, table } from '../output';
import { planText, prerequisitesTable } from '../plan-text';
import { allAgents, resolveCluster, resolvePackage } from '../resolve';
import { action, type Session } from '../session';
import { upgradeFields, withUpgradeFlags, type UpgradeFlags } from '../upgrade-request';
import { watchUpgrade } from '../watch';

type PlanFlags = UpgradeFlags & { cluster: string; package: string };

/** A whole number of seconds, at least 1. */
function seconds(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('want a whole number of seconds');
  return Number(value);
}

/** Every upgrade status; the compiler checks the list against the generated type both ways. */
const STATUS_SET: Record<Schemas['UpgradeStatus'], true> = {
  scheduled: true,
  running: true,
  paused: true,
  succeeded: true,
  failed: true,
  'completed-with-errors': true,
  cancelled: true,
  'rolling-back': true,
  'rolled-back': true,
  'rollback-failed': true,
};
const STATUSES = Object.keys(STATUS_SET) as Schemas['UpgradeStatus'][];

/** The request body of a preview or a start, from the flags; and the agents' names to print the plan with. */
async function planRequest({ client }: Session, flags: PlanFlags) {
  const cluster = await resolveCluster(client, flags.cluster);
  const pkg = await resolvePackage(client, cluster.id, flags.package);
  const agents = await allAgents(client, cluster.id);
  const names = new Map(agents.map((a) => [a.id, a.name]));
  const body: Schemas['CreateUpgradeDto'] = {
    packageId: pkg.id,
    ...(await upgradeFields(() => Promise.resolve(agents), flags)),
  };
  return { cluster, body, names };
}

function planCommand(upgrades: Command, name: string, description: string, example: string): Command {
  return withUpgradeFlags(
    upgrades
      .command(name)
      .description(description)
      .requiredOption('--cluster <cluster>', 'the cluster, by id or name')
      .requiredOption('--package <package>', 'the package, by id or by version'),
  ).addHelpText('after', `\nExample:\n  ${example}`);
}

export function upgradeCommands(program: Command): void {
  const upgrades = program.command('upgrades').description('plan, start, follow and steer upgrades');

  planCommand(
    upgrades,
    'preview',
    'the plan by batch, with its switchovers, warnings and refusals; nothing is created',
    'lockstep upgrades preview --cluster production --package 10.3.0 --policy backup-first',
  ).action(
    action(async (session, flags: PlanFlags) => {
      const { cluster, body, names } = await planRequest(session, flags);
      const preview = expectData(
        await session.client.POST('/api/v1/clusters/{clusterId}/upgrades/preview', {
          params: { path: { clusterId: cluster.id } },
          body,
        }),
        'preview',
      );
      if (session.out.json) return session.out.result(asJson(preview));
      session.out.result(planText(preview, names));
      const prerequisites = prerequisitesTable(preview.prerequisites);
      if (prerequisites) session.out.result(prerequisites);
      return preview.refusals.length > 0 ? 1 : 0;
    }),
  );

  planCommand(
    upgrades,
    'start',
    'create the upgrade (it starts now, or at --at); prints its plan and id',
    'lockstep upgrades start --cluster production --package 10.3.0 --option canary=1 && lockstep upgrades watch <id>',
  ).action(
    action(async (session, flags: PlanFlags) => {
      const { cluster, body, names } = await planRequest(session, flags);
      const upgrade = expectData(
        await session.client.POST('/api/v1/clusters/{clusterId}/upgrades', {
          params: { path: { clusterId: cluster.id } },
          body,
        }),
        'start the upgrade',
      );
      if (session.out.json) return session.out.result(asJson(upgrade));
      session.out.result(
        planText(
          { ...upgrade, batches: new Set((upgrade.steps ?? []).map((s) => s.batch)).size, steps: upgrade.steps ?? [] },
          names,
        ),
      );
      session.out.result(`upgrade ${upgrade.id} ${upgrade.status}; follow it: lockstep upgrades watch ${upgrade.id}`);
    }),
  );

  upgrades
    .command('list')
    .description("a cluster's upgrades, newest first")
    .requiredOption('--cluster <cluster>', 'the cluster, by id or name')
    .addOption(new Option('--status <status>', 'only upgrades with this status').choices(STATUSES))
    .addHelpText('after', '\nExample:\n  lockstep upgrades list --cluster production --status running')
    .action(
      action(async ({ client, out }, flags: { cluster: string; status?: Schemas['UpgradeStatus'] }) => {
        const cluster = await resolveCluster(client, flags.cluster);
        const page = expectData(
          await client.GET('/api/v1/clusters/{clusterId}/upgrades', {
            params: {
              path: { clusterId: cluster.id },
              query: { limit: 50, ...(flags.status ? { status: flags.status } : {}) },
            },
          }),
          'list upgrades',
        );
        if (out.json) return out.result(asJson(page.items));
        out.result(
          table(
            ['ID', 'VERSION', 'STATUS', '%', 'POLICY', 'ORIGIN', 'CREATED', 'REASON'],
            page.items.map((u) => [
              u.id,
              u.packageVersion,
              u.status,
              u.percent,
              u.resolvedPolicy,
              u.origin,
              u.createdAt,
              u.reason,
            ]),
          ),
        );
      }),
    );

  upgrades
    .command('show')
    .argument('<id>', 'the upgrade id')
    .description('one upgrade: status, percent, and each step')
    .addHelpText('after', '\nExample:\n  lockstep upgrades show 6f1c...')
    .action(
      action(async ({ client, out }, id: string) => {
        const upgrade = expectData(
          await client.GET('/api/v1/upgrades/{upgradeId}', { params: { path: { upgradeId: id } } }),
          `upgrade ${id}`,
        );
        if (out.json) return out.result(asJson(upgrade));
        const names = new Map((await allAgents(client, upgrade.clusterId)).map((a) => [a.id, a.name]));
        out.result(
          `upgrade ${upgrade.id} to ${upgrade.packageVersion}: ${upgrade.status}, ${upgrade.percent}%${upgrade.reason ? ` (${upgrade.reason})` : ''}`,
        );
        out.result(
          table(
            ['BATCH', 'KIND', 'AGENT', 'STATUS', 'PHASE', '%', 'WAITING FOR', 'ERROR'],
            (upgrade.steps ?? []).map((s) => [
              s.batch,
              s.kind,
              names.get(s.agentId ?? '') ?? s.agentId,
              s.status,
              s.phase,
              s.percent,
              s.waitingFor === 'window' && s.windowOpensAt ? `window, opens ${s.windowOpensAt}` : s.waitingFor,
              s.error,
            ]),
          ),
        );
      }),
    );

  upgrades
    .command('watch')
    .argument('<id>', 'the upgrade id')
    .description('follow an upgrade live, one bar per agent, until it ends; the exit code says how it ended')
    .option('--timeout <seconds>', 'give up (exit 7) if it has not ended by then', seconds)
    .addHelpText(
      'after',
      '\nExit codes: 0 succeeded, 3 failed (or its rollback failed), 4 completed with errors, 5 cancelled, 6 paused (a canary, or an operator),\n9 rolled back, 1 refused, 2 a wrong command line, 7 the server unreachable or failing (or --timeout passed), 8 the token refused.\nA stream cut by a restart is opened again and resumes where it stopped. With --json, each event as a JSON line.\n\nExample:\n  lockstep upgrades watch 6f1c... --timeout 3600 || echo "the upgrade did not succeed"',
    )
    .action(
      action(async ({ connection, out }, id: string, flags: { timeout?: number }) =>
        watchUpgrade(connection, id, out, { timeoutS: flags.timeout }),
      ),
    );

  for (const verb of ['pause', 'resume', 'cancel', 'retry'] as const) {
    upgrades
      .command(verb)
      .argument('<id>', 'the upgrade id')
      .description(`${verb} an upgrade (as POST /api/v1/upgrades/{id}/${verb})`)
      .addHelpText('after', `\nExample:\n  lockstep upgrades ${verb} 6f1c...`)
      .action(
        action(async ({ client, out }, id: string) => {
          const upgrade = expectData(
            await client.POST(`/api/v1/upgrades/{upgradeId}/${verb}`, { params: { path: { upgradeId: id } } }),
            verb,
          );
          if (out.json) return out.result(asJson(upgrade));
          out.result(
            `upgrade ${upgrade.id} ${upgrade.status}, ${upgrade.percent}%${upgrade.reason ? ` (${upgrade.reason})` : ''}`,
          );
        }),
      );
  }

  upgrades
    .command('rollback')
    .argument('<id>', 'the upgrade id')
    .description(
      'bring every agent the upgrade changed back to its old version with its backup, and each pair its roles (docs/rollback.md)',
    )
    .option('--preview', 'show what the rollback would do, and what refuses it; nothing changes')
    .addHelpText(
      'after',
      '\nThe rollback is pair-aware: a serving member is never stopped before its peer is back and has taken over.\nFollow it with lockstep upgrades watch <id> (exit code 9 once rolled back).\n\nExample:\n  lockstep upgrades rollback 6f1c... --preview\n  lockstep upgrades rollback 6f1c... && lockstep upgrades watch 6f1c...',
    )
    .action(
      action(async ({ client, out }, id: string, flags: { preview?: boolean }) => {
        const params = { params: { path: { upgradeId: id } } };
        if (!flags.preview) {
          const upgrade = expectData(await client.POST('/api/v1/upgrades/{upgradeId}/rollback', params), 'rollback');
          if (out.json) return out.result(asJson(upgrade));
          const all = upgrade.steps ?? [];
          const round = Math.max(0, ...all.map((s) => s.round));
          const planned = round > 0 ? all.filter((s) => s.round === round).length : 0;
          const running = all.filter((s) => s.status === 'running').length;
          return out.result(
            planned > 0
              ? `upgrade ${upgrade.id} ${upgrade.status}: ${planned} rollback step(s) planned`
              : `upgrade ${upgrade.id} ${upgrade.status}: the rollback is planned once ${running} running step(s) ended`,
          );
        }
        const preview = expectData(
          await client.POST('/api/v1/upgrades/{upgradeId}/rollback/preview', params),
          'rollback preview',
        );
        if (out.json) return out.result(asJson(preview));
        const upgrade = expectData(await client.GET('/api/v1/upgrades/{upgradeId}', params), `upgrade ${id}`);
        const names = new Map((await allAgents(client, upgrade.clusterId)).map((a) => [a.id, a.name]));
        out.result(
          table(
            ['BATCH', 'KIND', 'AGENT', 'TO VERSION', 'BACKUP'],
            preview.steps.map((s) => [
              s.batch + 1,
              s.kind,
              names.get(s.agentId ?? '') ?? s.agentId,
              s.toVersion,
              s.backup,
            ]),
          ),
        );
        for (const n of preview.notes) out.result(`note: ${n.message}`);
        for (const r of preview.refusals) out.result(`refused: ${r.message}`);
      }),
    );
}
