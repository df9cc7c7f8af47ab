import { Column, ColumnOptions, ValueTransformer } from 'typeorm';

/**
 * Timestamps are stored as ISO-8601 UTC text (`2026-11-22T10:58:00.000Z`): SQLite and PostgreSQL
 * share no timestamp column type in TypeORM, and this fixed-width form sorts chronologically, so
 * range queries and ORDER BY work the same on both.
 */
const isoTransformer: ValueTransformer = {
  to: (value: Date | null | undefined) => (value == null ? value : value.toISOString()),
  from: (value: string | null) => (value == null ? null : new Date(value)),
};

export function TimestampColumn(options: Pick<ColumnOptions, 'nullable' | 'name'> = {}): PropertyDecorator {
  return Column({ type: 'varchar', length: 24, transformer: isoTransformer, ...options });
}

/** The ISO text a TimestampColumn holds, for use as a query parameter. */
export const toDbTimestamp = (date: Date): string => date.toISOString();

/** A JSON document stored as text, readable on both databases; `default` is the JSON text new rows get. */
export function JsonColumn(options: Pick<ColumnOptions, 'nullable' | 'name' | 'default'> = {}): PropertyDecorator {
  return Column({ type: 'simple-json', ...options });
}
