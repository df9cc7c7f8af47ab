import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { secretBanner } from '../auth/token-secret';
import { ConfigError, loadConfig } from '../config/app-config';
import { ADMIN_USAGE, parseAdminArgs } from './cli';
import { AdminRefusal, openExistingDatabase, resetAdminToken } from './reset-token';

const PROGRAM = 'lockstep admin';

/** package.json two levels up, from src/admin (ts-node) and from dist/admin (a build) alike. */
function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string })
    .version;
}

/** Runs the command line; resolves with the exit code: 0 done, 1 refused or failed, 2 a usage or configuration error. */
export async function runAdmin(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const line = parseAdminArgs(argv);
  if (line.kind === 'help') {
    process.stdout.write(`${ADMIN_USAGE}\n`);
    return 0;
  }
  if (line.kind === 'version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (line.kind === 'error') {
    process.stderr.write(`${PROGRAM}: ${line.message}\n${ADMIN_USAGE}\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) process.stderr.write(`${PROGRAM}: configuration error: ${problem}\n`);
    return 2;
  }
  const dataSource = await openExistingDatabase(config.database);
  try {
    const { token, secret, revoked } = await resetAdminToken(dataSource, {
      name: line.values.name,
      revokeOthers: line.values.revokeOthers,
      now: new Date(),
    });
    process.stdout.write(
      secretBanner(
        `New admin token "${token.name}" (id ${token.id}). It is shown only this once:`,
        secret,
        'Running servers accept it at once. Use it as "Authorization: Bearer <token>".',
      ),
    );
    if (line.values.revokeOthers) {
      process.stdout.write(
        `Revoked ${revoked} other admin token(s); running servers stop accepting them within 5 s.\n`,
      );
    }
    return 0;
  } finally {
    await dataSource.destroy();
  }
}

if (require.main === module) {
  runAdmin(process.argv.slice(2), process.env).then(
    (code) => process.exit(code),
    (error: unknown) => {
      const message = error instanceof AdminRefusal ? error.message : `failed: ${(error as Error).message}`;
      process.stderr.write(`${PROGRAM}: ${message}\n`);
      process.exit(1);
    },
  );
}
