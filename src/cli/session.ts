import { InvalidArgumentError, type Command } from 'commander';
import { clientFor, CliError, connectionFrom, reach, type Connection, type LockstepClient } from './api';
import { EXIT } from './exit-codes';
import { processOutput, type Output } from './output';
import { prerequisitesTable } from './plan-text';

/** What every command gets: where Lockstep is, a typed client, and where to write. */
export interface Session {
  connection: Connection;
  client: LockstepClient;
  out: Output;
}

interface GlobalFlags {
  url?: string;
  token?: string;
  json?: boolean;
}

/**
 * Wraps a command's action: builds the session from the global flags and the environment, runs
 * the action, and turns a refusal into its message (a PREREQUISITES_UNMET refusal also as a table
 * per agent) and an exit code. The action returns its exit code (0 unless it says otherwise).
 */
export function action<A extends unknown[]>(
  run: (session: Session, ...args: A) => Promise<number | void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const command = args[args.length - 1] as Command;
    const flags = command.optsWithGlobals<GlobalFlags>();
    const out = processOutput(flags.json === true);
    let code: number;
    try {
      const connection = connectionFrom(flags, process.env);
      const session = { connection, client: clientFor(connection), out };
      code = (await reach(connection, () => run(session, ...args))) ?? EXIT.ok;
    } catch (error) {
      code = report(error, out);
    }
    process.exitCode = code;
  };
}

function report(error: unknown, out: Output): number {
  if (!(error instanceof CliError)) {
    // A bug of the CLI's own: the message, and the stack with LOCKSTEP_DEBUG=1.
    const detail = process.env.LOCKSTEP_DEBUG ? (error as Error).stack : (error as Error).message;
    out.note(`lockstep: unexpected error: ${detail ?? String(error)}`);
    return EXIT.error;
  }
  if (out.json && error.body) out.result(JSON.stringify(error.body));
  out.note(`lockstep: ${error.message}`);
  if (error.body?.requestId) out.note(`(request id ${error.body.requestId})`);
  const prerequisites = error.body?.code === 'PREREQUISITES_UNMET' ? prerequisitesTable(error.body.details) : undefined;
  if (prerequisites && !out.json) out.note(prerequisites);
  return error.exitCode;
}

/** `--option maxParallel=25% --option canary=1`: numbers and booleans as such, the rest as text. */
export function collectOption(pair: string, options: Record<string, unknown> = {}): Record<string, unknown> {
  const at = pair.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`want key=value (got "${pair}")`);
  const key = pair.slice(0, at);
  const raw = pair.slice(at + 1);
  let value: unknown = raw;
  if (/^-?\d+(\.\d+)?$/.test(raw)) value = Number(raw);
  else if (raw === 'true' || raw === 'false') value = raw === 'true';
  return { ...options, [key]: value };
}

/**
 * `--label site=eu-1 --label tier=db` as one label map: the key up to the first "=". The server
 * checks the keys and values (and names a bad one); one key with two values is refused here, as
 * no agent has both.
 */
export function collectLabel(pair: string, labels: Record<string, string> = {}): Record<string, string> {
  const at = pair.indexOf('=');
  if (at <= 0 || at === pair.length - 1)
    throw new InvalidArgumentError(`want key=value, such as site=eu-1 (got "${pair}")`);
  const key = pair.slice(0, at);
  const value = pair.slice(at + 1);
  if (Object.hasOwn(labels, key) && labels[key] !== value) {
    throw new InvalidArgumentError(`${key} given twice (${labels[key]} and ${value}); an agent has one value per key`);
  }
  return { ...labels, [key]: value };
}

/** `--agents a,b --agents c` as one list. */
export const collectList = (value: string, previous: string[] = []) => [
  ...previous,
  ...value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean),
];
