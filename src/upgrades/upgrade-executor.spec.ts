import { AuditTrail } from '../audit/audit-trail.service';
import { RollbackPlanning } from './rollback-planning';
import { Logger } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { AgentCommand } from '../cluster/agent-command.entity';
import { AgentCommandRepository } from '../cluster/agent-command.repository';
import { AgentCommandsService, CommandIssuer, CommandReport } from '../cluster/agent-commands.service';
import { AgentRepository } from '../cluster/agent.repository';
import { AgentUpdater } from '../cluster/agent-updater';
import { AgentsService } from '../cluster/agents.service';
import { ClustersService } from '../cluster/clusters.service';
import { ManualClock } from '../common/clock';
import type { AppConfig } from '../config/app-config';
import { Leadership } from '../database/leadership';
import { PackagesService } from '../packages/packages.service';
import { EventLog } from '../progress/event-log.service';
import { calledMethods, FakeDatabase, FakeTx, mockOf } from '../testing/fakes';
import { aCluster, aCommand, anAgent, anUpgrade, aStep, T0 } from '../testing/fixtures';
import { UpgradeExecutor } from './upgrade-executor';
import { Upgrade } from './upgrade.entity';
import { UpgradeRepository } from './upgrade.repository';
import { UpgradeStep } from './upgrade-step.entity';
import { UpgradeWriter } from './upgrade-writer';

/**
 * The upgrades side of a report (issue 17): UpgradeExecutor is the CommandIssuer that
 * AgentCommandsService tells of every report on a command, in the report's transaction
 * (docs/ARCHITECTURE.md, "Ports" and "Progress and complete"). A command's end becomes its step's
 * end, with the outcome and the version on the agent; reports that are not on a step's current
 * command move nothing. The late finish (docs/agent-protocol.md, "A late finish") is
 * reconcileLateFinish, after a heartbeat.
 */

const NOW = new Date(T0.getTime() + 600_000);

beforeAll(() => Logger.overrideLogger(false));

function rig(upgrade: Upgrade | null, steps: UpgradeStep[]) {
  const db = new FakeDatabase();
  const upgrades = mockOf<UpgradeRepository>();
  upgrades.findForUpdate.mockResolvedValue(upgrade);
  upgrades.stepsOf.mockResolvedValue(steps);
  upgrades.stepsOfAgents.mockImplementation((_em, _id, agentIds) =>
    Promise.resolve(steps.filter((s) => agentIds.includes(s.agentId))),
  );
  const writer = mockOf<UpgradeWriter>();
  const commands = mockOf<AgentCommandsService>();
  const agents = mockOf<AgentsService>();
  const packages = mockOf<PackagesService>();
  const clusters = mockOf<ClustersService>();
  const config = { heartbeatTimeoutS: 30 } as Partial<AppConfig> as AppConfig;
  const executor = new UpgradeExecutor(
    db.asDatabase(),
    upgrades,
    writer,
    commands,
    agents,
    packages,
    clusters,
    mockOf<RollbackPlanning>(),
    new ManualClock(NOW),
    mockOf<Leadership>(),
    config,
    mockOf<AuditTrail>(),
  );
  // A pass is the executor's own business (tested e2e); here only whether and when one is asked.
  const pokeSoon = jest.spyOn(executor, 'pokeSoon').mockImplementation(() => undefined);
  return { executor, db, upgrades, writer, commands, agents, packages, clusters, pokeSoon };
}
type Rig = ReturnType<typeof rig>;

/** The step's command is out: the agent fetched it and runs it. */
const runningStep = (overrides: Partial<UpgradeStep> = {}) =>
  aStep({ status: 'running', commandId: 'command-1', attempts: 1, startedAt: T0, phaseStartedAt: T0, ...overrides });

const complete = (report: Extract<CommandReport, { kind: 'complete' }>['report']): CommandReport => ({
  kind: 'complete',
  report,
});

/** What the report's transaction brought the agents to: the changes handed to syncAgents. */
function agentChanges(r: Rig) {
  expect(r.writer.syncAgents).toHaveBeenCalledTimes(1);
  return r.writer.syncAgents.mock.calls[0][4];
}

describe('UpgradeExecutor.onReport: a command’s end is its step’s end', () => {
  it('a success naming the package version ends the step succeeded and records the agent, in the report’s transaction', async () => {
    const step = runningStep();
    const upgrade = anUpgrade();
    const r = rig(upgrade, [step]);
    const tx = new FakeTx(1);

    const outcome = await r.executor.onReport(
      tx,
      aCommand({ status: 'succeeded' }),
      complete({ status: 'succeeded', version: '10.3.0' }),
    );

    expect(outcome).toBe('recorded');
    expect(tx.advisoryLock).toHaveBeenCalledWith('upgrade:upgrade-1');
    expect(step).toMatchObject({ status: 'succeeded', percent: 100, error: null, endedAt: NOW });
    // The percent is taken from the database: only this agent's steps were read.
    expect(r.writer.saveSteps).toHaveBeenCalledWith(tx, upgrade, 'partial', [step]);
    expect(r.writer.syncAgents).toHaveBeenCalledWith(tx, upgrade, [step], ['agent-a'], expect.any(Map));
    expect(agentChanges(r)?.get('agent-a')).toEqual({
      lastUpgradeFailed: false,
      version: '10.3.0',
      // A full package brings the web apps it shipped with.
      webappsVersion: null,
      autoUpgradeBlocked: null,
      autoUpgradeRetryAt: null,
      autoUpgradeAttempts: 0,
    });
  });

  it('asks for a pass only once the report committed, so the next steps start from the recorded end', async () => {
    const r = rig(anUpgrade(), [runningStep()]);
    const tx = new FakeTx(1);

    await r.executor.onReport(tx, aCommand(), complete({ status: 'succeeded', version: '10.3.0' }));

    expect(r.pokeSoon).not.toHaveBeenCalled();
    await tx.commit();
    expect(r.pokeSoon).toHaveBeenCalledTimes(1);
  });

  it.each([
    [
      'a success without the version',
      { status: 'succeeded' as const },
      'the agent reported success without the version it runs now; it must report 10.3.0',
      undefined,
    ],
    [
      'a success naming another version',
      { status: 'succeeded' as const, version: '10.2.5' },
      'the agent reported success but its version is 10.2.5, not 10.3.0',
      '10.2.5',
    ],
    ['a failure', { status: 'failed' as const, version: '10.2.0', error: 'disk full' }, 'disk full', '10.2.0'],
    [
      'a roll-back',
      { status: 'rolled-back' as const, version: '10.2.0', error: 'migration failed' },
      'rolled back, data intact: migration failed',
      '10.2.0',
    ],
  ])('%s fails the step saying why, and marks the agent failed', async (_case, report, error, version) => {
    const step = runningStep();
    const r = rig(anUpgrade(), [step]);

    await r.executor.onReport(new FakeTx(1), aCommand(), complete(report));

    expect(step).toMatchObject({
      status: report.status === 'rolled-back' ? 'rolled-back' : 'failed',
      error,
      endedAt: NOW,
    });
    const changes = agentChanges(r)?.get('agent-a');
    expect(changes).toMatchObject({ lastUpgradeFailed: true });
    // What the agent runs now, as it said (README: "after a failure, the version still installed").
    expect(changes?.version).toBe(version);
  });

  it('a web-apps upgrade records the web-apps version, not the core’s', async () => {
    const r = rig(anUpgrade({ packageKind: 'webapps', packageVersion: '10.3.1' }), [runningStep()]);

    await r.executor.onReport(new FakeTx(1), aCommand(), complete({ status: 'succeeded', version: '10.3.1' }));

    const changes = agentChanges(r)?.get('agent-a');
    expect(changes).toMatchObject({ lastUpgradeFailed: false, webappsVersion: '10.3.1' });
    expect(changes).not.toHaveProperty('version');
  });

  it('a switchover that succeeded makes its agent active, tells the member that handed over, and announces it', async () => {
    const step = runningStep({
      id: 'step-s',
      kind: 'switchover',
      agentId: 'agent-b',
      fromAgentId: 'agent-a',
      failoverGroup: 'pair-1',
    });
    const upgrade = anUpgrade();
    const r = rig(upgrade, [step]);
    const tx = new FakeTx(1);
    const command = aCommand({
      agentId: 'agent-b',
      type: 'switchover',
      reference: 'step:upgrade-1/step-s',
      payload: {
        activate: true,
        failoverGroup: 'pair-1',
        peerAgentId: 'agent-a',
        upgradeId: 'upgrade-1',
        stepId: 'step-s',
      },
    });

    await r.executor.onReport(tx, command, complete({ status: 'succeeded' }));

    expect(step.status).toBe('succeeded');
    expect(r.writer.publishSwitchover).toHaveBeenCalledWith(tx, upgrade, step);
    expect(r.commands.enqueue).toHaveBeenCalledWith(tx, {
      agentId: 'agent-a',
      clusterId: 'cluster-1',
      type: 'switchover',
      payload: { activate: false, failoverGroup: 'pair-1', peerAgentId: 'agent-b', upgradeId: 'upgrade-1' },
      reference: 'standby:step-s',
    });
    const changes = agentChanges(r);
    expect(changes?.get('agent-b')).toEqual({ active: true });
    expect(changes?.get('agent-a')).toEqual({ active: false });
  });

  it.each([
    [
      'not a step’s command (a migration)',
      aCommand({ type: 'migrate', reference: 'migrate:agent-a' }),
      [runningStep()],
    ],
    ['an earlier attempt’s command', aCommand({ id: 'command-0' }), [runningStep()]],
    ['a step that already ended', aCommand(), [runningStep({ status: 'failed', endedAt: T0 })]],
    ['a step of an upgrade that is gone', aCommand(), null],
  ])('a report on %s is ignored and moves nothing', async (_case, command, steps) => {
    const r = rig(steps ? anUpgrade() : null, steps ?? []);
    const tx = new FakeTx(1);

    const outcome = await r.executor.onReport(tx, command, complete({ status: 'succeeded', version: '10.3.0' }));

    // 'ignored' is what makes AgentCommandsService record a reported version on the agent itself.
    expect(outcome).toBe('ignored');
    expect(calledMethods(r.writer)).toEqual([]);
    expect(calledMethods(r.commands)).toEqual([]);
    expect(tx.afterCommitHooks).toEqual([]);
    for (const step of steps ?? []) expect(step.endedAt).not.toEqual(NOW);
  });

  it('a progress report moves the step’s phase and percent, restarts the phase clock on a new phase, and asks no pass', async () => {
    const step = runningStep({ phase: 'backup', percent: 10 });
    const upgrade = anUpgrade();
    const r = rig(upgrade, [step]);
    const tx = new FakeTx(1);

    await r.executor.onReport(tx, aCommand({ status: 'running' }), {
      kind: 'progress',
      report: { phase: 'install', percent: 40, message: 'downloaded 50%' },
    });

    expect(step).toMatchObject({ status: 'running', phase: 'install', percent: 40, message: 'downloaded 50%' });
    expect(step.phaseStartedAt).toEqual(NOW);
    expect(r.writer.saveSteps).toHaveBeenCalledWith(tx, upgrade, 'partial', [step]);
    expect(tx.afterCommitHooks).toEqual([]);
  });

  it('the fetch of a command makes its step run; a second fetch (two replicas) moves nothing', async () => {
    const step = aStep({
      status: 'waiting',
      waitingFor: 'pickup',
      waitingSince: T0,
      commandId: 'command-1',
      attempts: 1,
    });
    const upgrade = anUpgrade();
    const r = rig(upgrade, [step]);

    expect(await r.executor.onReport(new FakeTx(1), aCommand(), { kind: 'fetched' })).toBe('recorded');
    expect(step).toMatchObject({ status: 'running', waitingFor: null, phaseStartedAt: NOW });
    expect(r.writer.saveSteps).toHaveBeenCalledWith(expect.any(FakeTx), upgrade, 'same-percent', [step]);

    expect(await r.executor.onReport(new FakeTx(2), aCommand(), { kind: 'fetched' })).toBe('ignored');
    expect(r.writer.saveSteps).toHaveBeenCalledTimes(1);
  });
});

describe('UpgradeExecutor.onReport: the fetch of a serving pair member’s command', () => {
  // docs/ARCHITECTURE.md, "The heartbeat that hands out a command" (3), and docs/version-model.md,
  // "Pair safety": the pair gate is checked again when the agent fetches its command, since its
  // peer may have gone away since the step started.
  function fetchOfServingMember(peerOnline: boolean) {
    const step = aStep({
      failoverGroup: 'pair-1',
      status: 'waiting',
      waitingFor: 'pickup',
      waitingSince: T0,
      commandId: 'command-1',
      attempts: 1,
      startedAt: T0,
    });
    const r = rig(anUpgrade(), [step]);
    r.agents.lockWithPeers.mockResolvedValue([
      anAgent({ role: 'main', failoverGroup: 'pair-1', active: true }),
      anAgent({
        id: 'agent-b',
        name: 'bravo',
        role: 'backup',
        failoverGroup: 'pair-1',
        active: false,
        online: peerOnline,
      }),
    ]);
    return { r, step };
  }

  it('withdraws the command when the peer went offline, and the step waits for its peer again', async () => {
    const { r, step } = fetchOfServingMember(false);
    const tx = new FakeTx(1);

    await r.executor.onReport(tx, aCommand(), { kind: 'fetched' });

    expect(r.commands.cancel).toHaveBeenCalledWith(
      tx,
      'command-1',
      'alpha serves its pair and bravo is offline, so stopping it would leave no member serving',
    );
    // Not an attempt: the agent never saw the command.
    expect(step).toMatchObject({
      status: 'waiting',
      waitingFor: 'peer',
      commandId: null,
      attempts: 0,
      startedAt: null,
    });
    expect(r.writer.saveSteps).toHaveBeenCalledWith(tx, expect.anything(), 'same-percent', [step]);
  });

  it('hands the command over when the peer is online and upgrades with it (simultaneous policy)', async () => {
    const { r, step } = fetchOfServingMember(true);
    r.upgrades.stepsOfAgents.mockImplementation((_em, _id, agentIds) =>
      Promise.resolve(
        agentIds.includes('agent-b')
          ? [aStep({ id: 'step-b', agentId: 'agent-b', status: 'running', commandId: 'command-b' })]
          : [step],
      ),
    );

    await r.executor.onReport(new FakeTx(1), aCommand(), { kind: 'fetched' });

    expect(r.commands.cancel).not.toHaveBeenCalled();
    expect(step).toMatchObject({ status: 'running', commandId: 'command-1', attempts: 1 });
  });
});

describe('a complete report through AgentCommandsService, with the executor bound as its CommandIssuer', () => {
  /** Both services on one fake database, wired as UpgradesModule binds the port (useExisting). */
  function wired(command: AgentCommand, steps: UpgradeStep[]) {
    const r = rig(anUpgrade(), steps);
    const commandRows = mockOf<AgentCommandRepository>();
    commandRows.findById.mockResolvedValue(command);
    const agentRows = mockOf<AgentRepository>();
    agentRows.findForUpdate.mockResolvedValue(anAgent({ version: '10.2.0' }));
    const updater = mockOf<AgentUpdater>();
    const events = mockOf<EventLog>();
    const moduleRef = mockOf<ModuleRef>();
    moduleRef.get.mockImplementation((token) => (token === CommandIssuer ? r.executor : undefined));
    const queue = new AgentCommandsService(
      r.db.asDatabase(),
      commandRows,
      agentRows,
      updater,
      events,
      new ManualClock(NOW),
      moduleRef,
    );
    queue.onModuleInit();
    return { ...r, queue, commandRows, updater, events };
  }

  it('ends the command and its step in the same transaction, and the queue writes no version of its own', async () => {
    const command = aCommand({ status: 'running', fetchedAt: T0 });
    const step = runningStep();
    const w = wired(command, [step]);

    await w.queue.reportComplete('agent-a', 'command-1', { status: 'succeeded', version: '10.3.0' });

    const tx = w.db.only();
    expect(tx.state).toBe('committed');
    expect(w.commandRows.save).toHaveBeenCalledWith(tx.em, expect.objectContaining({ status: 'succeeded' }));
    expect(w.events.append).toHaveBeenCalledWith(tx, [expect.objectContaining({ type: 'command.status' })]);
    expect(w.writer.saveSteps).toHaveBeenCalledWith(tx, expect.anything(), 'partial', [step]);
    expect(step.status).toBe('succeeded');
    expect(agentChanges(w)?.get('agent-a')).toMatchObject({ version: '10.3.0' });
    expect(w.updater.apply).not.toHaveBeenCalled();
    // The executor's lock, then the command: a pass and this report never interleave.
    expect(tx.advisoryLock).toHaveBeenCalledWith('upgrade:upgrade-1');
  });

  it('a migration’s end is ignored by the executor, so the queue records the version on the agent', async () => {
    const w = wired(aCommand({ type: 'migrate', reference: 'migrate:agent-a', payload: { version: '10.2.0' } }), []);

    await w.queue.reportComplete('agent-a', 'command-1', { status: 'succeeded', version: '10.2.1' });

    expect(calledMethods(w.writer)).toEqual([]);
    expect(w.updater.apply).toHaveBeenCalledWith(w.db.only(), expect.objectContaining({ id: 'agent-a' }), {
      version: '10.2.1',
    });
  });
});

describe('UpgradeExecutor.reconcileLateFinish: an agent that finished after the server failed its step', () => {
  /** The step the executor failed for its phase timeout, its withdrawn command, and the agent's heartbeat version. */
  function lateFinish(upgrade: Upgrade, agentVersion: string) {
    const step = runningStep({ status: 'failed', error: 'phase install ran past phaseTimeoutS (1800 s)', endedAt: T0 });
    const r = rig(upgrade, [step]);
    r.upgrades.lastStartedUpgradeStepOf.mockResolvedValue(step);
    r.commands.findById.mockResolvedValue(aCommand({ status: 'cancelled', fetchedAt: T0, endedAt: T0 }));
    r.agents.lockMany.mockResolvedValue([anAgent({ version: agentVersion, lastUpgradeFailed: true })]);
    return { r, step };
  }

  it('records the step as succeeded with a note and the agent as no longer failed; a live upgrade carries on after the commit', async () => {
    const upgrade = anUpgrade();
    const { r, step } = lateFinish(upgrade, '10.3.0');

    await r.executor.reconcileLateFinish('agent-a');

    const tx = r.db.only();
    expect(tx.state).toBe('committed');
    expect(tx.advisoryLock.mock.invocationCallOrder[0]).toBeLessThan(r.agents.lockMany.mock.invocationCallOrder[0]);
    expect(step).toMatchObject({ status: 'succeeded', percent: 100, error: null });
    expect(step.note).toContain('finished after the server failed it (phase install ran past phaseTimeoutS (1800 s))');
    expect(r.writer.saveSteps).toHaveBeenCalledWith(tx, upgrade, [step], [step]);
    expect(agentChanges(r)?.get('agent-a')).toMatchObject({ lastUpgradeFailed: false, version: '10.3.0' });
    expect(r.pokeSoon).toHaveBeenCalledTimes(1);
  });

  it('judges a finished upgrade again from its steps, and sets the cluster’s target as at its end', async () => {
    const upgrade = anUpgrade({ status: 'failed', finishedAt: T0, reason: '1 unit failed' });
    const { r } = lateFinish(upgrade, '10.3.0');
    r.upgrades.upgradeOfAllSince.mockResolvedValue(false);
    r.clusters.require.mockResolvedValue(aCluster({ targetPackageId: null }));

    await r.executor.reconcileLateFinish('agent-a');

    const tx = r.db.only();
    const [inTx, judged, , status] = r.writer.saveUpgrade.mock.calls[0];
    expect([inTx, judged, status]).toEqual([tx, upgrade, 'succeeded']);
    expect(r.clusters.setTarget).toHaveBeenCalledWith(tx, 'cluster-1', 'full', '10.3.0', 'package-1');
    expect(r.pokeSoon).not.toHaveBeenCalled();
  });

  it('an agent that rolled back (it reports the old version) stays failed: nothing is written', async () => {
    const { r, step } = lateFinish(anUpgrade(), '10.2.0');

    await r.executor.reconcileLateFinish('agent-a');

    expect(step.status).toBe('failed');
    expect(calledMethods(r.writer)).toEqual([]);
    expect(r.pokeSoon).not.toHaveBeenCalled();
  });
});
