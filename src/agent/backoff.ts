/**
 * The reference agent's back-off while the server cannot be reached or does not take a report.
 * Documented (README, "The reference agent and the package builder"; docs/operations.md): up to
 * 30 s, with jitter.
 */
export const BACKOFF_MAX_MS = 30_000;
const BACKOFF_FIRST_MS = 500;

/**
 * How long to wait after `failures` failures in a row: a ceiling that doubles from 1 s up to
 * BACKOFF_MAX_MS, and a wait drawn evenly from its upper half. The jitter is inside the ceiling
 * (it used to multiply it by up to 1.5, which gave 45 s), so a fleet coming back after an outage
 * is spread out and still never waits longer than the documented maximum.
 */
export function backoffMs(failures: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.min(Math.max(failures, 1), 16));
  return Math.min(ceiling, Math.floor(ceiling / 2 + random() * (ceiling / 2)));
}
