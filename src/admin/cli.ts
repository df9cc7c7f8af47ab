import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { parseArgs } from 'node:util';
import { CreateTokenDto } from '../auth/dto/token.dto';

export const DEFAULT_TOKEN_NAME = 'recovered admin';

export const ADMIN_USAGE = `usage: npm run admin -- reset-token [--name NAME] [--revoke-others]
Administers Lockstep through its database, for when no admin token is at hand (access to the
database is the authority here). Reads the same environment as the server: DATABASE_URL, else the
SQLite file under DATA_DIR. The database must exist and be fully migrated; nothing is created.

  reset-token          issue a new admin token and print its secret once; running servers
                       accept it at once
  --name NAME          the new token's name (default "${DEFAULT_TOKEN_NAME}")
  --revoke-others      also revoke every other admin token; running servers stop accepting
                       them within 5 s
  -h, --help           this text
  --version            the version of Lockstep`;

export interface ResetTokenArgs {
  command: 'reset-token';
  name: string;
  revokeOthers: boolean;
}

export type AdminCommandLine =
  { kind: 'run'; values: ResetTokenArgs } | { kind: 'help' } | { kind: 'version' } | { kind: 'error'; message: string };

/**
 * Reads the admin command line without side effects: strict flags, one command word. Never
 * throws, so main prints one line and the usage instead of a stack trace.
 */
export function parseAdminArgs(argv: string[]): AdminCommandLine {
  let values: { name?: string; 'revoke-others'?: boolean; help?: boolean; version?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        name: { type: 'string' },
        'revoke-others': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (error) {
    // parseArgs says what is wrong in its first sentence (as src/agent/cli.ts reads it).
    return { kind: 'error', message: (error as Error).message.split('. ')[0].replace(/\.$/, '') };
  }
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const [command, ...extra] = positionals;
  if (command === undefined) return { kind: 'error', message: 'missing the command: reset-token' };
  if (command !== 'reset-token')
    return { kind: 'error', message: `unknown command "${command}" (the command is reset-token)` };
  if (extra.length > 0) return { kind: 'error', message: `Unexpected argument '${extra[0]}'` };
  // The same rules as a name given to POST /api/v1/tokens.
  const dto = plainToInstance(CreateTokenDto, { name: values.name ?? DEFAULT_TOKEN_NAME, role: 'admin' });
  const problem = validateSync(dto).flatMap((e) => Object.values(e.constraints ?? {}))[0];
  if (problem) return { kind: 'error', message: `--${problem}` };
  return { kind: 'run', values: { command, name: dto.name, revokeOthers: values['revoke-others'] ?? false } };
}
