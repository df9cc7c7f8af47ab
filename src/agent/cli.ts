import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | undefined>;

export type CommandLine<V> =
  { kind: 'run'; values: V } | { kind: 'help' } | { kind: 'version' } | { kind: 'error'; message: string };

/**
 * Reads a command line with node's parseArgs (strict: unknown flags, missing values and stray
 * words are refused) plus --help/-h and --version, then lets `check` turn the values into what the
 * program needs or say in one line what is wrong. Never throws: the caller prints usage, not a stack.
 * A program whose own --version takes a value (the package builder's) shows Lockstep's version
 * only for a lone --version.
 */
export function parseCommandLine<V>(
  argv: string[],
  options: Options,
  check: (values: Values) => V | string,
): CommandLine<V> {
  const ownVersion = 'version' in options;
  if (ownVersion && argv.length === 1 && argv[0] === '--version') return { kind: 'version' };
  let values: Values;
  try {
    const builtIn: Options = {
      help: { type: 'boolean', short: 'h' },
      ...(ownVersion ? {} : { version: { type: 'boolean' } }),
    };
    ({ values } = parseArgs({
      args: argv,
      options: { ...options, ...builtIn },
      strict: true,
      allowPositionals: false,
    }) as { values: Values });
  } catch (error) {
    // parseArgs says what is wrong in its first sentence; the rest is advice about positionals.
    return { kind: 'error', message: (error as Error).message.split('. ')[0].replace(/\.$/, '') };
  }
  if (values.help) return { kind: 'help' };
  if (values.version === true) return { kind: 'version' };
  const checked = check(values);
  return typeof checked === 'string' ? { kind: 'error', message: checked } : { kind: 'run', values: checked };
}

/** Lockstep's version: package.json two levels up, from src/agent (ts-node) and dist/agent (a build) alike. */
export function lockstepVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string })
    .version;
}

/**
 * Where a relative path on the command line points: npm runs scripts in the clone's root, and
 * INIT_CWD holds the folder `npm run` was typed in, so `--dir build/` means that folder's build/.
 */
export function fromInvocationDir(file: string, cwd: string = process.env.INIT_CWD || process.cwd()): string {
  return path.resolve(cwd, file);
}

/**
 * What a program does with its command line: usage on stdout and exit 0 for --help; the version
 * on stdout and exit 0 for --version; one line naming the problem and the usage on stderr and
 * exit 2 for bad arguments (the usual code for a usage error); otherwise the values.
 */
export function commandLineOrExit<V>(program: string, usage: string, line: CommandLine<V>): V {
  if (line.kind === 'run') return line.values;
  if (line.kind === 'help') {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  if (line.kind === 'version') {
    process.stdout.write(`${lockstepVersion()}\n`);
    process.exit(0);
  }
  process.stderr.write(`${program}: ${line.message}\n${usage}\n`);
  process.exit(2);
}
