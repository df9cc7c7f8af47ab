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
