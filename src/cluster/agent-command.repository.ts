import { Injectable } from '@nestjs/common';
import { EntityManager, In } from 'typeorm';
import { Database, Tx } from '../database/database';
import { AgentCommand } from './agent-command.entity';

const PENDING_SQL = `SELECT "id", "type", "payload", "fetchedAt" FROM "agent_commands" WHERE "agentId" = $1 AND "status" = 'pending' ORDER BY "createdAt", "id"`;

@Injectable()
export class AgentCommandRepository {
  constructor(private readonly db: Database) {}

  /**
   * The commands an agent has not reported on yet, oldest first (the agent/status index). Asked on
   * every heartbeat, so it is fixed SQL rather than the query builder.
   */
  async findPendingFor(
    agentId: string,
  ): Promise<Array<Pick<AgentCommand, 'id' | 'type' | 'payload'> & { fetched: boolean }>> {
    const rows = await this.db.hotRead<{
      id: string;
      type: AgentCommand['type'];
      payload: string;
      fetchedAt: string | null;
    }>(PENDING_SQL, [agentId]);
    return rows.map((r) => ({
      id: r.id,
      type: r.type,
      payload: JSON.parse(r.payload) as Record<string, unknown>,
      fetched: r.fetchedAt !== null,
    }));
  }

  /** An agent's commands, newest first, a page at a time. */
  listFor(agentId: string, limit: number, offset: number): Promise<[AgentCommand[], number]> {
    return this.db.reader.findAndCount(AgentCommand, {
      where: { agentId },
      order: { createdAt: 'DESC', id: 'DESC' },
      take: limit,
      skip: offset,
    });
  }

  findById(id: string, em: EntityManager = this.db.reader): Promise<AgentCommand | null> {
    return this.db.rows(AgentCommand).findById(em, id);
  }

  findForUpdate(tx: Tx, id: string): Promise<AgentCommand | null> {
    return this.db.rows(AgentCommand).findById(tx.em, id, { lock: tx.rowLock !== undefined });
  }

  findOpenFor(em: EntityManager, agentId: string): Promise<AgentCommand[]> {
    return em.findBy(AgentCommand, { agentId, status: In(['pending', 'running']) });
  }

  async insert(em: EntityManager, command: AgentCommand): Promise<void> {
    await this.db.rows(AgentCommand).insert(em, [command]);
  }

  /** Writes what the life of a command changes (the rest is fixed when it is queued), with one fixed UPDATE. */
  async save(em: EntityManager, command: AgentCommand): Promise<void> {
    const { status, phase, percent, message, resultVersion, error, notes, fetchedAt, updatedAt, endedAt } = command;
    await this.db.rows(AgentCommand).update(em, command.id, {
      status,
      phase,
      percent,
      message,
      resultVersion,
      error,
      notes,
      fetchedAt,
      updatedAt,
      endedAt,
    });
  }
}
