import { Principal } from './principal';
import { TokenCache } from './token-cache';

const viewer: Principal = { kind: 'user', tokenId: 't1', name: 'ci', role: 'viewer' };

describe('TokenCache', () => {
  it('returns an entry until its time to live has passed', () => {
    let now = 0;
    const cache = new TokenCache(5000, 10, () => now);
    cache.set('h1', viewer);
    now = 4999;
    expect(cache.get('h1')).toEqual(viewer);
    now = 5000;
    expect(cache.get('h1')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('forgets an evicted entry at once', () => {
    const cache = new TokenCache(5000, 10, () => 0);
    cache.set('h1', viewer);
    cache.evict('h1');
    expect(cache.get('h1')).toBeUndefined();
  });

  it('drops the oldest entry when full, so memory stays bounded', () => {
    const cache = new TokenCache(5000, 2, () => 0);
    cache.set('h1', viewer);
    cache.set('h2', viewer);
    cache.set('h3', viewer);
    expect(cache.size).toBe(2);
    expect(cache.get('h1')).toBeUndefined();
    expect(cache.get('h3')).toEqual(viewer);
  });
});

describe('TokenCache and expiring tokens', () => {
  it("never keeps an entry past its token's expiry, even within the time to live", () => {
    let now = 0;
    let wall = Date.parse('2026-01-01T00:00:00Z');
    const cache = new TokenCache(
      5000,
      10,
      () => now,
      () => wall,
    );
    cache.set('h1', viewer, new Date('2026-01-01T00:00:02Z'));
    now = 1000;
    wall += 1000;
    expect(cache.get('h1')).toEqual(viewer);
    wall += 1000; // the token expires while the entry's 5 s still run
    expect(cache.get('h1')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('keeps a token without expiry for the time to live, whatever the wall clock says', () => {
    let wall = 0;
    const cache = new TokenCache(
      5000,
      10,
      () => 0,
      () => wall,
    );
    cache.set('h1', viewer, null);
    wall = 10 * 365 * 86_400_000;
    expect(cache.get('h1')).toEqual(viewer);
  });
});

describe('TokenCache and revocations', () => {
  const agent: Principal = { kind: 'agent', tokenId: 't2', agentId: 'a1' };

  it('keeps an entry for the time to live it is given, longer than the default', () => {
    let now = 0;
    const cache = new TokenCache(5000, 10, () => now);
    cache.set('h1', agent, null, { ttlMs: 600_000 });
    now = 599_999;
    expect(cache.get('h1')).toEqual(agent);
    now = 600_000;
    expect(cache.get('h1')).toBeUndefined();
  });

  it('does not keep a token read before a revocation that was evicted meanwhile', () => {
    const cache = new TokenCache(5000, 10, () => 0);
    const mark = cache.mark();
    // the read saw the token valid; then another token's (or this one's) revocation arrived
    cache.evict('h-other');
    cache.set('h1', agent, null, { mark });
    expect(cache.get('h1')).toBeUndefined();
    const fresh = cache.mark();
    cache.set('h1', agent, null, { mark: fresh });
    expect(cache.get('h1')).toEqual(agent);
  });

  it('forgets everything on clear, and a read across the clear is not kept', () => {
    const cache = new TokenCache(5000, 10, () => 0);
    cache.set('h1', viewer);
    const mark = cache.mark();
    cache.clear();
    expect(cache.size).toBe(0);
    cache.set('h2', agent, null, { mark });
    expect(cache.get('h2')).toBeUndefined();
  });
});
