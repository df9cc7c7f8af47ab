import { ManualClock } from '../src/common/clock';
import { AutoUpgrader } from '../src/upgrades/auto-upgrader';
import { givenCluster, givenNamedAgents, givenPackage } from './support/builders';
import type { FakeAgent } from './support/fake-agent';
import { Command, Fleet, Member, obedient } from './support/fleet';
import { describeEachDatabase, TestApp } from './support/test-app';

/**
 * An agent that finishes its upgrade after the server failed the step for a phase that ran past
 * phaseTimeoutS: its late report is refused (the command was withdrawn), and its next heartbeat
 * says it runs the new version. The server records what happened (docs/operations.md): the step
 * succeeded late, with a note; the agent runs that version and is not failed; a finished upgrade
 * is judged again and sets the target its rules give; what the failure blocked stays blocked, and
 * auto-upgrade takes it from there. Scripted fake agents over HTTP, a manual clock, no timers.
 */
describeEachDatabase('an upgrade that finishes after its phase timed out', (kind) => {
  let t: TestApp;
  let operator: string;
  const clock = new ManualClock(new Date('2026-10-01T00:00:00.000Z'));

  beforeAll(async () => {
    t = await TestApp.start(kind, { clock });
    t.stopTimers();
    operator = await t.tokenFor('operator');
  });
  afterAll(() => t.close());

  const agentOf = async (id: string) => (await t.admin.get(`/api/v1/agents/${id}`).expect(200)).body;
  const clusterOf = async (id: string) => (await t.admin.get(`/api/v1/clusters/${id}`).expect(200)).body;
  const upgradeOf = async (id: string) => (await t.admin.get(`/api/v1/upgrades/${id}`).expect(200)).body;
  const stepOf = (upgrade: any, agentId: string, stepKind = 'upgrade') =>
    upgrade.steps.find((s: any) => s.agentId === agentId && s.kind === stepKind);

  /** Agents named for their place ("g1-main"), on 1.0.0, and an upgrade of all of them to 1.1.0 with a 60 s phase timeout. */
  async function setUp(names: string[], upgrade: Record<string, unknown> = {}) {
    const cluster = await givenCluster(t);
    const { members, ids } = await givenNamedAgents(t, cluster.id, names);
    // Every command is held: each test answers (or not) by hand.
    const fleet = new Fleet(t, members, () => 'later');
    const packageId = await givenPackage(t, cluster.id, { version: '1.1.0' }, operator);
    const created = await t
      .as(operator)
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({
        packageId,
        target: { all: true },
        ...upgrade,
        options: { phaseTimeoutS: 60, failureThreshold: 0, ...((upgrade.options as object) ?? {}) },
      })
      .expect(201);
    const member = (name: string): Member => members.find((m) => m.name === name)!;
    return { cluster, ids, fleet, member, upgradeId: created.body.id as string };
  }

  /** The agent's upgrade command, fetched (the step runs), after an install progress report. */
  function heldUpgrade(fleet: Fleet, name: string): Command {
    const held = fleet.later.find((l) => l.member.name === name && l.command.type === 'upgrade');
    if (!held) throw new Error(`${name} has no upgrade command; commands: ${JSON.stringify(fleet.log)}`);
    return held.command;
  }

  /** The agent finished after all: its report is refused (409, the command was withdrawn), and it heartbeats on the new version. */
  async function finishesLate(agent: FakeAgent, command: Command) {
    const late = await agent.complete(command.id, 'succeeded', '1.1.0');
    expect(late.status).toBe(409);
    expect(late.body.code).toBe('COMMAND_ENDED');
    const beat = await agent.heartbeat({ version: '1.1.0' });
    expect(beat.status).toBe(200);
  }

  it('a standalone agent: the step succeeded late (with a note), the agent is latest, the upgrade succeeded and set the target', async () => {
    const { cluster, ids, fleet, member, upgradeId } = await setUp(['solo']);
    await fleet.round();
    const command = heldUpgrade(fleet, 'solo');
    expect((await member('solo').agent.progress(command.id, 'install', 40)).status).toBe(200);

    clock.advance(61_000);
    await fleet.pass();
    const timedOut = await upgradeOf(upgradeId);
    expect(timedOut.status).toBe('failed');
    expect(stepOf(timedOut, ids.solo)).toMatchObject({
      status: 'failed',
      error: 'phase install ran longer than phaseTimeoutS (60s)',
    });
    expect(await agentOf(ids.solo)).toMatchObject({ version: '1.0.0', versionStatus: 'failed' });

    await finishesLate(member('solo').agent, command);

    // The server's view is the agent's.
    expect(await agentOf(ids.solo)).toMatchObject({
      version: '1.1.0',
      versionStatus: 'latest',
      state: 'idle',
      upgradeId: null,
    });
    const reconciled = await upgradeOf(upgradeId);
    expect(stepOf(reconciled, ids.solo)).toMatchObject({
      status: 'succeeded',
      percent: 100,
      error: null,
      note: expect.stringMatching(
        /^finished after the server failed it \(phase install ran longer than phaseTimeoutS \(60s\)\): solo reported 1\.1\.0 on 2026-10-01T00:01:01/,
      ),
    });
    expect(reconciled).toMatchObject({ status: 'succeeded', percent: 100, reason: null });
    expect(await clusterOf(cluster.id)).toMatchObject({ targetVersion: '1.1.0', consistent: true });
    // The withdrawn command keeps its history: the server did withdraw it.
    const commands = (await t.admin.get(`/api/v1/agents/${ids.solo}/commands`).expect(200)).body.items;
    expect(commands[0]).toMatchObject({ id: command.id, status: 'cancelled' });
  });

  it('an agent that rolled back after the timeout, or reports nothing new, stays failed', async () => {
    const { ids, fleet, member, upgradeId } = await setUp(['undone']);
    await fleet.round();
    const command = heldUpgrade(fleet, 'undone');
    clock.advance(61_000);
    await fleet.pass();

    const agent = member('undone').agent;
    expect((await agent.complete(command.id, 'rolled-back', '1.0.0')).status).toBe(409);
    await agent.heartbeat({ busy: true }); // written at once: the reconciliation looks, and finds 1.0.0
    await agent.heartbeat({ busy: false });
    expect(await agentOf(ids.undone)).toMatchObject({ version: '1.0.0', versionStatus: 'failed' });
    expect(stepOf(await upgradeOf(upgradeId), ids.undone)).toMatchObject({ status: 'failed', note: null });
  });

  it('in an upgrade still running: the step succeeded late and the upgrade ends succeeded once the others are done', async () => {
    const { cluster, ids, fleet, member, upgradeId } = await setUp(['first', 'second'], {
      options: { maxParallel: 1 },
    });
    await fleet.round();
    const first = heldUpgrade(fleet, 'first');
    clock.advance(61_000);
    await fleet.round(); // first fails; the second batch starts: second fetches its command
    const second = heldUpgrade(fleet, 'second');
    expect(stepOf(await upgradeOf(upgradeId), ids.first)).toMatchObject({ status: 'failed' });

    await finishesLate(member('first').agent, first);
    expect(await agentOf(ids.first)).toMatchObject({ version: '1.1.0', state: 'idle', upgradeId: null });
    expect(await upgradeOf(upgradeId)).toMatchObject({ status: 'running' });
    expect(stepOf(await upgradeOf(upgradeId), ids.first)).toMatchObject({
      status: 'succeeded',
      note: expect.stringMatching(/^finished after the server failed it/),
    });

    await fleet.answer(member('second'), second, { status: 'succeeded', version: '1.1.0' });
    await fleet.pass();
    expect(await upgradeOf(upgradeId)).toMatchObject({ status: 'succeeded', reason: null });
    expect(await clusterOf(cluster.id)).toMatchObject({
      targetVersion: '1.1.0',
      consistent: true,
      versionStatuses: { latest: 2 },
    });
  });

  it('a pair under backup-first: what the failure blocked stays blocked (the main was never stopped); auto-upgrade then hands over and upgrades the main', async () => {
    const { cluster, ids, fleet, member, upgradeId } = await setUp(['g1-main', 'g1-backup'], {
      policy: 'backup-first',
    });
    await fleet.round();
    const command = heldUpgrade(fleet, 'g1-backup');
    clock.advance(61_000);
    await fleet.pass();
    const timedOut = await upgradeOf(upgradeId);
    expect(timedOut.status).toBe('failed');
    expect(stepOf(timedOut, ids['g1-backup'], 'switchover')).toMatchObject({ status: 'cancelled' });
    expect(stepOf(timedOut, ids['g1-main'])).toMatchObject({ status: 'cancelled' });

    await finishesLate(member('g1-backup').agent, command);

    const reconciled = await upgradeOf(upgradeId);
    expect(stepOf(reconciled, ids['g1-backup'])).toMatchObject({
      status: 'succeeded',
      note: expect.stringMatching(/^finished after the server failed it/),
    });
    // Not started again: the switchover and the main's upgrade stay as the failure left them.
    expect(stepOf(reconciled, ids['g1-backup'], 'switchover')).toMatchObject({ status: 'cancelled' });
    expect(stepOf(reconciled, ids['g1-main'])).toMatchObject({ status: 'cancelled' });
    expect(reconciled).toMatchObject({ status: 'succeeded', reason: expect.stringMatching(/2 step\(s\) did not run/) });
    expect(await fleet.round()).toEqual([]);
    expect(await agentOf(ids['g1-backup'])).toMatchObject({ version: '1.1.0', versionStatus: 'latest', active: false });
    expect(await agentOf(ids['g1-main'])).toMatchObject({ version: '1.0.0', versionStatus: 'outdated', active: true });
    expect(await clusterOf(cluster.id)).toMatchObject({ targetVersion: '1.1.0', consistent: false });

    // Convergence: the standby is on the target and healthy, so auto-upgrade hands over to it and upgrades the main.
    fleet.behaviour = obedient;
    expect(fleet.log).toEqual(['g1-backup upgrade']);
    clock.advance(3_600_000);
    await fleet.round();
    expect(await t.app.get(AutoUpgrader).sweep()).toBe(1);
    for (let i = 0; i < 10 && (await agentOf(ids['g1-main'])).version !== '1.1.0'; i++) await fleet.round();
    expect(fleet.log.indexOf('g1-backup takes over')).toBeGreaterThan(0);
    expect(fleet.log.indexOf('g1-backup takes over')).toBeLessThan(fleet.log.indexOf('g1-main upgrade'));
    expect(await clusterOf(cluster.id)).toMatchObject({ targetVersion: '1.1.0', consistent: true });
  });
});
