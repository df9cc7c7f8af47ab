import { AgentForCheck, checkPrerequisites } from './prerequisites';

const agent = (
  name: string,
  version: string | null,
  facts: AgentForCheck['facts'] = { os: 'linux', freeDiskMb: 10_000 },
): AgentForCheck => ({ id: `id-${name}`, name, version, facts });
const full = (prerequisites = {}) => ({ kind: 'full' as const, version: '10.3.0', prerequisites });

describe('checkPrerequisites', () => {
  it.each([
    ['in the fromVersion range', agent('a', '10.2.0'), { fromVersion: '>=10.1.0 <10.3.0' }, []],
    [
      'below the fromVersion range',
      agent('a', '10.0.5'),
      { fromVersion: '>=10.1.0 <10.3.0' },
      [{ check: 'fromVersion', required: '>=10.1.0 <10.3.0', actual: '10.0.5' }],
    ],
    ['a prerelease inside the range', agent('a', '10.2.0-rc.1'), { fromVersion: '>=10.1.0 <10.3.0' }, []],
    ['enough free disk', agent('a', '10.2.0', { freeDiskMb: 512 }), { minFreeDiskMb: 512 }, []],
    [
      'too little free disk',
      agent('a', '10.2.0', { freeDiskMb: 100 }),
      { minFreeDiskMb: 512 },
      [{ check: 'minFreeDiskMb', required: '512 MB free', actual: '100 MB free' }],
    ],
    ['an allowed os, in any case', agent('a', '10.2.0', { os: 'Linux' }), { os: ['linux'] }, []],
    [
      'another os',
      agent('a', '10.2.0', { os: 'windows' }),
      { os: ['linux', 'darwin'] },
      [{ check: 'os', required: 'linux or darwin', actual: 'windows' }],
    ],
    [
      'already on the package version (skipped by the plan)',
      agent('a', '10.3.0', { os: 'windows', freeDiskMb: 1 }),
      { fromVersion: '<10.3.0', os: ['linux'], minFreeDiskMb: 512 },
      [],
    ],
  ])('%s', (_case, who, prerequisites, expected) => {
    const { failures, warnings } = checkPrerequisites(full(prerequisites), [who]);
    expect(failures).toEqual(expected.map((f) => ({ agentId: who.id, agentName: who.name, ...f })));
    expect(warnings).toEqual([]);
  });

  it('warns, without refusing, about agents whose version or facts are unknown', () => {
    const { failures, warnings } = checkPrerequisites(
      full({ fromVersion: '>=10.0.0', minFreeDiskMb: 1, os: ['linux'] }),
      [agent('new', null, null)],
    );
    expect(failures).toEqual([]);
    expect(warnings.map((w) => [w.check, w.reason])).toEqual([
      ['fromVersion', 'version unknown'],
      ['minFreeDiskMb', 'free disk space unknown'],
      ['os', 'operating system unknown'],
    ]);
  });

  it('applies a webapps package’s fromVersion to the core version, even on the same version', () => {
    const webapps = { kind: 'webapps' as const, version: '10.3.0', prerequisites: { fromVersion: '>=10.3.0 <10.4.0' } };
    expect(checkPrerequisites(webapps, [agent('core-ok', '10.3.0')]).failures).toEqual([]);
    expect(checkPrerequisites(webapps, [agent('core-old', '10.2.0')]).failures).toEqual([
      {
        agentId: 'id-core-old',
        agentName: 'core-old',
        check: 'fromVersion',
        required: '>=10.3.0 <10.4.0',
        actual: '10.2.0',
      },
    ]);
  });

  it('lists every failing check of every agent', () => {
    const { failures } = checkPrerequisites(full({ fromVersion: '>=10.1.0', minFreeDiskMb: 1000, os: ['linux'] }), [
      agent('a', '9.0.0', { os: 'aix', freeDiskMb: 5 }),
      agent('b', '10.2.0'),
    ]);
    expect(failures.map((f) => `${f.agentName}:${f.check}`)).toEqual(['a:fromVersion', 'a:minFreeDiskMb', 'a:os']);
  });
});
