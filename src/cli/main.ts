#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { lockstepVersion } from '../agent/cli';
import { agentCommands } from './commands/agents';
import { clusterCommands } from './commands/clusters';
import { packageCommands } from './commands/packages';
import { upgradeCommands } from './commands/upgrades';
import { EXIT } from './exit-codes';

/** The `lockstep` command: the API for automation and people at a terminal (docs/cli.md). */
export function lockstepProgram(version: string): Command {
  const program = new Command('lockstep')
    .description('Lockstep from the command line: clusters, agents, packages, upgrades')
    .version(version, '--version')
    .option('--url <url>', "Lockstep's base URL (default: $LOCKSTEP_URL, else http://localhost:8080)")
    .option(
      '--token <token>',
      'an API token (default: $LOCKSTEP_TOKEN; prefer the variable: a flag shows in ps and shell history)',
    )
    .option('--json', 'print JSON for scripts (results on stdout; notes and progress on stderr)')
    .showHelpAfterError('(add --help for usage and examples)')
    .addHelpText(
      'after',
      '\nEnvironment: LOCKSTEP_URL, LOCKSTEP_TOKEN.\n\nExamples:\n  export LOCKSTEP_URL=http://localhost:8080 LOCKSTEP_TOKEN=...\n  lockstep clusters list\n  lockstep packages upload acme-agent-10.3.0.tar.gz --cluster production\n  lockstep upgrades start --cluster production --package 10.3.0 --policy backup-first\n  lockstep upgrades watch <id>',
    );
  clusterCommands(program);
  agentCommands(program);
  packageCommands(program);
  upgradeCommands(program);
  // A wrong command line exits 2, set apart from a refusal (1) and from how an upgrade ended (3-6).
  program.exitOverride();
  for (const command of allCommands(program)) command.exitOverride();
  return program;
}

function allCommands(command: Command): Command[] {
  return command.commands.flatMap((c) => [c, ...allCommands(c)]);
}

export async function main(): Promise<void> {
  try {
    await lockstepProgram(lockstepVersion()).parseAsync(process.argv);
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
}

if (require.main === module) void main();
