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
