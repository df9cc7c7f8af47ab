import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | undefined>;

export type CommandLine<V> = { kind: 'run'; values: V } | { kind: 'help' } | { kind: 'error'; message: string };

/**
 * Reads a command line with node's parseArgs (strict: unknown flags, missing values and stray
 * words are refused) plus --help/-h, then lets `check` turn the values into what the program
 * needs or say in one line what is wrong. Never throws: the caller prints usage, not a stack.
 */
export function parseCommandLine<V>(argv: string[], options: Options, check: (values: Values) => V | string): CommandLine<V> {
  let values: Values;
  try {
    ({ values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }));
  } catch (error) {
    // parseArgs says what is wrong in its first sentence; the rest is advice about positionals.
    return { kind: 'error', message: (error as Error).message.split('. ')[0].replace(/\.$/, '') };
  }
  if (values.help) return { kind: 'help' };
  const checked = check(values);
  return typeof checked === 'string' ? { kind: 'error', message: checked } : { kind: 'run', values: checked };
}

/**
 * What a program does with its command line: usage on stdout and exit 0 for --help; one line
 * naming the problem and the usage on stderr and exit 2 for bad arguments (the usual code for a
 * usage error); otherwise the values.
 */
export function commandLineOrExit<V>(program: string, usage: string, line: CommandLine<V>): V {
  if (line.kind === 'run') return line.values;
  if (line.kind === 'help') {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  process.stderr.write(`${program}: ${line.message}\n${usage}\n`);
  process.exit(2);
}
