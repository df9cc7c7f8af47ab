import { Injectable } from '@nestjs/common';
import { EntityManager, FindOptionsWhere, LessThan } from 'typeorm';
import { Database, Tx } from '../database/database';
import { Agent } from './agent.entity';
import type { AgentRole, AgentState, VersionStatus } from './agent-state';

export interface AgentFilter {
  clusterId: string;
  state?: AgentState;
  versionStatus?: VersionStatus;
  role?: AgentRole;
  failoverGroup?: string;
  active?: boolean;
}

@Injectable()
export class AgentRepository {
  constructor(private readonly db: Database) {}

  findById(id: string, em: EntityManager = this.db.reader): Promise<Agent | null> {
    return em.findOneBy(Agent, { id });
  }

  /** Reads an agent about to be changed, locking its row on PostgreSQL until the transaction ends. */
  findForUpdate(tx: Tx, id: string): Promise<Agent | null> {
    return tx.em.findOne(Agent, { where: { id }, lock: tx.rowLock });
  }

  findByPairingKeyHash(tx: Tx, pairingKeyHash: string): Promise<Agent | null> {
    return tx.em.findOne(Agent, { where: { pairingKeyHash }, lock: tx.rowLock });
  }

  findByAddress(em: EntityManager, clusterId: string, address: string): Promise<Agent | null> {
    return em.findOneBy(Agent, { clusterId, address });
  }

  findByName(em: EntityManager, clusterId: string, name: string): Promise<Agent | null> {
    return em.findOneBy(Agent, { clusterId, name });
  }

  findGroupMembers(em: EntityManager, clusterId: string, failoverGroup: string): Promise<Agent[]> {
    return em.findBy(Agent, { clusterId, failoverGroup });
  }

  async list(filter: AgentFilter, limit: number, offset: number): Promise<{ items: Agent[]; total: number }> {
    const where: FindOptionsWhere<Agent> = { clusterId: filter.clusterId };
    if (filter.state) where.state = filter.state;
    if (filter.versionStatus) where.versionStatus = filter.versionStatus;
    if (filter.role) where.role = filter.role;
    if (filter.failoverGroup) where.failoverGroup = filter.failoverGroup;
    if (filter.active !== undefined) where.active = filter.active;
    const [items, total] = await this.db.reader.findAndCount(Agent, {
      where,
      order: { failoverGroup: 'ASC', role: 'ASC', name: 'ASC', id: 'ASC' },
      take: limit,
      skip: offset,
    });
    return { items, total };
  }

  countInCluster(em: EntityManager, clusterId: string): Promise<number> {
    return em.countBy(Agent, { clusterId });
  }

  /** The distinct versions reported in a cluster (few), for its effective target. */
  async distinctVersions(em: EntityManager, clusterId: string): Promise<string[]> {
    const rows = await em
      .createQueryBuilder(Agent, 'a')
      .select('DISTINCT a.version', 'version')
      .where('a.clusterId = :clusterId AND a.version IS NOT NULL', { clusterId })
      .getRawMany<{ version: string }>();
    return rows.map((r) => r.version);
  }

  findInCluster(em: EntityManager, clusterId: string): Promise<Agent[]> {
    return em.findBy(Agent, { clusterId });
  }

  /** Online agents whose last heartbeat is older than `cutoff` (uses the liveness index). */
  findSilentSince(cutoff: Date, limit: number): Promise<Agent[]> {
    return this.db.reader.find(Agent, { where: { online: true, lastSeenAt: LessThan(cutoff) }, take: limit, select: { id: true } });
  }

  async insert(em: EntityManager, agent: Agent): Promise<void> {
    await em.insert(Agent, agent);
  }

  async save(em: EntityManager, agent: Agent): Promise<void> {
    await em.save(Agent, agent);
  }

  async delete(em: EntityManager, id: string): Promise<void> {
    await em.delete(Agent, { id });
  }

  /** Records heartbeats buffered in memory: the time seen and, where sent, the latest facts. */
  async recordLiveness(em: EntityManager, entries: Array<{ agentId: string; seenAt: Date; facts?: Agent['facts'] }>): Promise<void> {
    for (const entry of entries) {
      await em
        .createQueryBuilder()
        .update(Agent)
        .set(entry.facts ? { lastSeenAt: entry.seenAt, facts: entry.facts } : { lastSeenAt: entry.seenAt })
        .where('id = :id', { id: entry.agentId })
        .execute();
    }
  }
}
