import { Logger } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ManualClock } from '../common/clock';
import { ConflictError, ForbiddenError } from '../common/errors';
import { EventLog } from '../progress/event-log.service';
import { calledMethods, FakeDatabase, mockOf, refusalOf } from '../testing/fakes';
import { aCommand, anAgent, T0 } from '../testing/fixtures';
import { AgentCommand } from './agent-command.entity';
import { AgentCommandRepository } from './agent-command.repository';
import { AgentCommandsService, CommandIssuer } from './agent-commands.service';
import { AgentRepository } from './agent.repository';
import { AgentUpdater } from './agent-updater';

/**
 * An agent's reports on its commands (issue 17): whose command it is, what an ended command still
 * accepts, and that a report reaches the command's issuer (the upgrade executor, through the
 * CommandIssuer port) in the transaction that records it. The rules are docs/agent-protocol.md,
 * "Progress", "Complete" and "A late finish"; the wiring docs/ARCHITECTURE.md, "Ports".
 */

const NOW = new Date(T0.getTime() + 60_000);

beforeAll(() => Logger.overrideLogger(false));

function rig(command: AgentCommand, dialect: 'sqlite' | 'postgres' = 'sqlite') {
  const db = new FakeDatabase(dialect);
  const commands = mockOf<AgentCommandRepository>();
  commands.findById.mockResolvedValue(command);
  commands.findForUpdate.mockResolvedValue(command);
  const agents = mockOf<AgentRepository>();
  const updater = mockOf<AgentUpdater>();
  const events = mockOf<EventLog>();
  const issuer = mockOf<CommandIssuer>();
  issuer.onReport.mockResolvedValue('recorded');
  // The port is resolved once every provider exists (onModuleInit), as Nest does.
  const moduleRef = mockOf<ModuleRef>();
  moduleRef.get.mockReturnValue(issuer);
  const service = new AgentCommandsService(
    db.asDatabase(),
    commands,
    agents,
    updater,
    events,
    new ManualClock(NOW),
    moduleRef,
  );
  service.onModuleInit();
  return { service, db, commands, agents, updater, events, issuer };
}
type Rig = ReturnType<typeof rig>;

/** A refused report: nothing saved, no event, the issuer never told, the transaction rolled back. */
function expectNothingWritten(r: Rig): void {
  expect(r.db.only().state).toBe('rolled-back');
  expect(r.commands.save).not.toHaveBeenCalled();
  expect(r.events.append).not.toHaveBeenCalled();
  expect(r.issuer.onReport).not.toHaveBeenCalled();
  expect(calledMethods(r.updater)).toEqual([]);
}

const progress = { phase: 'install', percent: 40, message: 'downloaded 50%' };

describe('AgentCommandsService: reports', () => {
  describe.each([
    ['progress', (r: Rig, agentId: string) => r.service.reportProgress(agentId, 'command-1', progress)],
    [
      'complete',
      (r: Rig, agentId: string) =>
        r.service.reportComplete(agentId, 'command-1', { status: 'succeeded', version: '10.3.0' }),
    ],
  ])('%s', (_kind, report) => {
    it('on another agent’s command is a 403 NOT_YOUR_COMMAND, and writes nothing', async () => {
      const r = rig(aCommand({ agentId: 'agent-b' }));

      const error = await refusalOf(report(r, 'agent-a'));

      expect(error).toBeInstanceOf(ForbiddenError);
      expect(error).toMatchObject({
        status: 403,
        code: 'NOT_YOUR_COMMAND',
        message: 'Command command-1 belongs to another agent; an agent reports only on its own commands.',
      });
      expectNothingWritten(r);
      // Not even the issuer's lock: another agent's report must not make an upgrade wait.
      expect(r.issuer.lockForReport).not.toHaveBeenCalled();
    });

    it('on an unknown command is a 404, and writes nothing', async () => {
      const r = rig(aCommand());
      r.commands.findById.mockResolvedValue(null);

      await expect(report(r, 'agent-a')).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' });
      expectNothingWritten(r);
    });

    it('on a command Lockstep cancelled is a 409 COMMAND_ENDED saying so, and writes nothing', async () => {
      const r = rig(aCommand({ status: 'cancelled', error: 'cancelled: the upgrade was cancelled', endedAt: T0 }));

      const error = await refusalOf(report(r, 'agent-a'));

      expect(error).toBeInstanceOf(ConflictError);
      expect(error).toMatchObject({
        status: 409,
        code: 'COMMAND_ENDED',
        message: 'Command command-1 already ended (cancelled); reports after its end are refused.',
        details: { status: 'cancelled' },
      });
      expectNothingWritten(r);
    });

    it('takes the issuer’s lock before the command row (PostgreSQL): issuer, then command, as a pass does', async () => {
      const r = rig(aCommand({ status: 'running', phase: 'backup', percent: 10 }), 'postgres');

      await report(r, 'agent-a');

      const tx = r.db.only();
      expect(r.issuer.lockForReport).toHaveBeenCalledWith(tx, expect.objectContaining({ id: 'command-1' }));
      expect(r.commands.findForUpdate).toHaveBeenCalledWith(tx, 'command-1');
      expect(r.issuer.lockForReport.mock.invocationCallOrder[0]).toBeLessThan(
        r.commands.findForUpdate.mock.invocationCallOrder[0],
      );
    });
  });

  describe('pendingFor: the fetch, reported with a heartbeat answer', () => {
    // docs/ARCHITECTURE.md, "The heartbeat that hands out a command" (3): the first time a command
    // goes out it is recorded as fetched and its issuer told, which may still withdraw it (a
    // serving member's peer went away).
    const pending = (fetched: boolean) => [
      { id: 'command-1', type: 'upgrade' as const, payload: { toVersion: '10.3.0' }, fetched },
    ];

    it('records a command’s first fetch and tells the issuer in one transaction, then hands it out', async () => {
      const command = aCommand();
      const r = rig(command);
      r.commands.findPendingFor.mockResolvedValue(pending(false));

      const handed = await r.service.pendingFor('agent-a');

      const tx = r.db.only();
      expect(tx.state).toBe('committed');
      expect(r.issuer.onReport).toHaveBeenCalledWith(tx, command, { kind: 'fetched' });
      expect(r.commands.save).toHaveBeenCalledWith(tx.em, expect.objectContaining({ id: 'command-1', fetchedAt: NOW }));
      expect(handed).toEqual([{ toVersion: '10.3.0', id: 'command-1', type: 'upgrade' }]);
    });

    it('does not hand out a command its issuer withdrew at the fetch, nor record it fetched', async () => {
      const command = aCommand();
      const r = rig(command);
      r.commands.findPendingFor.mockResolvedValue(pending(false));
      // The row read again by cancel is a new object, as a database answers it.
      r.commands.findForUpdate.mockImplementation(() => Promise.resolve(aCommand()));
      // What the executor does when the pair gate fails at the fetch (UpgradeExecutor.checkPairAtFetch).
      r.issuer.onReport.mockImplementation(async (tx, withdrawn) => {
        await r.service.cancel(tx, withdrawn.id, 'its peer cannot take over');
        return 'recorded';
      });

      const handed = await r.service.pendingFor('agent-a');

      expect(handed).toEqual([]);
      // Written once, by its end: cancelled, never fetched.
      expect(r.commands.save).toHaveBeenCalledTimes(1);
      expect(r.commands.save.mock.calls[0][1]).toMatchObject({
        status: 'cancelled',
        fetchedAt: null,
        error: 'cancelled: its peer cannot take over',
      });
      expect(r.events.append).toHaveBeenCalledWith(r.db.only(), [
        expect.objectContaining({ type: 'command.status', data: expect.objectContaining({ status: 'cancelled' }) }),
      ]);
    });

    it('hands a command fetched before out again, with no transaction, until the agent reports on it', async () => {
      const r = rig(aCommand({ fetchedAt: T0 }));
      r.commands.findPendingFor.mockResolvedValue(pending(true));

      const handed = await r.service.pendingFor('agent-a');

      expect(handed).toEqual([{ toVersion: '10.3.0', id: 'command-1', type: 'upgrade' }]);
      expect(r.db.transactions).toEqual([]);
      expect(r.issuer.onReport).not.toHaveBeenCalled();
    });
  });

  describe('reportProgress', () => {
    it('moves the command to running and tells the issuer, in the one transaction that saves it', async () => {
      const command = aCommand({ fetchedAt: T0 });
      const r = rig(command);

      const state = await r.service.reportProgress('agent-a', 'command-1', progress);

      const tx = r.db.only();
      expect(tx.state).toBe('committed');
      expect(command).toMatchObject({ status: 'running', phase: 'install', percent: 40, message: 'downloaded 50%' });
      expect(r.commands.save).toHaveBeenCalledWith(tx.em, command);
      expect(r.issuer.onReport).toHaveBeenCalledWith(tx, command, { kind: 'progress', report: progress });
      expect(state).toEqual({ id: 'command-1', type: 'upgrade', status: 'running', phase: 'install', percent: 40 });
    });

    it('the same report twice changes nothing the second time (agents resend)', async () => {
      const command = aCommand({ status: 'running', phase: 'install', percent: 40, message: 'downloaded 50%' });
      const r = rig(command);

      const state = await r.service.reportProgress('agent-a', 'command-1', progress);

      expect(state.status).toBe('running');
      expect(r.commands.save).not.toHaveBeenCalled();
      expect(r.issuer.onReport).not.toHaveBeenCalled();
    });
  });

  describe('reportComplete', () => {
    it('ends the command, publishes command.status and hands the end to the issuer, in one transaction', async () => {
      const command = aCommand({ status: 'running', phase: 'verify', percent: 85 });
      const r = rig(command);
      r.agents.findForUpdate.mockResolvedValue(anAgent({ version: '10.2.0' }));
      const report = { status: 'succeeded' as const, version: '10.3.0', notes: ['services stopped: snmpd'] };

      const state = await r.service.reportComplete('agent-a', 'command-1', report);

      const tx = r.db.only();
      expect(tx.state).toBe('committed');
      // A success is the whole of the work, whatever the last progress said.
      expect(command).toMatchObject({
        status: 'succeeded',
        percent: 100,
        resultVersion: '10.3.0',
        notes: ['services stopped: snmpd'],
        endedAt: NOW,
      });
      expect(r.commands.save).toHaveBeenCalledWith(tx.em, command);
      expect(r.events.append).toHaveBeenCalledWith(tx, [
        expect.objectContaining({
          type: 'command.status',
          clusterId: 'cluster-1',
          agentId: 'agent-a',
          upgradeId: 'upgrade-1',
          data: expect.objectContaining({
            commandId: 'command-1',
            status: 'succeeded',
            version: '10.3.0',
            upgradeId: 'upgrade-1',
            stepId: 'step-a',
          }),
        }),
      ]);
      expect(r.issuer.onReport).toHaveBeenCalledWith(tx, command, { kind: 'complete', report });
      // The issuer recorded it (on the right component of the agent): the queue does not write a version too.
      expect(calledMethods(r.updater)).toEqual([]);
      expect(state).toMatchObject({ status: 'succeeded', percent: 100 });
    });

    it('records the reported version on the agent itself when the issuer ignored the end (a migration)', async () => {
      const command = aCommand({ type: 'migrate', reference: 'migrate:agent-a', payload: { version: '10.3.0' } });
      const r = rig(command);
      r.issuer.onReport.mockResolvedValue('ignored');
      const agent = anAgent({ version: '10.2.0' });
      r.agents.findForUpdate.mockResolvedValue(agent);

      await r.service.reportComplete('agent-a', 'command-1', { status: 'succeeded', version: '10.3.0' });

      const tx = r.db.only();
      expect(r.updater.apply).toHaveBeenCalledWith(tx, agent, { version: '10.3.0' });
      // No upgrade on a migration's command.status.
      expect(r.events.append.mock.calls[0][1][0]).not.toHaveProperty('upgradeId');
    });

    it('writes no agent change when the ignored end names the version the agent already runs', async () => {
      const r = rig(aCommand({ type: 'migrate', reference: 'migrate:agent-a', payload: { version: '10.2.0' } }));
      r.issuer.onReport.mockResolvedValue('ignored');
      r.agents.findForUpdate.mockResolvedValue(anAgent({ version: '10.2.0' }));

      await r.service.reportComplete('agent-a', 'command-1', { status: 'succeeded', version: '10.2.0' });

      expect(r.updater.apply).not.toHaveBeenCalled();
    });

    it('the same end twice answers the end again and writes nothing (an unacknowledged report resent)', async () => {
      const r = rig(aCommand({ status: 'succeeded', percent: 100, resultVersion: '10.3.0', endedAt: T0 }));

      const state = await r.service.reportComplete('agent-a', 'command-1', { status: 'succeeded', version: '10.3.0' });

      expect(state).toMatchObject({ status: 'succeeded', percent: 100 });
      expect(r.commands.save).not.toHaveBeenCalled();
      expect(r.events.append).not.toHaveBeenCalled();
      expect(r.issuer.onReport).not.toHaveBeenCalled();
    });

    it('another end on an ended command is a 409 COMMAND_ENDED naming how it ended', async () => {
      const r = rig(aCommand({ status: 'failed', error: 'disk full', endedAt: T0 }));

      const error = await refusalOf(
        r.service.reportComplete('agent-a', 'command-1', { status: 'succeeded', version: '10.3.0' }),
      );

      expect(error).toMatchObject({ status: 409, code: 'COMMAND_ENDED', details: { status: 'failed' } });
      expectNothingWritten(r);
    });

    it('a late finish (the server failed the step and cancelled the command) is refused here; the version is not written', async () => {
      // docs/agent-protocol.md, "A late finish": the agent's report gets 409; its next heartbeat
      // names the version, and the executor's reconcileLateFinish records it (upgrade-executor.spec.ts).
      const r = rig(
        aCommand({
          status: 'cancelled',
          phase: 'migrate',
          error: 'cancelled: phase migrate ran past phaseTimeoutS',
          endedAt: T0,
        }),
      );

      const error = await refusalOf(
        r.service.reportComplete('agent-a', 'command-1', { status: 'succeeded', version: '10.3.0' }),
      );

      expect(error).toMatchObject({ status: 409, code: 'COMMAND_ENDED', details: { status: 'cancelled' } });
      expectNothingWritten(r);
      expect(r.agents.findForUpdate).not.toHaveBeenCalled();
    });

    it('an issuer that fails makes the report fail: the command’s end is not committed without the step’s', async () => {
      const command = aCommand({ status: 'running' });
      const r = rig(command);
      r.issuer.onReport.mockRejectedValue(new Error('deadlock'));

      await expect(r.service.reportComplete('agent-a', 'command-1', { status: 'failed', error: 'x' })).rejects.toThrow(
        'deadlock',
      );

      // The agent gets no 200 and resends; the end it reported is not committed without the step's.
      expect(r.db.only().state).toBe('rolled-back');
    });
  });
});
