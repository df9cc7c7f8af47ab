import { Logger, OnApplicationShutdown } from '@nestjs/common';
import { Mutex } from 'async-mutex';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataSource, DataSourceOptions, EntityManager } from 'typeorm';
import { isDeadlock } from '../common/db-errors';
import { AppConfig } from '../config/app-config';
import { ENTITIES } from './entities';
import { POSTGRES_MIGRATIONS } from './migrations/postgres';
import { SQLITE_MIGRATIONS } from './migrations/sqlite';

/** What a transaction body gets: its EntityManager, and a place to queue work for after commit. */
export interface Tx {
  readonly em: EntityManager;
  /** Runs after the transaction commits (never if it rolls back): publish events, wake others. */
  afterCommit(hook: () => void | Promise<void>): void;
  /** On PostgreSQL, serialises this transaction with every other one taking the same lock name. */
  advisoryLock(name: string): Promise<void>;
  /** Lock option for reads that are about to be updated: FOR UPDATE on PostgreSQL (SQLite's writes are serialised already). */
  readonly rowLock: { mode: 'pessimistic_write' } | undefined;
}

export type DatabaseType = 'sqlite' | 'postgres';

/** Advisory lock key under which replicas run migrations one at a time (arbitrary, fixed). */
const MIGRATION_LOCK_KEY = 7_318_201_001;
const SQLITE_BUSY_TIMEOUT_MS = 5000;
const DEADLOCK_RETRIES = 3;

/** The connection options for each database, shared by the app and the migration CLI. */
export function dataSourceOptions(database: AppConfig['database']): DataSourceOptions {
  if (database.type === 'postgres') {
    return {
      type: 'postgres',
      url: database.url,
      entities: ENTITIES,
      migrations: POSTGRES_MIGRATIONS,
      migrationsTableName: 'migrations',
      applicationName: 'lockstep',
      synchronize: false,
    };
  }
  return {
    type: 'better-sqlite3',
    database: database.file,
    entities: ENTITIES,
    migrations: SQLITE_MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    timeout: SQLITE_BUSY_TIMEOUT_MS,
    prepareDatabase: (db: { pragma(sql: string): unknown }) => {
      db.pragma('journal_mode = WAL');
      // FULL: a write acknowledged to a client survives a power cut, not only a process crash.
      db.pragma('synchronous = FULL');
    },
  };
}

/**
 * The one way Lockstep reaches its database.
 *
 * Writes go through `transaction()`. On SQLite, TypeORM's better-sqlite3 driver runs every query
 * runner on a single connection, so two overlapping transactions would nest as savepoints and one
 * request's rollback could undo another's write. Transactions are therefore serialised by a mutex,
 * and reads (`reader`) use a second, read-only connection that only ever sees committed data.
 * On PostgreSQL both are the same pooled DataSource and transactions run concurrently.
 */
export class Database implements OnApplicationShutdown {
  private readonly logger = new Logger(Database.name);
  private readonly writeLock = new Mutex();
  private readonly dialectCache = new Map<string, string>();

  private constructor(
    readonly type: DatabaseType,
    private readonly writer: DataSource,
    private readonly readerSource: DataSource,
  ) {}

  /** Opens the database, creating the SQLite file on first start, and applies pending migrations. */
  static async open(config: Pick<AppConfig, 'database' | 'dataDir'>): Promise<Database> {
    const options = dataSourceOptions(config.database);
    if (config.database.type === 'sqlite') {
      fs.mkdirSync(path.dirname(config.database.file), { recursive: true });
    }
    const writer = await new DataSource(options).initialize();
    try {
      await Database.migrate(writer);
      if (config.database.type === 'postgres') {
        return new Database('postgres', writer, writer);
      }
      const reader = await new DataSource({ ...options, readonly: true, prepareDatabase: undefined } as DataSourceOptions).initialize();
      return new Database('sqlite', writer, reader);
    } catch (error) {
      await writer.destroy().catch(() => undefined);
      throw error;
    }
  }

  /** Applies pending migrations; on PostgreSQL under an advisory lock so replicas starting together take turns. */
  private static async migrate(dataSource: DataSource): Promise<void> {
    const logger = new Logger(Database.name);
    if (dataSource.options.type !== 'postgres') {
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      if (applied.length) logger.log(`applied migrations: ${applied.map((m) => m.name).join(', ')}`);
      return;
    }
    const lockRunner = dataSource.createQueryRunner();
    await lockRunner.connect();
    try {
      await lockRunner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      if (applied.length) logger.log(`applied migrations: ${applied.map((m) => m.name).join(', ')}`);
    } finally {
      await lockRunner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
      await lockRunner.release();
    }
  }

  /**
   * SQL written with PostgreSQL placeholders ($1, $2...) in this database's dialect. For the few
   * hot queries that skip TypeORM's query builder; the driver caches their prepared statements.
   */
  sql(text: string): string {
    let converted = this.dialectCache.get(text);
    if (converted === undefined) {
      converted = this.type === 'sqlite' ? text.replace(/\$\d+/g, '?') : text;
      this.dialectCache.set(text, converted);
    }
    return converted;
  }

  /** EntityManager for reads outside a transaction; sees committed data only. */
  get reader(): EntityManager {
    return this.readerSource.manager;
  }

  async transaction<T>(body: (tx: Tx) => Promise<T>): Promise<T> {
    let hooks: Array<() => void | Promise<void>> = [];
    const attempt = () => {
      hooks = [];
      return this.writer.transaction((em) =>
        body({
          em,
          afterCommit: (hook) => void hooks.push(hook),
          advisoryLock: async (name) => {
            if (this.type === 'postgres') await em.query('SELECT pg_advisory_xact_lock(hashtext($1))', [name]);
          },
          rowLock: this.type === 'postgres' ? { mode: 'pessimistic_write' } : undefined,
        }),
      );
    };
    const run = async () => {
      // PostgreSQL breaks a deadlock by aborting one of the transactions: that one runs again.
      for (let tries = 1; ; tries++) {
        try {
          return await attempt();
        } catch (error) {
          if (tries >= DEADLOCK_RETRIES || !isDeadlock(error)) throw error;
          this.logger.warn(`deadlock detected; running the transaction again (attempt ${tries + 1})`);
        }
      }
    };
    const result = this.type === 'sqlite' ? await this.writeLock.runExclusive(run) : await run();
    for (const hook of hooks) {
      try {
        await hook();
      } catch (error) {
        // The transaction is committed; a failing hook must not turn it into an error for the caller.
        this.logger.error(`after-commit hook failed: ${(error as Error).message}`, (error as Error).stack);
      }
    }
    return result;
  }

  /** Throws unless the database answers; used by the readiness check. */
  async ping(): Promise<void> {
    await this.readerSource.query('SELECT 1');
  }

  /** SQL that would bring the schema in line with the entities; empty when migrations are complete. */
  async pendingSchemaChanges(): Promise<string[]> {
    const sql = await this.writer.driver.createSchemaBuilder().log();
    return sql.upQueries.map((q) => q.query);
  }

  async close(): Promise<void> {
    if (this.readerSource !== this.writer && this.readerSource.isInitialized) await this.readerSource.destroy();
    if (this.writer.isInitialized) await this.writer.destroy();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}

/**
 * Writes back a row that was read in the same transaction, with one UPDATE by id. (`save()` reads
 * the row again first to find what changed: a second query on every hot write.)
 */
export async function updateById<T extends { id: string }>(em: EntityManager, entity: new () => T, row: T): Promise<void> {
  const { id, ...columns } = row;
  await em.update(entity, { id } as never, columns as never);
}
