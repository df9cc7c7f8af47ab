import { Injectable } from '@nestjs/common';
import { EntityManager, FindOptionsWhere, IsNull, LessThan, LessThanOrEqual, Raw } from 'typeorm';
import { Database, Tx, updateById } from '../database/database';
import { placeholders } from '../database/rows';
import { Agent } from './agent.entity';
import type { AgentRole, AgentState, VersionStatus } from './agent-state';
import type { AgentLabels } from './labels';

/** The columns a heartbeat compares against what the agent reports. */
export interface HeartbeatView {
  id: string;
  version: string | null;
  webappsVersion: string | null;
  busy: boolean;
  remoteUpgrade: boolean;
  online: boolean;
  hold: boolean;
  removalRequestedAt: string | null;
  facts: Agent['facts'];
  clusterId: string;
  /** The cluster's (clusters.signingRevision): the heartbeat sends the signing policy to an agent holding another. */
  signingRevision: number;
  /** Whether a command waits for it: only then are its commands read (most heartbeats have none). */
  hasPendingCommands: boolean;
}

/** Agents per liveness UPDATE on SQLite (two parameters each, far below SQLite's limit of 32,766). */
const LIVENESS_CHUNK = 500;

// The cluster's signing revision comes along by primary key, and whether a command waits through
// the agent/status index: one statement, where a second for the commands was the rule (bench/fleet).
const HEARTBEAT_VIEW_SQL = `SELECT a."id", a."version", a."webappsVersion", a."busy", a."remoteUpgrade", a."online", a."hold",
  a."removalRequestedAt", a."facts", a."clusterId", c."signingRevision",
  EXISTS (SELECT 1 FROM "agent_commands" ac WHERE ac."agentId" = a."id" AND ac."status" = 'pending') AS "hasPending"
  FROM "agents" a JOIN "clusters" c ON c."id" = a."clusterId" WHERE a."id" = $1`;

const VERSION_COUNTS_SQL =
  'SELECT "version", COUNT(*) AS "n" FROM "agents" WHERE "clusterId" = $1 AND "version" IS NOT NULL GROUP BY "version"';
// How many versions of what a package installs a cluster's agents run (those that reported one):
// more than one is a mixed cluster. Web apps: agents with none count as one more version.
const MIXED_VERSION_SQL = {
  full: 'SELECT COUNT(DISTINCT "version") AS "n" FROM "agents" WHERE "clusterId" = $1 AND "version" IS NOT NULL',
  webapps:
    'SELECT COUNT(DISTINCT COALESCE("webappsVersion", \'\')) AS "n" FROM "agents" WHERE "clusterId" = $1 AND "version" IS NOT NULL',
};
const OWN_VERSION_SQL = 'SELECT "version" FROM "agents" WHERE "id" = $1 AND "clusterId" = $2 AND "version" IS NOT NULL';

export interface AgentFilter {
  clusterId: string;
  state?: AgentState;
  versionStatus?: VersionStatus;
  role?: AgentRole;
  failoverGroup?: string;
  active?: boolean;
  /** Agents whose labels include every one of these pairs. */
  labels?: AgentLabels;
}

@Injectable()
export class AgentRepository {
  constructor(private readonly db: Database) {}

  findById(id: string, em: EntityManager = this.db.reader): Promise<Agent | null> {
    return em.findOneBy(Agent, { id });
  }

  /**
   * What a heartbeat needs to know of its agent, read with fixed SQL: heartbeats are the hottest
   * path, and TypeORM's query builder costs more than the query itself.
   */
  async findHeartbeatView(id: string): Promise<HeartbeatView | null> {
    const rows = await this.db.hotRead<Record<string, unknown>>(HEARTBEAT_VIEW_SQL, [id]);
    const row = rows[0];
    if (!row) return null;
    return {
      id: row.id as string,
      version: (row.version as string | null) ?? null,
      webappsVersion: (row.webappsVersion as string | null) ?? null,
      // SQLite answers 0/1, PostgreSQL true/false.
      busy: Boolean(row.busy),
      remoteUpgrade: Boolean(row.remoteUpgrade),
      online: Boolean(row.online),
      hold: Boolean(row.hold),
      removalRequestedAt: (row.removalRequestedAt as string | null) ?? null,
      facts: row.facts ? (JSON.parse(row.facts as string) as Agent['facts']) : null,
      clusterId: row.clusterId as string,
      signingRevision: Number(row.signingRevision),
      hasPendingCommands: Boolean(row.hasPending),
    };
  }

  /** Reads an agent about to be changed, locking its row on PostgreSQL until the transaction ends. */
  findForUpdate(tx: Tx, id: string): Promise<Agent | null> {
    return this.db.rows(Agent).findById(tx.em, id, { lock: tx.rowLock !== undefined });
  }

  /** Agents about to be changed, in id order (the order every writer locks them in), locked on PostgreSQL. */
  findManyForUpdate(tx: Tx, ids: string[]): Promise<Agent[]> {
    return this.db.rows(Agent).findByIds(tx.em, ids, { lock: tx.rowLock !== undefined });
  }

  /** The other members of these agents' failover pairs that are not among them (read, not locked). */
  async findPeersOf(em: EntityManager, agents: Agent[]): Promise<Agent[]> {
    const have = new Set(agents.map((a) => a.id));
    const byCluster = new Map<string, Set<string>>();
    for (const a of agents)
      if (a.failoverGroup) byCluster.set(a.clusterId, (byCluster.get(a.clusterId) ?? new Set()).add(a.failoverGroup));
    const peers: Agent[] = [];
    for (const [clusterId, groups] of byCluster) {
      const members = await this.db
        .rows(Agent)
        .find(em, `"clusterId" = $1 AND "failoverGroup" IN (${placeholders(2, groups.size)})`, [clusterId, ...groups]);
      peers.push(...members.filter((m) => !have.has(m.id)));
    }
    return peers;
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
    if (filter.labels && Object.keys(filter.labels).length) where.labels = this.hasLabels(filter.labels);
    const [items, total] = await this.db.reader.findAndCount(Agent, {
      where,
      order: { failoverGroup: 'ASC', role: 'ASC', name: 'ASC', id: 'ASC' },
      take: limit,
      skip: offset,
    });
    return { items, total };
  }

  /**
   * The agents whose labels (JSON text) include every pair, in SQL so the page and its total are
   * counted by the database: PostgreSQL reads the text as jsonb and asks for containment; SQLite
   * looks for each pair among json_each's rows.
   */
  private hasLabels(labels: AgentLabels): ReturnType<typeof Raw> {
    if (this.db.type === 'postgres') {
      return Raw((column) => `CAST(${column} AS jsonb) @> CAST(:labels AS jsonb)`, { labels: JSON.stringify(labels) });
    }
    const pairs = Object.entries(labels);
    const params = Object.fromEntries(
      pairs.flatMap(([key, value], i) => [
        [`labelKey${i}`, key],
        [`labelValue${i}`, value],
      ]),
    );
    return Raw(
      (column) =>
        pairs
          .map(
            (_, i) =>
              `EXISTS (SELECT 1 FROM json_each(${column}) AS "l" WHERE "l"."key" = :labelKey${i} AND "l"."value" = :labelValue${i} AND "l"."type" = 'text')`,
          )
          .join(' AND '),
      params,
    );
  }

  /**
   * Agents auto-upgrade may take now: opted in, online and idle, remote-upgradable, free, below a
   * target, last upgrade not failed, and not held back (or their back-off is over).
   */
  autoUpgradeCandidates(clusterId: string, now: Date, limit: number): Promise<Agent[]> {
    const base = {
      clusterId,
      autoUpgrade: true,
      state: 'idle' as const,
      remoteUpgrade: true,
      upgradeId: IsNull(),
      lastUpgradeFailed: false,
      versionStatus: 'outdated' as const,
    };
    return this.db.reader.find(Agent, {
      where: [
        { ...base, autoUpgradeBlocked: IsNull() },
        { ...base, autoUpgradeRetryAt: LessThanOrEqual(now) },
      ],
      order: { name: 'ASC' },
      take: limit,
    });
  }

  countInCluster(em: EntityManager, clusterId: string): Promise<number> {
    return em.countBy(Agent, { clusterId });
  }

  /** The distinct versions reported in a cluster (few), for its effective target; optionally leaving one agent out. */
  async distinctVersions(em: EntityManager, clusterId: string, exceptAgentId?: string): Promise<string[]> {
    // Asked whenever an agent's version moves in a cluster with no target (every end of its first
    // upgrade): counted per version on the (clusterId, version) index alone, then the one agent
    // left out by its own row, rather than reading every agent's row to compare ids.
    const counts: Array<{ version: string; n: string | number }> = await em.query(this.db.sql(VERSION_COUNTS_SQL), [
      clusterId,
    ]);
    const [own]: Array<{ version: string }> = exceptAgentId
      ? await em.query(this.db.sql(OWN_VERSION_SQL), [exceptAgentId, clusterId])
      : [];
    return counts.filter((r) => Number(r.n) > (own && r.version === own.version ? 1 : 0)).map((r) => r.version);
  }

  /** How many versions (of the core, or of the web apps) a cluster's agents run now. */
  async versionCount(em: EntityManager, clusterId: string, kind: 'full' | 'webapps'): Promise<number> {
    const [row]: Array<{ n: string | number }> = await em.query(this.db.sql(MIXED_VERSION_SQL[kind]), [clusterId]);
    return Number(row?.n ?? 0);
  }

  /**
   * A cluster's agents in the order they were registered: what callers show (a refusal's list of
   * agents failing a prerequisite) must not depend on the query plan, which an index can change.
   */
  findInCluster(em: EntityManager, clusterId: string): Promise<Agent[]> {
    return em.find(Agent, { where: { clusterId }, order: { createdAt: 'ASC', name: 'ASC' } });
  }

  /** Online agents whose last heartbeat is older than `cutoff` (uses the liveness index). */
  findSilentSince(cutoff: Date, limit: number): Promise<Agent[]> {
    return this.db.reader.find(Agent, {
      where: { online: true, lastSeenAt: LessThan(cutoff) },
      take: limit,
      select: { id: true },
    });
  }

  async insert(em: EntityManager, agent: Agent): Promise<void> {
    // A copy: on PostgreSQL TypeORM merges the columns with a database default back from RETURNING
    // as raw text, which would leave `labels` a JSON string on the agent in hand.
    await em.insert(Agent, Object.assign(new Agent(), agent));
  }

  async save(em: EntityManager, agent: Agent): Promise<void> {
    await updateById(em, Agent, agent);
  }

  /** Writes these columns of one agent, with fixed SQL (see Rows). */
  async update(em: EntityManager, id: string, changes: Partial<Agent>): Promise<void> {
    await this.db.rows(Agent).update(em, id, changes);
  }

  async delete(em: EntityManager, id: string): Promise<void> {
    await em.delete(Agent, { id });
  }

  /** Records heartbeats buffered in memory: the time seen and, where sent, the latest facts (fixed SQL: one row per agent per second). */
  async recordLiveness(
    em: EntityManager,
    entries: Array<{ agentId: string; seenAt: Date; facts?: Agent['facts'] }>,
  ): Promise<void> {
    const seenOnly = this.db.sql('UPDATE "agents" SET "lastSeenAt" = $1 WHERE "id" = $2');
    const withFacts = this.db.sql('UPDATE "agents" SET "lastSeenAt" = $1, "facts" = $2 WHERE "id" = $3');
    // In id order: replicas flushing overlapping batches then lock rows in the same order and
    // cannot deadlock (an agent's heartbeats may reach several replicas behind a load balancer).
    const ordered = [...entries].sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0));
    for (const entry of ordered)
      if (entry.facts)
        await em.query(withFacts, [entry.seenAt.toISOString(), JSON.stringify(entry.facts), entry.agentId]);
    const plain = ordered.filter((entry) => !entry.facts);
    if (this.db.type !== 'sqlite') {
      for (const entry of plain) await em.query(seenOnly, [entry.seenAt.toISOString(), entry.agentId]);
      return;
    }
    // One writer, no lock order to keep: a statement per LIVENESS_CHUNK agents, not one per agent.
    // The flush runs on the event loop, and 1,000 statements held every request back for tens of ms.
    for (let i = 0; i < plain.length; i += LIVENESS_CHUNK) {
      const chunk = plain.slice(i, i + LIVENESS_CHUNK);
      const values = chunk.map(() => '(?, ?)').join(', ');
      await em.query(
        `WITH "seen"("id", "at") AS (VALUES ${values}) UPDATE "agents" SET "lastSeenAt" = "seen"."at" FROM "seen" WHERE "agents"."id" = "seen"."id"`,
        chunk.flatMap((entry) => [entry.agentId, entry.seenAt.toISOString()]),
      );
    }
  }
}
