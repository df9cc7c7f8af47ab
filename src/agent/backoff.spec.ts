import fc from 'fast-check';
import { BACKOFF_MAX_MS, backoffMs } from './backoff';

describe('the reference agent back-off', () => {
  it('never waits longer than the documented 30 s, whatever the failure count and the jitter draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (failures, draw) => {
          const wait = backoffMs(failures, () => draw);
          return Number.isInteger(wait) && wait >= 500 && wait <= BACKOFF_MAX_MS;
        },
      ),
      { numRuns: 5000 },
    );
    expect(BACKOFF_MAX_MS).toBe(30_000);
  });

  it('grows with each failure: each wait is drawn from the upper half of a ceiling that doubles to 30 s', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (failures, draw) => {
          const ceiling = Math.min(BACKOFF_MAX_MS, 500 * 2 ** failures);
          const wait = backoffMs(failures, () => draw);
          return wait >= ceiling / 2 && wait <= ceiling;
        },
      ),
    );
  });

  it('over many real random draws past the cap: spread over 15-30 s, never above (the old formula reached 45 s)', () => {
    const waits = Array.from({ length: 20_000 }, (_, i) => backoffMs(6 + (i % 50)));
    expect(Math.max(...waits)).toBeLessThanOrEqual(30_000);
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(15_000);
    // Jittered, not piled up at the cap: a fleet does not come back at one instant.
    expect(new Set(waits.map((w) => Math.floor(w / 1000))).size).toBeGreaterThanOrEqual(14);
  });
});
