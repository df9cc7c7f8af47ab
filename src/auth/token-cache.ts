import { Principal } from './principal';

/**
 * Keeps recently verified tokens for a few seconds so the hot paths (heartbeats, streams) do not
 * read the database on every call. A revocation on this replica evicts at once; other replicas
 * honour it once the entry expires, within `ttlMs`. An entry also ends when its token expires
 * (`notAfter`, read on `wallNow`, the application's clock), so the cache never stretches a token's
 * life.
 */
export class TokenCache {
  private readonly entries = new Map<string, { principal: Principal; expiresAt: number; notAfter: number | null }>();

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

  /** `tokenExpiresAt`: when the token itself stops being valid (null: never). */
  set(secretHash: string, principal: Principal, tokenExpiresAt: Date | null = null): void {
    if (this.entries.size >= this.maxEntries) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(secretHash, {
      principal,
      expiresAt: this.now() + this.ttlMs,
      notAfter: tokenExpiresAt?.getTime() ?? null,
    });
  }

  evict(secretHash: string): void {
    this.entries.delete(secretHash);
  }

  get size(): number {
    return this.entries.size;
  }
}
