import type { Command } from 'commander';
import type { Schemas } from './api';
import { connectionFrom } from './api';
import { EXIT, exitCodeForStatus, exitCodeForUpgrade } from './exit-codes';
import { lockstepProgram } from './main';
import { planText, prerequisitesTable } from './plan-text';
import { collectLabel, collectList, collectOption } from './session';
import { upgradeFields } from './upgrade-request';

const leaves = (command: Command): Command[] =>
  command.commands.length ? command.commands.flatMap(leaves) : [command];

const helpOf = (command: Command): string => {
  let text = '';
  command.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  command.outputHelp();
  return text;
};

describe('the lockstep command line', () => {
  const program = lockstepProgram('0.0.0-test');

  it('gives every command a --help with an example', () => {
    const commands = leaves(program);
    expect(commands.map((c) => `${c.parent?.name()} ${c.name()}`)).toEqual(
      expect.arrayContaining(['upgrades watch', 'packages upload', 'agents list', 'clusters show']),
    );
    for (const command of commands) {
      const help = helpOf(command);
      expect(`${command.name()}: ${help}`).toMatch(/Example|usage: npm run package/);
      expect(help).toContain(command.description().split(' ')[0]);
    }
  });

  it('exits with a different code for each way an upgrade stops short', () => {
    const ends: Schemas['UpgradeStatus'][] = ['failed', 'completed-with-errors', 'cancelled', 'paused'];
    const codes = ends.map(exitCodeForUpgrade);
    expect(exitCodeForUpgrade('succeeded')).toBe(EXIT.ok);
    expect(new Set(codes).size).toBe(ends.length);
    for (const code of codes)
      expect([EXIT.ok, EXIT.error, EXIT.usage, EXIT.unavailable, EXIT.unauthorized]).not.toContain(code);
  });

  it('tells a refusal from bad credentials from a server worth retrying', () => {
    expect([400, 404, 409, 422].map(exitCodeForStatus)).toEqual([1, 1, 1, 1]);
    expect([401, 403].map(exitCodeForStatus)).toEqual([EXIT.unauthorized, EXIT.unauthorized]);
    expect([429, 500, 503].map(exitCodeForStatus)).toEqual([EXIT.unavailable, EXIT.unavailable, EXIT.unavailable]);
    expect(new Set(Object.values(EXIT)).size).toBe(Object.keys(EXIT).length);
  });

  it('reads --option key=value as numbers, booleans or text, and lists as one list', () => {
    let options = collectOption('maxParallel=25%');
    options = collectOption('canary=1', options);
    options = collectOption('switchback=false', options);
    expect(options).toEqual({ maxParallel: '25%', canary: 1, switchback: false });
    expect(() => collectOption('canary')).toThrow('want key=value (got "canary")');
    expect(collectList('c', collectList('a, b'))).toEqual(['a', 'b', 'c']);
  });

  it('reads --label key=value, repeated, as one label map', () => {
    expect(collectLabel('tier=db', collectLabel('site=eu-1'))).toEqual({ site: 'eu-1', tier: 'db' });
    expect(collectLabel('url=a=b')).toEqual({ url: 'a=b' }); // the key ends at the first "="
    expect(collectLabel('site=eu-1', { site: 'eu-1' })).toEqual({ site: 'eu-1' });
    expect(() => collectLabel('site')).toThrow('want key=value, such as site=eu-1 (got "site")');
    expect(() => collectLabel('site=')).toThrow('want key=value');
    expect(() => collectLabel('=eu-1')).toThrow('want key=value');
    expect(() => collectLabel('site=us-2', { site: 'eu-1' })).toThrow('site given twice (eu-1 and us-2)');
  });

  it('targets labels, agents named, both (the server takes either), or all', async () => {
    const agents = [{ id: 'id-1', name: 'app-1', address: 'app-1.lan' }] as Schemas['AgentDto'][];
    let reads = 0;
    const read = () => {
      reads += 1;
      return Promise.resolve(agents);
    };
    expect((await upgradeFields(read, { label: { site: 'eu-1' } })).target).toEqual({ labels: { site: 'eu-1' } });
    expect(reads).toBe(0); // labels alone need no list of the agents
    expect((await upgradeFields(read, { label: { site: 'eu-1' }, agents: ['app-1'] })).target).toEqual({
      agentIds: ['id-1'],
      labels: { site: 'eu-1' },
    });
    expect((await upgradeFields(read, { target: ['all'] })).target).toEqual({ all: true });
    expect((await upgradeFields(read, { label: {} })).target).toEqual({ all: true });
  });

  it('takes the token from the environment only when no flag gives one, and never defaults it', () => {
    expect(connectionFrom({}, { LOCKSTEP_URL: 'http://x:1/', LOCKSTEP_TOKEN: 't' })).toEqual({
      url: 'http://x:1',
      token: 't',
    });
    expect(connectionFrom({ token: 'f' }, { LOCKSTEP_TOKEN: 't' }).token).toBe('f');
    expect(() => connectionFrom({}, {})).toThrow('set LOCKSTEP_TOKEN');
    expect(connectionFrom({}, { LOCKSTEP_TOKEN: 't' }).url).toBe('http://localhost:8080'); // the server's PORT default
    expect(() => connectionFrom({ url: 'x:1' }, { LOCKSTEP_TOKEN: 't' })).toThrow('must start with http');
  });

  it('prints a plan by batch, counted from 1, with agents by name and the switchover', () => {
    const step = (over: Partial<Schemas['StepDto']>): Schemas['StepDto'] => ({
      id: 's',
      kind: 'upgrade',
      agentId: null,
      fromAgentId: null,
      failoverGroup: null,
      unit: 0,
      round: 0,
      backup: null,
      toVersion: null,
      batch: 0,
      dependsOn: [],
      runWhen: 'succeeded',
      status: 'pending',
      waitingFor: null,
      windowOpensAt: null,
      phase: null,
      percent: 0,
      attempts: 0,
      note: null,
      error: null,
      message: null,
      agentNotes: [],
      startedAt: null,
      endedAt: null,
      ...over,
    });
    const names = new Map([
      ['m', 'db-main'],
      ['b', 'db-backup'],
      ['a', 'app-1'],
    ]);
    const text = planText(
      {
        resolvedPolicy: 'backup-first',
        units: 2,
        batches: 2,
        warnings: [{ code: 'UNKNOWN_VERSION', message: 'app-1 has not reported a version' }],
        steps: [
          step({ agentId: 'b' }),
          step({ kind: 'switchover', agentId: 'b', fromAgentId: 'm' }),
          step({ agentId: 'm' }),
          step({ agentId: 'a', batch: 1, unit: 1 }),
        ],
      },
      names,
    );
    expect(text.split('\n')).toEqual([
      'policy backup-first: 2 unit(s) in 2 batch(es)',
      'batch 1',
      '  upgrade     db-backup',
      '  switchover  db-backup takes over from db-main',
      '  upgrade     db-main',
      'batch 2',
      '  upgrade     app-1',
      'warning UNKNOWN_VERSION: app-1 has not reported a version',
    ]);
  });

  it('tables prerequisite failures and unknowns per agent, and nothing when there are none', () => {
    const text = prerequisitesTable({
      failures: [{ agentName: 'app-1', check: 'fromVersion', required: '>=2.0.0', actual: '1.0.0' }],
      warnings: [{ agentName: 'app-2', check: 'fromVersion', reason: 'version unknown' }],
    });
    expect(text?.split('\n')).toEqual([
      'AGENT  CHECK        REQUIRED  ACTUAL  RESULT',
      'app-1  fromVersion  >=2.0.0   1.0.0   fails',
      'app-2  fromVersion  -         -       not checked: version unknown',
    ]);
    expect(prerequisitesTable({ failures: [], warnings: [] })).toBeUndefined();
  });
});
