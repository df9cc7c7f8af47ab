import { Option, type Command } from 'commander';
import * as fs from 'node:fs';
import { buildPackage, PACKAGE_USAGE, parsePackageArgs, referenceAgentNotes } from '../../agent/build-package';
import { CliError, expectData } from '../api';
import { EXIT } from '../exit-codes';
import { asJson, table } from '../output';
import { allAgents, resolveCluster } from '../resolve';
import { action } from '../session';
import { upgradeFields, withUpgradeFlags, type UpgradeFlags } from '../upgrade-request';
import { uploadPackage } from '../upload';

export function packageCommands(program: Command): void {
  const packages = program.command('packages').description('upgrade packages: build, upload, list');

  withUpgradeFlags(
    packages
      .command('upload')
      .argument('<file>', 'the package, a .tar.gz')
      .description(
        'upload a package (checked against every agent of the cluster); --mode install also starts the upgrade',
      )
      .requiredOption('--cluster <cluster>', 'the cluster, by id or name')
      .addOption(
        new Option('--mode <mode>', 'upload-only keeps it; install also upgrades')
          .choices(['upload-only', 'install'])
          .default('upload-only'),
      )
      .option(
        '--signature <sig>',
        "the package's signature: a .sig file, or its base64 text (default: <file>.sig when there is one)",
      ),
  )
    .addHelpText(
      'after',
      '\nUpgrade flags (--agents, --policy, --option, --at) apply to --mode install.\n\nExamples:\n  lockstep packages upload acme-agent-10.3.0.tar.gz --cluster production\n  lockstep packages upload acme-agent-10.3.0.tar.gz --cluster production --signature acme-agent-10.3.0.tar.gz.sig\n  lockstep packages upload hotfix.tar.gz --cluster production --mode install --agents app-1 --option maxParallel=25%',
    )
    .action(
      action(
        async (
          { client, connection, out },
          file: string,
          flags: UpgradeFlags & { cluster: string; mode: string; signature?: string },
        ) => {
          const cluster = await resolveCluster(client, flags.cluster);
          const fields: Record<string, string> = { mode: flags.mode };
          const signature = signatureFor(file, flags.signature);
          if (signature) {
            fields.signature = signature.text;
            if (signature.from) out.note(`signed: sending the signature in ${signature.from}`);
          }
          if (flags.mode === 'install') {
            const upgrade = await upgradeFields(() => allAgents(client, cluster.id), flags);
            fields.target = JSON.stringify(upgrade.target);
            if (upgrade.policy) fields.policy = upgrade.policy;
            if (upgrade.options) fields.options = JSON.stringify(upgrade.options);
            if (upgrade.scheduledAt) fields.scheduledAt = upgrade.scheduledAt;
          }
          const { status, answer } = await uploadPackage(connection, {
            file,
            clusterId: cluster.id,
            fields,
            progress: !out.json,
          });
          if (out.json) return out.result(asJson(answer));
          const pkg = 'package' in answer ? answer.package : answer;
          out.result(
            `${status === 201 ? 'uploaded' : 'already there (same bytes)'}: ${pkg.product} ${pkg.version} (${pkg.kind}), ${pkg.status}, id ${pkg.id}${pkg.signingKey ? `, signed by ${pkg.signingKey.name}` : ''}`,
          );
          if ('upgrade' in answer)
            out.result(
              `upgrade ${answer.upgrade.id} ${answer.upgrade.status}; follow it: lockstep upgrades watch ${answer.upgrade.id}`,
            );
          for (const w of pkg.warnings) out.note(`warning: ${JSON.stringify(w)}`);
        },
      ),
    );

  packages
    .command('list')
    .description("a cluster's packages, newest first: available, reserved by an upgrade, or completed")
    .requiredOption('--cluster <cluster>', 'the cluster, by id or name')
    .addOption(
      new Option('--status <status>', 'only packages with this status').choices(['available', 'reserved', 'completed']),
    )
    .addHelpText('after', '\nExample:\n  lockstep packages list --cluster production --status available')
    .action(
      action(async ({ client, out }, flags: { cluster: string; status?: 'available' | 'reserved' | 'completed' }) => {
        const cluster = await resolveCluster(client, flags.cluster);
        const page = expectData(
          await client.GET('/api/v1/clusters/{clusterId}/packages', {
            params: {
              path: { clusterId: cluster.id },
              query: { limit: 100, ...(flags.status ? { status: flags.status } : {}) },
            },
          }),
          'list packages',
        );
        if (out.json) return out.result(asJson(page.items));
        out.result(
          table(
            ['VERSION', 'KIND', 'STATUS', 'SIZE', 'UPLOADED', 'ID'],
            page.items.map((p) => [p.version, p.kind, p.status, p.size, p.uploadedAt, p.id]),
          ),
        );
        if (page.total > page.items.length) out.note(`(${page.items.length} of ${page.total}; --json for scripts)`);
      }),
    );

  packages
    .command('build')
    .description('build a package from a folder (the package builder; needs no server)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .addHelpText('after', `\n${PACKAGE_USAGE}`)
    .action(async (args: string[]) => {
      const parsed = parsePackageArgs(args);
      if (parsed.kind === 'help') return void process.stdout.write(`${PACKAGE_USAGE}\n`);
      if (parsed.kind !== 'run') {
        process.stderr.write(
          `lockstep packages build: ${parsed.kind === 'error' ? parsed.message : 'see --help'}\n${PACKAGE_USAGE}\n`,
        );
        process.exitCode = EXIT.usage;
        return;
      }
      for (const note of referenceAgentNotes(parsed.values)) process.stderr.write(`note: ${note}\n`);
      try {
        process.stdout.write(`${await buildPackage(parsed.values)}\n`);
      } catch (error) {
        process.stderr.write(`lockstep packages build: ${(error as Error).message}\n`);
        process.exitCode = error instanceof CliError ? error.exitCode : EXIT.error;
      }
    });
}

/**
 * The signature to send with an upload: --signature as a file (a .sig written by npm run package --
 * --sign-key) or as the base64 text itself; without it, <file>.sig beside the archive if there is one.
 */
export function signatureFor(file: string, given: string | undefined): { text: string; from?: string } | null {
  const read = (path: string) => fs.readFileSync(path, 'utf8').trim();
  if (given === undefined) {
    const beside = `${file}.sig`;
    return fs.existsSync(beside) ? { text: read(beside), from: beside } : null;
  }
  if (fs.existsSync(given)) return { text: read(given), from: given };
  if (/^[A-Za-z0-9+/]{86}==$/.test(given.trim())) return { text: given.trim() };
  throw new CliError(
    `--signature ${given} is neither a file nor a base64 signature (88 characters)`,
    undefined,
    EXIT.usage,
  );
}
