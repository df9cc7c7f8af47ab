import { AUTO_UPGRADE_FREE, autoUpgradeBackoffMs, leftBehind, setBack } from './auto-upgrade-rules';

const NOW = new Date('2026-06-01T12:00:00.000Z');
const MIN = 60_000;

describe('auto-upgrade rules', () => {
  it.each([
    [1, 1 * MIN],
    [2, 2 * MIN],
    [3, 4 * MIN],
    [6, 32 * MIN],
    [7, 60 * MIN],
    [50, 60 * MIN],
  ])('after %i attempt(s) in a row it waits %i ms (a minute doubling, at most an hour)', (attempts, ms) => {
    expect(autoUpgradeBackoffMs(attempts)).toBe(ms);
  });

  it('each attempt that did not bring the agent up counts, and sets the next try and the reason', () => {
    const first = setBack({ autoUpgradeAttempts: 0 }, NOW, 'it missed its turn');
    expect(first).toEqual({
      autoUpgradeAttempts: 1,
      autoUpgradeRetryAt: new Date(NOW.getTime() + MIN),
      autoUpgradeBlocked: 'it missed its turn',
    });
    const third = setBack({ autoUpgradeAttempts: 2 }, NOW, 'refused');
    expect(third.autoUpgradeRetryAt).toEqual(new Date(NOW.getTime() + 4 * MIN));
  });

  it('an agent left behind waits for someone (no retry time); acting frees it and resets the count', () => {
    expect(leftBehind({ id: 'u1' }, 'it was cancelled')).toEqual({
      autoUpgradeBlocked:
        'left behind by upgrade u1: it was cancelled; retry it, upgrade it now, or start a new upgrade',
      autoUpgradeRetryAt: null,
    });
    expect(AUTO_UPGRADE_FREE).toEqual({ autoUpgradeBlocked: null, autoUpgradeRetryAt: null, autoUpgradeAttempts: 0 });
  });
});
