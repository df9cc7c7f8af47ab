import * as fs from 'node:fs';
import { DataSource, DataSourceOptions } from 'typeorm';
import { AuditRecord } from '../audit/audit-record.entity';
import { auditRecordOf } from '../audit/audit-trail.service';
import { systemOrigin } from '../audit/origin';
import { AccessToken } from '../auth/access-token.entity';
import { generateSecret, newAccessToken, USER_TOKEN_PREFIX } from '../auth/token-secret';
import type { AppConfig } from '../config/app-config';
import { dataSourceOptions } from '../database/database';

/** A reason not to go on, said in one line (no stack trace). */
export class AdminRefusal extends Error {}

/**
 * Opens the server's database as the server would, but only one that exists and has every
 * migration of this version applied: the CLI never creates a database, nor migrates one.
 */
export async function openExistingDatabase(database: AppConfig['database']): Promise<DataSource> {
  if (database.type === 'sqlite' && !fs.existsSync(database.file)) {
    throw new AdminRefusal(
      `there is no Lockstep database at ${database.file}; set DATA_DIR (or DATABASE_URL) as the server has it. Nothing was created.`,
    );
  }
  // fileMustExist: better-sqlite3 would otherwise create an empty file (if it vanished meanwhile).
  const options = {
    ...dataSourceOptions(database),
    ...(database.type === 'sqlite' ? { fileMustExist: true } : {}),
  } as DataSourceOptions;
  const where = database.type === 'sqlite' ? database.file : 'the PostgreSQL database in DATABASE_URL';
  const dataSource = new DataSource(options);
  try {
    await dataSource.initialize();
  } catch (error) {
    const missing = (error as { code?: string }).code === '3D000';
    throw new AdminRefusal(
      missing
        ? `${where} does not exist; check that DATABASE_URL names the database the server uses.`
        : `could not open ${where}: ${(error as Error).message}`,
    );
  }
  try {
    await checkMigrations(dataSource, options.migrationsTableName ?? 'migrations', where);
    return dataSource;
  } catch (error) {
    await dataSource.destroy().catch(() => undefined);
    throw error;
  }
}

async function checkMigrations(dataSource: DataSource, table: string, where: string): Promise<void> {
  const runner = dataSource.createQueryRunner();
  try {
    if (!(await runner.hasTable(table))) {
      throw new AdminRefusal(
        `${where} holds no Lockstep schema (no ${table} table); start Lockstep once against it first.`,
      );
    }
    const applied = new Set<string>(
      ((await runner.query(`SELECT "name" FROM "${table}"`)) as { name: string }[]).map((row) => row.name),
    );
    const known = dataSource.migrations.map((m) => m.name ?? m.constructor.name);
    const pending = known.filter((name) => !applied.has(name));
    if (pending.length > 0) {
      throw new AdminRefusal(
        `${where} has ${pending.length} pending migration(s) (${pending.join(', ')}); start this version of Lockstep once (it applies them) or run npm run migration:run, then try again.`,
      );
    }
    const unknown = [...applied].filter((name) => !known.includes(name));
    if (unknown.length > 0) {
      throw new AdminRefusal(
        `${where} was migrated by a newer Lockstep (${unknown.join(', ')} unknown here); use that version's npm run admin.`,
      );
    }
  } finally {
    await runner.release();
  }
}

/**
 * Issues a new admin token in one transaction and, with `revokeOthers`, revokes every other
 * unrevoked admin token in the same one. The secret is returned here and stored only as a hash.
 */
export async function resetAdminToken(
  dataSource: DataSource,
  args: { name: string; revokeOthers: boolean; now: Date },
): Promise<{ token: AccessToken; secret: string; revoked: number }> {
  const secret = generateSecret(USER_TOKEN_PREFIX);
  const token = newAccessToken(
    { name: args.name, role: 'admin', secret, createdByTokenId: null, agentId: null },
    args.now,
  );
  return dataSource.transaction(async (em) => {
    let revoked = 0;
    if (args.revokeOthers) {
      // Before the insert, so the new token is not among them.
      const result = await em
        .createQueryBuilder()
        .update(AccessToken)
        .set({ revokedAt: args.now })
        .where('role = :role AND revokedAt IS NULL', { role: 'admin' })
        .execute();
      revoked = result.affected ?? 0;
    }
    await em.insert(AccessToken, token);
    // Audited as the server's own changes are (docs/audit.md); the shell user is not known here.
    await em.insert(
      AuditRecord,
      auditRecordOf(
        systemOrigin('admin-cli'),
        {
          action: 'token.create',
          target: 'token',
          targetId: token.id,
          clusterId: null,
          summary: `npm run admin reset-token issued admin token "${args.name}"${revoked ? ` and revoked ${revoked} other admin token(s)` : ''}`,
        },
        args.now,
      ),
    );
    return { token, secret, revoked };
  });
}
