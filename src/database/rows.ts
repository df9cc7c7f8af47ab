import type { EntityManager, EntityMetadata } from 'typeorm';
import type { DatabaseType } from './database';

/** The column types the hot tables use; anything else is refused when the table's Rows is built. */
const SUPPORTED_TYPES = new Set(['varchar', 'integer', 'boolean', 'simple-json', 'bigint']);
/** Rows per INSERT statement: far below either database's limit of bound parameters. */
const INSERT_CHUNK = 100;
/** Statements with more parameters than this (long lists of ids) are not kept in the text cache. */
const MAX_CACHED_PARAMS = 16;

interface ColumnCodec {
  property: string;
  /** The column's name, as the driver keys a row with it. */
  name: string;
  /** The same, quoted. */
  column: string;
  fromDb: (value: unknown) => unknown;
  toDb: (value: unknown) => unknown;
}

/**
 * One table read and written with fixed, parameterised SQL, for the hot paths (heartbeats, agents'
 * reports). TypeORM's query builder builds every statement anew, and writes numbers into its text,
 * so SQLite prepares most of them again: on a report it cost more than the statements themselves.
 * Here each statement's text depends only on which columns it names, so the driver's prepared
 * statement is reused. Values are converted as TypeORM converts them, from the entity's metadata
 * (transformers, simple-json, booleans), so rows read here and through TypeORM are the same.
 */
export class Rows<T extends object> {
  readonly table: string;
  /** Every column, quoted, in entity order: the SELECT list. */
  readonly columns: string;
  private readonly codecs: ColumnCodec[];
  private readonly byProperty: Map<string, ColumnCodec>;
  private readonly sqlCache = new Map<string, string>();

  constructor(
    private readonly dbType: DatabaseType,
    private readonly entity: new () => T,
    metadata: EntityMetadata,
  ) {
    this.table = `"${metadata.tableName}"`;
    this.codecs = metadata.columns.map((c) => {
      const type = typeof c.type === 'string' ? c.type : '';
      if (!SUPPORTED_TYPES.has(type))
        throw new Error(
          `Rows: column ${metadata.tableName}.${c.propertyName} has type ${String(c.type)}, which fixed SQL does not convert`,
        );
      const transformer = Array.isArray(c.transformer) ? undefined : c.transformer;
      if (Array.isArray(c.transformer))
        throw new Error(`Rows: column ${metadata.tableName}.${c.propertyName} has several transformers`);
      const parse =
        type === 'boolean'
          ? (v: unknown) => (v == null ? v : Boolean(v))
          : type === 'simple-json'
            ? (v: unknown) => (typeof v === 'string' ? (JSON.parse(v) as unknown) : v)
            : (v: unknown) => v;
      const stringify =
        type === 'simple-json' ? (v: unknown) => (v == null ? v : JSON.stringify(v)) : (v: unknown) => v;
      return {
        property: c.propertyName,
        name: c.databaseName,
        column: `"${c.databaseName}"`,
        fromDb: transformer ? (v: unknown): unknown => transformer.from(parse(v)) as unknown : parse,
        toDb: transformer ? (v: unknown) => stringify(transformer.to(v)) : stringify,
      };
    });
    this.byProperty = new Map(this.codecs.map((c) => [c.property, c]));
    this.columns = this.codecs.map((c) => c.column).join(', ');
  }

  /** A row as the driver answers it, as an entity. */
  fromRow(row: Record<string, unknown>): T {
    const entity = new this.entity() as Record<string, unknown>;
    for (const c of this.codecs) entity[c.property] = c.fromDb(row[c.name]);
    return entity as T;
  }

  /**
   * Every column of the rows `where` selects (SQL after WHERE, with $1... placeholders), in
   * `orderBy` order; locked until the transaction ends (FOR UPDATE) when `lock` on PostgreSQL.
   */
  async find(
    em: EntityManager,
    where: string,
    params: unknown[],
    options: { orderBy?: string; lock?: boolean } = {},
  ): Promise<T[]> {
    const build = () =>
      this.dialect(
        `SELECT ${this.columns} FROM ${this.table} WHERE ${where}${options.orderBy ? ` ORDER BY ${options.orderBy}` : ''}${options.lock && this.dbType === 'postgres' ? ' FOR UPDATE' : ''}`,
      );
    // Texts with a long list of ids are built each time: caching one per length would grow without bound.
    const sql =
      params.length <= MAX_CACHED_PARAMS
        ? this.cached(`S|${where}|${options.orderBy ?? ''}|${options.lock ? 'L' : ''}`, build)
        : build();
    const rows: Array<Record<string, unknown>> = await em.query(sql, params);
    return rows.map((r) => this.fromRow(r));
  }

  async findById(em: EntityManager, id: string, options: { lock?: boolean } = {}): Promise<T | null> {
    const [row] = await this.find(em, '"id" = $1', [id], options);
    return row ?? null;
  }

  /** Rows by id, ordered by id (the order replicas lock them in, so they cannot deadlock). */
  findByIds(em: EntityManager, ids: string[], options: { lock?: boolean } = {}): Promise<T[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.find(em, `"id" IN (${placeholders(1, ids.length)})`, ids, { ...options, orderBy: '"id"' });
  }

  /** Writes these properties of one row, by id. */
  async update(em: EntityManager, id: string, changes: Partial<T>): Promise<void> {
    const properties = Object.keys(changes).filter(
      (p) => p !== 'id' && (changes as Record<string, unknown>)[p] !== undefined,
    );
    if (properties.length === 0) return;
    const codecs = properties.map((p) => this.codec(p));
    const sql = this.cached(`U|${properties.join(',')}`, () =>
      this.dialect(
        `UPDATE ${this.table} SET ${codecs.map((c, i) => `${c.column} = $${i + 1}`).join(', ')} WHERE "id" = $${codecs.length + 1}`,
      ),
    );
    await em.query(sql, [...codecs.map((c) => c.toDb((changes as Record<string, unknown>)[c.property])), id]);
  }

  /** Inserts complete entities (every column given). */
  async insert(em: EntityManager, entities: T[]): Promise<void> {
    for (let i = 0; i < entities.length; i += INSERT_CHUNK) {
      const chunk = entities.slice(i, i + INSERT_CHUNK);
      const n = this.codecs.length;
      const build = () =>
        this.dialect(
          `INSERT INTO ${this.table} (${this.columns}) VALUES ${chunk.map((_, r) => `(${placeholders(r * n + 1, n)})`).join(', ')}`,
        );
      const sql = chunk.length <= 4 ? this.cached(`I|${chunk.length}`, build) : build();
      const params: unknown[] = [];
      for (const entity of chunk)
        for (const c of this.codecs) params.push(c.toDb((entity as Record<string, unknown>)[c.property]) ?? null);
      await em.query(sql, params);
    }
  }

  private codec(property: string): ColumnCodec {
    const codec = this.byProperty.get(property);
    if (!codec) throw new Error(`Rows: ${this.table} has no column for ${property}`);
    return codec;
  }

  private cached(key: string, build: () => string): string {
    let sql = this.sqlCache.get(key);
    if (sql === undefined) {
      sql = build();
      this.sqlCache.set(key, sql);
    }
    return sql;
  }

  private dialect(text: string): string {
    return this.dbType === 'sqlite' ? text.replace(/\$\d+/g, '?') : text;
  }
}

/** `$from, $from+1, ...`: `count` placeholders. */
export function placeholders(from: number, count: number): string {
  return Array.from({ length: count }, (_, i) => `$${from + i}`).join(', ');
}
