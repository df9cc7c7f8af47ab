import { HttpStatus } from '@nestjs/common';
import { DomainError } from './errors';

/** True when the database refused a write because a unique index already holds the value. */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; driverError?: { code?: string } } | null;
  const code = e?.driverError?.code ?? e?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** True when PostgreSQL aborted this transaction to break a deadlock; running it again is safe. */
export function isDeadlock(error: unknown): boolean {
  const e = error as { code?: string; driverError?: { code?: string } } | null;
  return (e?.driverError?.code ?? e?.code) === '40P01';
}

/** Codes that mean the database could not be reached or went away, rather than refused a statement. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  'SQLITE_BUSY',
  'SQLITE_IOERR',
  'SQLITE_FULL',
]);
/** SQLite's extended codes (SQLITE_IOERR_WRITE, SQLITE_BUSY_SNAPSHOT...) mean what their primary code means. */
const UNAVAILABLE_SQLITE_PREFIXES = /^SQLITE_(BUSY|IOERR)_/;
const UNAVAILABLE_MESSAGES =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|database is locked/i;

/** True when the database is unreachable or overloaded: the call may succeed if retried later. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; driverError?: { code?: string }; message?: string } | null;
  const code = e?.driverError?.code ?? e?.code;
  return (
    (code !== undefined && (UNAVAILABLE_CODES.has(code) || UNAVAILABLE_SQLITE_PREFIXES.test(code))) ||
    UNAVAILABLE_MESSAGES.test(e?.message ?? '')
  );
}

/** True when the database refused a write for want of disk space: SQLite's SQLITE_FULL, PostgreSQL's disk_full. */
export function isDiskFull(error: unknown): boolean {
  if (error instanceof DiskFullError) return true;
  const e = error as { code?: string; driverError?: { code?: string } } | null;
  const code = e?.driverError?.code ?? e?.code;
  return code === 'SQLITE_FULL' || code === '53100';
}

/** True when SQLite could not read or write its files (SQLITE_IOERR and its extended codes). */
export function isSqliteIoError(error: unknown): boolean {
  const e = error as { code?: string; driverError?: { code?: string } } | null;
  return /^SQLITE_IOERR/.test(e?.driverError?.code ?? e?.code ?? '');
}

/** Seconds a client is asked to wait (Retry-After) before it tries a write again on a full disk. */
export const DISK_FULL_RETRY_AFTER_S = 30;

/** A write refused because the database's disk is full; nothing of it was stored (docs/durability.md). */
export class DiskFullError extends DomainError {
  constructor(
    override readonly cause?: unknown,
    message = "The database's disk is full; nothing was changed. Free space on the volume that holds the database, then retry: Lockstep carries on by itself once writes fit.",
  ) {
    super(HttpStatus.SERVICE_UNAVAILABLE, 'DISK_FULL', message);
    this.retryAfterS = DISK_FULL_RETRY_AFTER_S;
  }
}

/** A write refused because the database connection could not be brought back to a known state after an error. */
export class WriterUnusableError extends DomainError {
  constructor(override readonly cause?: unknown) {
    super(
      HttpStatus.SERVICE_UNAVAILABLE,
      'DATABASE_UNAVAILABLE',
      'The database connection is being reset after an error; nothing was changed. Retry in a moment.',
    );
    this.retryAfterS = 5;
  }
}
