import { Principal } from './principal';

/**
 * Keeps recently verified tokens so the hot paths (heartbeats, streams) do not read the database
 * on every call (docs/security.md, "Token checks"). An entry lives `ttlMs` unless `set` names
 * another time; it also ends when its token expires (`notAfter`, read on `wallNow`, the
 * application's clock), so the cache never stretches a token's life. A revocation evicts at once
 * (this replica's own after its commit, another replica's when its notification arrives).
 *
 * A check reads the token and then caches what it read. A revocation that lands between the two
 * would be undone by that `set`, so a check takes a `mark()` before it reads, and `set` drops a
 * result read across any eviction since.
 */
export class TokenCache {
  private readonly entries = new Map<string, { principal: Principal; expiresAt: number; notAfter: number | null }>();
  private evictions = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = () => performance.now(),
    private readonly wallNow: () => number = () => Date.now(),
  ) {}

  get(secretHash: string): Principal | undefined {
    const entry = this.entries.get(secretHash);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now() || (entry.notAfter !== null && entry.notAfter <= this.wallNow())) {
      this.entries.delete(secretHash);
      return undefined;
    }
    return entry.principal;
  }

  /** Taken before reading a token from the database; pass it to `set`. */
  mark(): number {
    return this.evictions;
  }

  /**
   * `tokenExpiresAt`: when the token itself stops being valid (null: never). `ttlMs`: how long to
   * keep it (the cache's default otherwise). `mark`: from `mark()` before the read; if anything was
   * evicted since, nothing is kept.
   */
  set(
    secretHash: string,
    principal: Principal,
    tokenExpiresAt: Date | null = null,
    options: { ttlMs?: number; mark?: number } = {},
  ): void {
    if (options.mark !== undefined && options.mark !== this.evictions) return;
    if (this.entries.size >= this.maxEntries) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(secretHash, {
      principal,
      expiresAt: this.now() + (options.ttlMs ?? this.ttlMs),
      notAfter: tokenExpiresAt?.getTime() ?? null,
    });
  }

  evict(secretHash: string): void {
    this.evictions++;
    this.entries.delete(secretHash);
  }

  /** Forgets every entry (revocations may have been missed). */
  clear(): void {
    this.evictions++;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
