import { deriveAgentState, deriveVersionStatus, effectiveTarget, pollAfterMs, StateInputs } from './agent-state';

const t = new Date('2026-01-01T00:00:00Z');
const base: StateInputs = { pairedAt: t, removalRequestedAt: null, online: true, upgrading: false, busy: false };

describe('deriveAgentState', () => {
  it.each([
    ['never paired', { pairedAt: null }, 'unknown'],
    ['never paired, even if asked to go', { pairedAt: null, removalRequestedAt: t }, 'unknown'],
    ['removal asked while busy', { removalRequestedAt: t, busy: true }, 'terminating'],
    ['silent past the timeout', { online: false }, 'offline'],
    ['silent mid-upgrade', { online: false, upgrading: true }, 'offline'],
    ['running an upgrade step', { upgrading: true, busy: true }, 'upgrading'],
    ['running its own work', { busy: true }, 'busy'],
    ['online with nothing to do', {}, 'idle'],
  ])('%s -> %s', (_case, change, expected) => {
    expect(deriveAgentState({ ...base, ...change })).toBe(expected);
  });
});

describe('deriveVersionStatus', () => {
  const v = (version: string | null, more = {}) => ({ version, upgrading: false, lastUpgradeFailed: false, ...more });
  it.each([
    ['no version reported', v(null), '10.3.0', 'unknown'],
    ['not semver', v('ten'), '10.3.0', 'unknown'],
    ['on the target', v('10.3.0'), '10.3.0', 'latest'],
    ['behind the target', v('10.2.9'), '10.3.0', 'outdated'],
    ['a prerelease of the target is behind it', v('10.3.0-rc.1'), '10.3.0', 'outdated'],
    ['beyond the target', v('10.4.0'), '10.3.0', 'ahead'],
    ['upgrading wins', v('10.2.0', { upgrading: true, lastUpgradeFailed: true }), '10.3.0', 'upgrading'],
    ['failed until retried', v('10.2.0', { lastUpgradeFailed: true }), '10.3.0', 'failed'],
    ['no target at all', v('1.0.0'), null, 'latest'],
  ])('%s -> %s', (_case, agent, target, expected) => {
    expect(deriveVersionStatus(agent, target)).toBe(expected);
  });
});

describe('effectiveTarget', () => {
  it('is the cluster target when set', () => {
    expect(effectiveTarget('10.3.0', ['11.0.0'])).toBe('10.3.0');
  });
  it('is the highest reported version otherwise, ignoring unknown ones', () => {
    expect(effectiveTarget(null, ['10.2.0', null, '10.10.0', 'junk', '10.9.1'])).toBe('10.10.0');
    expect(effectiveTarget(null, [null])).toBeNull();
  });
});

describe('pollAfterMs', () => {
  it.each([
    [30, false, 10000],
    [9, false, 3000],
    [3600, false, 10000],
    [30, true, 1000],
  ])('timeout %ss, urgent %s -> %sms', (timeout, urgent, expected) => {
    expect(pollAfterMs({ heartbeatTimeoutS: timeout }, urgent)).toBe(expected);
  });

  it.each([
    [90, 30, false, 30000],
    [3600, 60, false, 60000],
    [30, 10, false, 10000],
    [90, 30, true, 1000],
  ])('timeout %ss, AGENT_POLL_S %s, urgent %s -> %sms', (timeout, pollS, urgent, expected) => {
    expect(pollAfterMs({ heartbeatTimeoutS: timeout, agentPollS: pollS }, urgent)).toBe(expected);
  });
});
