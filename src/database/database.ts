import { HttpStatus, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Mutex } from 'async-mutex';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataSource, DataSourceOptions, EntityManager } from 'typeorm';
import { DomainError } from '../common/errors';
import { DiskFullError, isDeadlock, isDiskFull, isSqliteIoError, WriterUnusableError } from '../common/db-errors';
import { AppConfig } from '../config/app-config';
import { ENTITIES } from './entities';
import { BACKSTOP_AUTOCHECKPOINT_PAGES, Checkpointer } from './checkpointer';
import { Rows } from './rows';
import { POSTGRES_MIGRATIONS } from './migrations/postgres';
import { SQLITE_MIGRATIONS } from './migrations/sqlite';

/** What a transaction body gets: its EntityManager, and a place to queue work for after commit. */
export interface Tx {
  readonly em: EntityManager;
  /** Runs after the transaction commits (never if it rolls back): publish events, wake others. */
  afterCommit(hook: () => void | Promise<void>): void;
  /** Runs inside the transaction once its body is done, last: where the event log writes the events the body appended. */
  beforeCommit(hook: () => Promise<void>): void;
  /** On PostgreSQL, serialises this transaction with every other one taking the same lock name. */
  advisoryLock(name: string): Promise<void>;
  /** Lock option for reads that are about to be updated: FOR UPDATE on PostgreSQL (SQLite's writes are serialised already). */
  readonly rowLock: { mode: 'pessimistic_write' } | undefined;
}

export type DatabaseType = 'sqlite' | 'postgres';

/** Advisory lock key under which replicas run migrations one at a time (arbitrary, fixed). */
const MIGRATION_LOCK_KEY = 7_318_201_001;
const SQLITE_BUSY_TIMEOUT_MS = 5000;
/**
 * The writer's page cache, in KiB (SQLite's default is 2 MiB). The heartbeat's read runs on it
 * (Database.hotRead) and looks agents up by id all over the table: at 100,000 agents the agents
 * table and its indexes are some 60 MiB, and a page not cached is a read from the file. Memory is
 * taken only as pages are read.
 */
const SQLITE_WRITER_CACHE_KIB = 128 * 1024;
const DEADLOCK_RETRIES = 3;
/** While writes are failing, the readiness check tries a write at most this often. */
const WRITE_PROBE_EVERY_MS = 1000;

/** What Lockstep uses of the better-sqlite3 connection under TypeORM's SQLite writer. */
interface SqliteHandle {
  readonly inTransaction: boolean;
  exec(sql: string): unknown;
  pragma(sql: string, options: { simple: true }): unknown;
}

/**
 * TypeORM's one query runner on that connection (BetterSqlite3Driver.createQueryRunner always
 * returns the same one), with the transaction bookkeeping it keeps apart from SQLite's.
 */
interface SqliteRunner {
  isTransactionActive: boolean;
  transactionDepth: number;
}

/** Why writes cannot be trusted to succeed right now (SQLite); shown by the readiness check. */
export interface WriteTrouble {
  code: 'DISK_FULL' | 'DATABASE_IO_ERROR' | 'DATABASE_UNAVAILABLE';
  message: string;
  since: Date;
}

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
      // NORMAL: a COMMIT writes the WAL without syncing it, so the event loop never waits for the
      // disk (better-sqlite3 is synchronous; a sync took 2-7 ms, on every commit). A write is still
      // acknowledged only once the WAL is synced: Database.transaction() syncs it off the loop, one
      // sync for every commit made meanwhile (docs/durability.md, "Group commit").
      db.pragma('synchronous = NORMAL');
      // Checkpoints run on a thread of their own (Checkpointer); this one is only its backstop.
      db.pragma(`wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT_PAGES}`);
      db.pragma(`cache_size = -${SQLITE_WRITER_CACHE_KIB}`);
    },
  };
}

/** The part of a better-sqlite3 connection hotRead uses. */
interface SqliteReadHandle {
  prepare(sql: string): { all(...params: unknown[]): unknown[] };
  readonly inTransaction: boolean;
  readonly open: boolean;
}

/**
 * The one way Lockstep reaches its database.
 *
 * Writes go through `transaction()`. On SQLite, TypeORM's better-sqlite3 driver runs every query
 * runner on a single connection, so two overlapping transactions would nest as savepoints and one
 * request's rollback could undo another's write. Transactions are therefore serialised by a mutex,
 * and reads (`reader`) use a second, read-only connection that only ever sees committed data (the
 * hot reads use the writer between its transactions, see hotRead). On PostgreSQL both are the same pooled DataSource and transactions run concurrently.
 */
/** What pg's Pool counts (the driver's `master`). */
interface PgPoolCounts {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

export class Database implements OnApplicationShutdown {
  private readonly logger = new Logger(Database.name);
  private readonly writeLock = new Mutex();
  private readonly dialectCache = new Map<string, string>();
  private readonly rowsCache = new Map<new () => object, Rows<object>>();
  /** hotRead's prepared statements, per connection (a reopened connection prepares its own). */
  private readonly hotStatements = new WeakMap<
    SqliteReadHandle,
    Map<string, { all(...params: unknown[]): unknown[] }>
  >();
  /** Group commit on SQLite: commits made on the writer, and how many of them are known to be on disk. */
  private commits = 0;
  private synced = 0;
  /** The sync of the WAL in progress, if any; commits made after it started wait for the next one. */
  private syncing: Promise<void> | null = null;
  /** Set by a write that failed for want of disk space or an I/O error; cleared by the next commit or probe. */
  private trouble: WriteTrouble | null = null;
  private lastProbeAt = 0;
  /** Transactions waiting for the SQLite writer (what a pool's waiting count is on PostgreSQL). */
  private waitingForWriter = 0;

  private constructor(
    readonly type: DatabaseType,
    private readonly writer: DataSource,
    private readonly readerSource: DataSource,
    /** The SQLite file (its WAL is this path with -wal); undefined on PostgreSQL. */
    private readonly sqliteFile?: string,
    private readonly checkpointer?: Checkpointer,
  ) {}

  /**
   * How the connections are used now, for the metrics: on PostgreSQL the pool's connections (busy,
   * idle) and the queries waiting for one; on SQLite the one writer (busy or idle) and the
   * transactions waiting for it.
   */
  connectionUse(): { busy: number; idle: number; waiting: number } {
    if (this.type === 'sqlite') {
      const busy = this.writeLock.isLocked() ? 1 : 0;
      return { busy, idle: 1 - busy, waiting: this.waitingForWriter };
    }
    const pool = (this.writer.driver as unknown as { master?: PgPoolCounts }).master;
    if (!pool) return { busy: 0, idle: 0, waiting: 0 };
    return { busy: pool.totalCount - pool.idleCount, idle: pool.idleCount, waiting: pool.waitingCount };
  }

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
      const reader = await new DataSource({
        ...options,
        readonly: true,
        prepareDatabase: undefined,
      } as DataSourceOptions).initialize();
      return new Database('sqlite', writer, reader, config.database.file, new Checkpointer(config.database.file));
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

  /** Fixed SQL for one entity's table (see Rows): for the hot paths, where the query builder costs more than the query. */
  rows<T extends object>(entity: new () => T): Rows<T> {
    let rows = this.rowsCache.get(entity);
    if (!rows) {
      rows = new Rows(this.type, entity, this.writer.getMetadata(entity));
      this.rowsCache.set(entity, rows);
    }
    return rows as Rows<T>;
  }

  /**
   * A committed-data read for the hottest paths (every heartbeat): fixed SQL with PostgreSQL
   * placeholders. On SQLite it runs on a connection's own prepared statement, kept per statement
   * text, without TypeORM's query runner around it, which costs more than the read (see
   * bench/heartbeat): the writer's between transactions, else the read-only one. On PostgreSQL it
   * is the reader's query.
   */
  async hotRead<T>(text: string, params: unknown[]): Promise<T[]> {
    if (this.type !== 'sqlite') return this.reader.query(this.sql(text), params);
    const handle = (source: DataSource) =>
      (source.driver as unknown as { databaseConnection: SqliteReadHandle }).databaseConnection;
    // The writer when it is between transactions: it then holds only committed data, and its page
    // cache stays warm, where the reader's is dropped whenever another connection wrote (every
    // liveness flush, every report), so each of its reads went to the file again (bench/fleet).
    // Never a writer that is closed (reopened after a disk or I/O failure): reads go on meanwhile.
    const writer = this.writer.isInitialized ? handle(this.writer) : null;
    const connection = writer?.open && !writer.inTransaction ? writer : handle(this.readerSource);
    let statements = this.hotStatements.get(connection);
    if (!statements)
      this.hotStatements.set(connection, (statements = new Map<string, { all(...params: unknown[]): unknown[] }>()));
    let statement = statements.get(text);
    if (!statement) statements.set(text, (statement = connection.prepare(this.sql(text))));
    return statement.all(...params) as T[];
  }

  /** EntityManager for reads outside a transaction; sees committed data only. */
  get reader(): EntityManager {
    return this.readerSource.manager;
  }

  async transaction<T>(body: (tx: Tx) => Promise<T>): Promise<T> {
    let hooks: Array<() => void | Promise<void>> = [];
    const attempt = () => {
      hooks = [];
      // A transaction holds an advisory lock until it ends: taking it again would be one more round trip for nothing.
      const locked = new Set<string>();
      const last: Array<() => Promise<void>> = [];
      return this.writer.transaction(async (em) => {
        const result = await body({
          em,
          afterCommit: (hook) => void hooks.push(hook),
          beforeCommit: (hook) => void last.push(hook),
          advisoryLock: async (name) => {
            if (this.type !== 'postgres' || locked.has(name)) return;
            await em.query('SELECT pg_advisory_xact_lock(hashtext($1))', [name]);
            locked.add(name);
          },
          rowLock: this.type === 'postgres' ? { mode: 'pessimistic_write' } : undefined,
        });
        for (const hook of last) await hook();
        return result;
      });
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
    let result: T;
    try {
      result = this.type === 'sqlite' ? await this.onSqliteWriterInTurn(run) : await run();
      // Outside the write lock: the next transaction runs while this one's sync is under way.
      if (this.type === 'sqlite') await this.durable(this.commits).catch((error: unknown) => this.unconfirmed(error));
    } catch (error) {
      throw isDiskFull(error) && !(error instanceof DiskFullError) ? new DiskFullError(error) : error;
    }
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

  /**
   * Runs one transaction on SQLite's single writer connection (the caller holds the write lock).
   *
   * TypeORM keeps its own count of open transactions on that connection (transactionDepth) and
   * opens a SAVEPOINT instead of BEGIN whenever it believes one is open. When a statement or the
   * COMMIT fails with SQLITE_FULL or an I/O error, SQLite rolls the transaction back on its own;
   * TypeORM's ROLLBACK then fails, the count is left at 1, and every later "transaction" is a
   * savepoint. After a second such failure (at RELEASE, SQLite's commit of a savepoint-started
   * transaction) SQLite keeps the connection inside a transaction that nothing ever commits: every
   * later write was acknowledged and lost. So the connection is checked idle before each
   * transaction, brought back to idle after any error, and checked idle again before a commit is
   * acknowledged.
   */
  private async onSqliteWriter<T>(run: () => Promise<T>): Promise<T> {
    await this.settleWriter();
    let result: T;
    try {
      result = await run();
    } catch (error) {
      this.noteWriteFailure(error);
      await this.settleWriter().catch(() => undefined);
      throw error;
    }
    if (this.sqliteWriter().handle.inTransaction) {
      // TypeORM reported a commit, yet SQLite holds a transaction open: none of it is on disk.
      const error = new WriterUnusableError();
      this.noteWriteFailure(error);
      await this.settleWriter().catch(() => undefined);
      throw error;
    }
    this.commits++;
    this.trouble = null;
    return result;
  }

  /**
   * Group commit: resolves once the WAL is synced to disk up to commit number `commit`. With
   * synchronous=NORMAL a COMMIT only writes the WAL; this syncs it with fdatasync on libuv's thread
   * pool, off the event loop, and one sync covers every commit written before it started, so a burst
   * of transactions shares one. Callers are answered, and after-commit hooks run, only after it:
   * an acknowledged write survives a power cut as with synchronous=FULL (docs/durability.md).
   */
  private async durable(commit: number): Promise<void> {
    while (this.synced < commit) {
      this.syncing ??= this.syncWal().finally(() => (this.syncing = null));
      await this.syncing;
    }
  }

  private async syncWal(): Promise<void> {
    const upTo = this.commits;
    let file: fs.promises.FileHandle | undefined;
    try {
      // Opened for each sync: SQLite removes the WAL when the last connection closes and creates it
      // again, and a descriptor kept open would then sync a file nobody writes. No WAL: it was
      // checkpointed into the database file, which then holds every commit.
      const opened = await fs.promises
        .open(`${this.sqliteFile}-wal`, 'r')
        .catch((error: NodeJS.ErrnoException) =>
          error.code === 'ENOENT' ? fs.promises.open(this.sqliteFile!, 'r') : Promise.reject(error),
        );
      file = opened;
      await opened.datasync();
    } catch (error) {
      throw this.syncFailure(error);
    } finally {
      await file?.close().catch(() => undefined);
    }
    this.synced = Math.max(this.synced, upTo);
  }

  /** A failed sync, coded as SQLite codes one under synchronous=FULL, so readiness reports DATABASE_IO_ERROR. */
  private syncFailure(error: unknown): Error {
    const cause = error as NodeJS.ErrnoException;
    return Object.assign(new Error(`could not sync the database's WAL to disk: ${cause.message}`), {
      code: 'SQLITE_IOERR_FSYNC',
      cause,
    });
  }

  /**
   * The caller's answer when its transaction committed but the sync failed: 503, and not DISK_FULL
   * or "nothing was changed" (which every other 503 of a write says), because the transaction was
   * written, others may already read it, and whether it is on disk is not known.
   */
  private unconfirmed(error: unknown): never {
    this.noteWriteFailure(error);
    const answer = new DomainError(
      HttpStatus.SERVICE_UNAVAILABLE,
      'DATABASE_IO_ERROR',
      'The change was written but the disk did not confirm it: it may or may not be stored. Check before you retry.',
    );
    answer.retryAfterS = 5;
    throw Object.assign(answer, { cause: error });
  }

  private sqliteWriter(): { handle: SqliteHandle; runner: SqliteRunner } {
    const driver = this.writer.driver as unknown as { databaseConnection: SqliteHandle };
    return { handle: driver.databaseConnection, runner: this.writer.createQueryRunner() as unknown as SqliteRunner };
  }

  /**
   * Brings SQLite's writer connection back to idle, and TypeORM's bookkeeping in line with it:
   * rolls back whatever SQLite still holds open, sets TypeORM's count back to none, and reopens the
   * connection if that is not enough. Throws WriterUnusableError when even a reopen fails; the
   * readiness check reports it meanwhile.
   */
  private async settleWriter(): Promise<void> {
    if (this.writer.isInitialized) {
      const { handle, runner } = this.sqliteWriter();
      if (!handle.inTransaction && !runner.isTransactionActive && runner.transactionDepth === 0) return;
      if (handle.inTransaction) {
        try {
          handle.exec('ROLLBACK');
        } catch (error) {
          this.logger.warn(`could not roll back the writer connection: ${(error as Error).message}`);
        }
      }
      runner.isTransactionActive = false;
      runner.transactionDepth = 0;
      if (!handle.inTransaction) return;
      this.logger.warn('the writer connection is still inside a transaction; reopening it');
    }
    try {
      // Closing a connection rolls back what it held open; TypeORM then starts a fresh query runner.
      if (this.writer.isInitialized) await this.writer.destroy();
      await this.writer.initialize();
    } catch (error) {
      this.trouble = {
        code: 'DATABASE_UNAVAILABLE',
        message: `the writer connection could not be reopened: ${(error as Error).message}`,
        since: new Date(),
      };
      throw new WriterUnusableError(error);
    }
    this.logger.log('reopened the writer connection');
  }

  private noteWriteFailure(error: unknown): void {
    const since = this.trouble?.since ?? new Date();
    if (isDiskFull(error)) {
      this.trouble = { code: 'DISK_FULL', message: `the disk is full: ${(error as Error).message}`, since };
    } else if (isSqliteIoError(error)) {
      this.trouble = {
        code: 'DATABASE_IO_ERROR',
        message: `SQLite could not write its files: ${(error as Error).message}`,
        since,
      };
    } else if (error instanceof WriterUnusableError) {
      this.trouble = { code: 'DATABASE_UNAVAILABLE', message: error.message, since };
    } else {
      return;
    }
    this.logger.error(`writes are failing (${this.trouble.code}): ${(error as Error).message}`);
  }

  /** Why writes are failing, while they are (SQLite only; null otherwise). */
  get writeTrouble(): WriteTrouble | null {
    return this.trouble;
  }

  /**
   * Throws unless the database answers; used by the readiness check. On SQLite, once a write failed
   * for want of space or an I/O error, it also needs a write to commit: a probe (one page written
   * and synced, PRAGMA user_version set to its own value) at most every WRITE_PROBE_EVERY_MS, so
   * readiness comes back by itself once space is freed.
   */
  async ping(): Promise<void> {
    await this.readerSource.query('SELECT 1');
    if (this.type !== 'sqlite' || !this.trouble) return;
    if (Date.now() - this.lastProbeAt >= WRITE_PROBE_EVERY_MS) {
      this.lastProbeAt = Date.now();
      await this.writeLock.runExclusive(async () => {
        if (!this.trouble) return;
        try {
          await this.settleWriter();
          const { handle } = this.sqliteWriter();
          const version = Number(handle.pragma('user_version', { simple: true }));
          handle.exec(`PRAGMA user_version = ${version}`);
          await this.durable(++this.commits);
          this.logger.log(`writes commit again (they had been failing since ${this.trouble.since.toISOString()})`);
          this.trouble = null;
        } catch (error) {
          this.noteWriteFailure(error);
          await this.settleWriter().catch(() => undefined);
        }
      });
    }
    const trouble = this.trouble as WriteTrouble | null;
    if (trouble) throw new Error(trouble.message);
  }

  /** SQL that would bring the schema in line with the entities; empty when migrations are complete. */
  async pendingSchemaChanges(): Promise<string[]> {
    const sql = await this.writer.driver.createSchemaBuilder().log();
    return sql.upQueries.map((q) => q.query);
  }

  async close(): Promise<void> {
    await this.checkpointer?.close();
    if (this.readerSource !== this.writer && this.readerSource.isInitialized) await this.readerSource.destroy();
    if (this.writer.isInitialized) await this.writer.destroy();
  }

  /** Runs `run` on the SQLite writer once it is this transaction's turn, counting the wait. */
  private async onSqliteWriterInTurn<T>(run: () => Promise<T>): Promise<T> {
    this.waitingForWriter++;
    let counted = true;
    try {
      return await this.writeLock.runExclusive(() => {
        this.waitingForWriter--;
        counted = false;
        return this.onSqliteWriter(run);
      });
    } finally {
      if (counted) this.waitingForWriter--;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}

/**
 * Writes back a row that was read in the same transaction, with one UPDATE by id. (`save()` reads
 * the row again first to find what changed: a second query on every hot write.)
 */
export async function updateById<T extends { id: string }>(
  em: EntityManager,
  entity: new () => T,
  row: T,
): Promise<void> {
  const { id, ...columns } = row;
  await em.update(entity, { id }, columns as never);
}
