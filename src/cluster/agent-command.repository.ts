import { Injectable } from '@nestjs/common';
import { EntityManager, In } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm';
import { Database, Tx } from '../database/database';
import { AgentCommand } from './agent-command.entity';

@Injectable()
export class AgentCommandRepository {
  constructor(private readonly db: Database) {}

  /** The commands an agent has not reported on yet, oldest first (uses the agent/status index). */
  findPendingFor(agentId: string): Promise<AgentCommand[]> {
    return this.db.reader.find(AgentCommand, { where: { agentId, status: 'pending' }, order: { createdAt: 'ASC', id: 'ASC' } });
  }

  findById(id: string, em: EntityManager = this.db.reader): Promise<AgentCommand | null> {
    return em.findOneBy(AgentCommand, { id });
  }

  findForUpdate(tx: Tx, id: string): Promise<AgentCommand | null> {
    return tx.em.findOne(AgentCommand, { where: { id }, lock: tx.rowLock });
  }

  findOpenFor(em: EntityManager, agentId: string): Promise<AgentCommand[]> {
    return em.findBy(AgentCommand, { agentId, status: In(['pending', 'running']) });
  }

  async insert(em: EntityManager, command: AgentCommand): Promise<void> {
    // The JSON payload column defeats TypeORM's deep-partial typing; the entity is complete.
    await em.insert(AgentCommand, command as QueryDeepPartialEntity<AgentCommand>);
  }

  async save(em: EntityManager, command: AgentCommand): Promise<void> {
    await em.save(AgentCommand, command);
  }
}
