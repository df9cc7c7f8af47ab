import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import { Clock } from '../common/clock';
import { ConflictError, ForbiddenError, NotFoundError } from '../common/errors';
import { Database, Tx } from '../database/database';
import { AgentCommand, ENDED_COMMAND_STATUSES } from './agent-command.entity';
import { AgentCommandRepository } from './agent-command.repository';
import { AgentRepository } from './agent.repository';
import { AgentUpdater } from './agent-updater';
import { EventLog } from '../progress/event-log.service';
import {
  AgentCommandDto,
  AgentCommandPageDto,
  CommandDto,
  CommandStateDto,
  CommandStatusEventData,
  CompleteReportDto,
  ProgressReportDto,
} from './dto/agent-protocol.dto';
import type {
  MigrateCommandPayload,
  RollbackCommandPayload,
  SwitchoverCommandPayload,
  UpgradeCommandPayload,
} from '../protocol/agent-protocol';
import { resolvePort } from '../common/ports';

/** What an agent did with a command: fetched it (with a heartbeat answer), reported progress, or its end. */
export type CommandReport =
  | { kind: 'fetched' }
  | { kind: 'progress'; report: ProgressReportDto }
  | { kind: 'complete'; report: CompleteReportDto };

/**
 * What the issuer made of a report (CommandIssuer.onReport). `recorded`: the report was on its
 * current command and moved its own state, with any version an end reports written on the right
 * component of the agent (core or web apps). `ignored`: not its command (a migration), an earlier
 * attempt's, or a repeat that changes nothing; the queue records a reported version itself.
 */
export type ReportOutcome = 'recorded' | 'ignored';

/**
 * Port: whoever issues commands through this queue and moves its own state with the reports on them
 * (the upgrade executor). Declared here, bound by the module above (UpgradesModule:
 * `{ provide: CommandIssuer, useExisting: UpgradeExecutor }`), so cluster code never imports
 * upgrade code; see docs/ARCHITECTURE.md, "Ports".
 */
export abstract class CommandIssuer {
  /**
   * Takes, before a report locks its command, the issuer's own locks (the executor takes the
   * upgrade's), so reports and the issuer's passes lock in one order: issuer, then command.
   */
  abstract lockForReport(tx: Tx, command: AgentCommand): Promise<void>;

  /** Runs inside the transaction that records the report, so the issuer's state moves in the same commit. */
  abstract onReport(tx: Tx, command: AgentCommand, report: CommandReport): Promise<ReportOutcome>;
}

/** A command to queue: its type and that type's payload (src/protocol/agent-protocol.ts). */
export type NewCommand = {
  agentId: string;
  clusterId: string;
  /** Who asked, e.g. `step:<id>`, so the issuer finds its way back. */
  reference?: string;
} & (
  | { type: 'upgrade'; payload: UpgradeCommandPayload }
  | { type: 'switchover'; payload: SwitchoverCommandPayload }
  | { type: 'migrate'; payload: MigrateCommandPayload }
  | { type: 'rollback'; payload: RollbackCommandPayload }
);

/** The per-agent command queue: other modules enqueue; agents take and report; the issuer (CommandIssuer) learns. */
@Injectable()
export class AgentCommandsService implements OnModuleInit {
  private readonly logger = new Logger(AgentCommandsService.name);
  private issuer: CommandIssuer;
  /** The commands each open transaction ended (see markFetched): known without reading them again. */
  private readonly endedIn = new WeakMap<Tx, Set<string>>();

  constructor(
    private readonly db: Database,
    private readonly commands: AgentCommandRepository,
    private readonly agents: AgentRepository,
    private readonly updater: AgentUpdater,
    private readonly events: EventLog,
    private readonly clock: Clock,
    private readonly moduleRef: ModuleRef,
  ) {}

  /**
   * Resolved once every provider exists, not injected: the executor that binds it enqueues through
   * this service (docs/ARCHITECTURE.md, "Ports").
   */
  onModuleInit(): void {
    this.issuer = resolvePort(this.moduleRef, CommandIssuer, 'UpgradesModule');
  }

  /** Queues a command in the caller's transaction; the agent gets it with its next heartbeat. */
  async enqueue(tx: Tx, command: NewCommand): Promise<AgentCommand> {
    const now = this.clock.now();
    const created = Object.assign(new AgentCommand(), {
      id: randomUUID(),
      agentId: command.agentId,
      clusterId: command.clusterId,
      type: command.type,
      payload: { ...command.payload },
      reference: command.reference ?? null,
      status: 'pending',
      phase: null,
      percent: 0,
      message: null,
      resultVersion: null,
      error: null,
      notes: null,
      fetchedAt: null,
      createdAt: now,
      updatedAt: now,
      endedAt: null,
    } satisfies AgentCommand);
    await this.commands.insert(tx.em, created);
    return created;
  }

  /** Cancels the agent's commands that have not ended; reports on them are refused from now on. */
  async cancelOpen(tx: Tx, agentId: string, reason: string): Promise<AgentCommand[]> {
    const open = await this.commands.findOpenFor(tx.em, agentId);
    for (const command of open) await this.end(tx, command, 'cancelled', { error: `cancelled: ${reason}` });
    return open;
  }

  /** Cancels one command if it has not ended; returns whether it did. */
  async cancel(tx: Tx, commandId: string, reason: string): Promise<boolean> {
    const command = await this.commands.findForUpdate(tx, commandId);
    if (!command || ENDED_COMMAND_STATUSES.includes(command.status)) return false;
    await this.end(tx, command, 'cancelled', { error: `cancelled: ${reason}` });
    return true;
  }

  /** The agent's commands that have not ended. */
  openFor(tx: Tx, agentId: string): Promise<AgentCommand[]> {
    return this.commands.findOpenFor(tx.em, agentId);
  }

  findById(id: string, tx?: Tx): Promise<AgentCommand | null> {
    return this.commands.findById(id, tx?.em);
  }

  /**
   * What rides on a heartbeat answer: the commands not reported on yet, in the agent's wire shape.
   * The first time a command goes out it is recorded as fetched, with whoever issued it told in the
   * same transaction (an upgrade step runs from then on); a command cancelled meanwhile (its step
   * missed its turn) is not handed out.
   */
  async pendingFor(agentId: string): Promise<CommandDto[]> {
    const pending = await this.commands.findPendingFor(agentId);
    const fresh = pending.filter((c) => !c.fetched);
    const withdrawn = fresh.length
      ? await this.markFetched(
          agentId,
          fresh.map((c) => c.id),
        )
      : new Set<string>();
    return pending.filter((c) => !withdrawn.has(c.id)).map((c) => ({ ...c.payload, id: c.id, type: c.type }));
  }

  /**
   * Records these commands as fetched and tells whoever issued them, which may still withdraw one
   * (the executor, when a serving pair member's peer went away meanwhile); returns the commands
   * that are not to be handed out.
   */
  private markFetched(agentId: string, ids: string[]): Promise<Set<string>> {
    return this.db.transaction(async (tx) => {
      const withdrawn = new Set<string>();
      for (const id of ids) {
        const command = await this.lockForReport(tx, agentId, id).catch(() => null);
        if (!command || command.status !== 'pending') {
          withdrawn.add(id);
          continue;
        }
        if (command.fetchedAt) continue; // fetched meanwhile through another replica
        Object.assign(command, { fetchedAt: this.clock.now(), updatedAt: this.clock.now() });
        await this.issuer.onReport(tx, command, { kind: 'fetched' });
        if (this.endedIn.get(tx)?.has(id)) {
          // Withdrawn before it went out (cancelled by the issuer, which wrote its end): the agent
          // never had it, so it is not recorded as fetched.
          withdrawn.add(id);
          continue;
        }
        // Written after the issuer heard of it, in the same transaction: a withdrawn command is written once, by its end.
        await this.commands.save(tx.em, command);
      }
      return withdrawn;
    });
  }

  /** An agent's commands, newest first: every upgrade, switchover and migration it was given, and how each ended. */
  async list(agentId: string, limit: number, offset: number): Promise<AgentCommandPageDto> {
    if (!(await this.agents.findById(agentId))) throw new NotFoundError('Agent', agentId);
    const [items, total] = await this.commands.listFor(agentId, limit, offset);
    return { items: items.map(toAgentCommandDto), total, limit, offset };
  }

  async reportProgress(agentId: string, commandId: string, report: ProgressReportDto): Promise<CommandStateDto> {
    return this.db.transaction(async (tx) => {
      const command = await this.lockForReport(tx, agentId, commandId);
      this.refuseIfEnded(command);
      const same =
        command.status === 'running' &&
        command.phase === report.phase &&
        command.percent === report.percent &&
        command.message === (report.message ?? null);
      if (same) return toState(command); // the same report twice changes nothing
      Object.assign(command, {
        status: 'running',
        phase: report.phase,
        percent: report.percent,
        message: report.message ?? null,
        updatedAt: this.clock.now(),
      });
      await this.commands.save(tx.em, command);
      await this.issuer.onReport(tx, command, { kind: 'progress', report });
      return toState(command);
    });
  }

  async reportComplete(agentId: string, commandId: string, report: CompleteReportDto): Promise<CommandStateDto> {
    const state = await this.db.transaction(async (tx) => {
      const command = await this.lockForReport(tx, agentId, commandId);
      if (ENDED_COMMAND_STATUSES.includes(command.status)) {
        if (command.status === report.status && command.resultVersion === (report.version ?? null))
          return toState(command); // a repeat
        this.refuseIfEnded(command);
      }
      await this.end(tx, command, report.status, { version: report.version, error: report.error, notes: report.notes });
      const outcome = await this.issuer.onReport(tx, command, { kind: 'complete', report });
      if (report.version && outcome === 'ignored') {
        const agent = await this.agents.findForUpdate(tx, agentId);
        if (agent && agent.version !== report.version) await this.updater.apply(tx, agent, { version: report.version });
      }
      return toState(command);
    });
    this.logger.log(`command ${commandId} of agent ${agentId} ended: ${state.status}`);
    return state;
  }

  /** Ends a command and publishes `command.status`, so every end is seen (a manual migration's too). */
  private async end(
    tx: Tx,
    command: AgentCommand,
    status: AgentCommand['status'],
    result: { version?: string; error?: string; notes?: string[] },
  ): Promise<void> {
    const now = this.clock.now();
    // A success is the whole of the work, whatever the agent last reported on the way (85% verifying).
    const percent = status === 'succeeded' ? 100 : command.percent;
    Object.assign(command, {
      status,
      percent,
      resultVersion: result.version ?? null,
      error: result.error ?? null,
      notes: result.notes?.length ? result.notes : null,
      endedAt: now,
      updatedAt: now,
    });
    await this.commands.save(tx.em, command);
    const ended = this.endedIn.get(tx);
    if (ended) ended.add(command.id);
    else this.endedIn.set(tx, new Set([command.id]));
    const data = commandStatusData(command);
    await this.events.append(tx, [
      {
        type: 'command.status',
        clusterId: command.clusterId,
        agentId: command.agentId,
        ...(data.upgradeId ? { upgradeId: data.upgradeId } : {}),
        data,
      },
    ]);
  }

  /** The agent's own command, locked after whatever its issuer locks (CommandIssuer.lockForReport). */
  private async lockForReport(tx: Tx, agentId: string, commandId: string): Promise<AgentCommand> {
    const unlocked = await this.commands.findById(commandId, tx.em);
    if (!unlocked) throw new NotFoundError('Command', commandId);
    if (unlocked.agentId !== agentId)
      throw new ForbiddenError(
        `Command ${commandId} belongs to another agent; an agent reports only on its own commands.`,
        'NOT_YOUR_COMMAND',
      );
    await this.issuer.lockForReport(tx, unlocked);
    // Without row locks (SQLite) this transaction is the only writer: the row read above is current.
    return tx.rowLock ? (await this.commands.findForUpdate(tx, commandId))! : unlocked;
  }

  private refuseIfEnded(command: AgentCommand): void {
    if (ENDED_COMMAND_STATUSES.includes(command.status)) {
      throw new ConflictError(
        'COMMAND_ENDED',
        `Command ${command.id} already ended (${command.status}); reports after its end are refused.`,
        { status: command.status },
      );
    }
  }
}

/** The upgrade and step a command carries out, as its payload names them (null for a migration). */
function commandOrigin(command: AgentCommand): { upgradeId: string | null; stepId: string | null } {
  const text = (v: unknown) => (typeof v === 'string' ? v : null);
  return { upgradeId: text(command.payload.upgradeId), stepId: text(command.payload.stepId) };
}

/** A `command.status` event's data: the command as it ended. */
function commandStatusData(command: AgentCommand): CommandStatusEventData {
  return {
    commandId: command.id,
    agentId: command.agentId,
    type: command.type,
    status: command.status,
    version: command.resultVersion,
    error: command.error,
    notes: command.notes ?? [],
    message: command.message,
    ...commandOrigin(command),
  };
}

export function toAgentCommandDto(command: AgentCommand): AgentCommandDto {
  return {
    id: command.id,
    agentId: command.agentId,
    type: command.type,
    status: command.status,
    phase: command.phase,
    percent: command.percent,
    message: command.message,
    resultVersion: command.resultVersion,
    error: command.error,
    notes: command.notes ?? [],
    ...commandOrigin(command),
    createdAt: command.createdAt.toISOString(),
    fetchedAt: command.fetchedAt?.toISOString() ?? null,
    endedAt: command.endedAt?.toISOString() ?? null,
  };
}

function toState(command: AgentCommand): CommandStateDto {
  return { id: command.id, type: command.type, status: command.status, phase: command.phase, percent: command.percent };
}
