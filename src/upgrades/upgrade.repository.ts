import { Injectable } from '@nestjs/common';
import { Brackets, EntityManager, In } from 'typeorm';
import { toDbTimestamp } from '../common/columns';
import { Database, Tx } from '../database/database';
import { placeholders } from '../database/rows';
import { AGENT_SAMPLES } from './window-rules';
import { Upgrade, UpgradeStatus } from './upgrade.entity';
import { UpgradeStep } from './upgrade-step.entity';

interface DurationRow {
  id: string;
  agentId: string;
  kind: UpgradeStep['kind'];
  startedAt: string;
  endedAt: string;
}

/**
 * The latest AGENT_SAMPLES steps that succeeded of each of these agents, per kind group (upgrades with
 * packages of $1's kind; takeovers): on the (agentId, status) index, whatever the cluster's size.
 */
const AGENT_DURATIONS_SQL = (agents: number) =>
  `SELECT "id", "agentId", "kind", "startedAt", "endedAt" FROM (
    SELECT s."id", s."agentId", s."kind", s."startedAt", s."endedAt",
      ROW_NUMBER() OVER (
        PARTITION BY s."agentId", CASE WHEN s."kind" = 'upgrade' THEN 'upgrade' ELSE 'takeover' END
        ORDER BY s."endedAt" DESC
      ) AS "n"
    FROM "upgrade_steps" s INNER JOIN "upgrades" u ON u."id" = s."upgradeId"
    WHERE s."agentId" IN (${placeholders(2, agents)}) AND s."status" = 'succeeded'
      AND s."startedAt" IS NOT NULL AND s."endedAt" IS NOT NULL
      AND ((s."kind" = 'upgrade' AND u."packageKind" = $1) OR s."kind" IN ('switchover', 'switchback'))
  ) "latest" WHERE "n" <= ${AGENT_SAMPLES}`;

const STATUS_SUMMARY_SQL =
  'SELECT "status", COUNT(*) AS "count", SUM("percent") AS "percent" FROM "upgrade_steps" WHERE "upgradeId" = $1 AND "round" = $2 GROUP BY "status"';

/** What running a step changes (saveSteps); the plan's columns are written once, at insert. */
const RUN_COLUMNS = [
  'status',
  'waitingFor',
  'waitingSince',
  'windowOpensAt',
  'phase',
  'phaseStartedAt',
  'percent',
  'attempts',
  'commandId',
  'note',
  'error',
  'message',
  'agentNotes',
  'backup',
  'startedAt',
  'endedAt',
  'updatedAt',
] as const satisfies readonly (keyof UpgradeStep)[];

@Injectable()
export class UpgradeRepository {
  constructor(private readonly db: Database) {}

  findById(id: string, em: EntityManager = this.db.reader): Promise<Upgrade | null> {
    return em.findOneBy(Upgrade, { id });
  }

  findForUpdate(tx: Tx, id: string): Promise<Upgrade | null> {
    return this.db.rows(Upgrade).findById(tx.em, id, { lock: tx.rowLock !== undefined });
  }

  list(
    clusterId: string,
    filter: { status?: UpgradeStatus; agentId?: string },
    limit: number,
    offset: number,
  ): Promise<[Upgrade[], number]> {
    const query = this.db.reader.createQueryBuilder(Upgrade, 'u').where('u.clusterId = :clusterId', { clusterId });
    if (filter.status) query.andWhere('u.status = :status', { status: filter.status });
    if (filter.agentId) {
      const agentId = filter.agentId;
      query.andWhere((qb) => {
        const steps = qb
          .subQuery()
          .select('1')
          .from(UpgradeStep, 's')
          .where('s.upgradeId = u.id')
          .andWhere(
            new Brackets((w) => w.where('s.agentId = :agentId', { agentId }).orWhere('s.fromAgentId = :agentId')),
          );
        return `EXISTS ${steps.getQuery()}`;
      });
    }
    return query.orderBy('u.createdAt', 'DESC').addOrderBy('u.id', 'DESC').take(limit).skip(offset).getManyAndCount();
  }

  /** The newest upgrade in which an upgrade step of this agent failed or rolled back. */
  lastFailedOf(em: EntityManager, agentId: string): Promise<Upgrade | null> {
    return em
      .createQueryBuilder(Upgrade, 'u')
      .innerJoin(
        UpgradeStep,
        's',
        "s.upgradeId = u.id AND s.agentId = :agentId AND s.kind = 'upgrade' AND s.status IN ('failed', 'rolled-back')",
        { agentId },
      )
      .orderBy('u.createdAt', 'DESC')
      .addOrderBy('u.id', 'DESC')
      .getOne();
  }

  /** The agent's upgrade step that started last, in any upgrade: its latest attempt at an upgrade. */
  lastStartedUpgradeStepOf(em: EntityManager, agentId: string): Promise<UpgradeStep | null> {
    return em
      .createQueryBuilder(UpgradeStep, 's')
      .where("s.agentId = :agentId AND s.kind = 'upgrade' AND s.startedAt IS NOT NULL", { agentId })
      .orderBy('s.startedAt', 'DESC')
      .addOrderBy('s.id', 'DESC')
      .getOne();
  }

  /**
   * Of these agents, those a later upgrade of the cluster (created after `createdAt`, and not rolled
   * back since) changed: an upgrade step of it that succeeded. By agent id, the id of that upgrade.
   */
  async changedSince(
    em: EntityManager,
    clusterId: string,
    createdAt: Date,
    agentIds: string[],
  ): Promise<Map<string, string>> {
    const changed = new Map<string, string>();
    for (let i = 0; i < agentIds.length; i += 500) {
      const rows = await em
        .createQueryBuilder(UpgradeStep, 's')
        .innerJoin(Upgrade, 'u', 'u.id = s.upgradeId')
        .select(['s.agentId AS "agentId"', 's.upgradeId AS "upgradeId"'])
        .where('u.clusterId = :clusterId AND u.createdAt > :createdAt', {
          clusterId,
          createdAt: toDbTimestamp(createdAt),
        })
        // A later upgrade that was rolled back left its agents as they were before it.
        .andWhere("s.kind = 'upgrade' AND s.status = 'succeeded' AND s.round = 0 AND u.status <> 'rolled-back'")
        .andWhere('s.agentId IN (:...ids)', { ids: agentIds.slice(i, i + 500) })
        .getRawMany<{ agentId: string; upgradeId: string }>();
      for (const row of rows) changed.set(row.agentId, row.upgradeId);
    }
    return changed;
  }

  /** Whether an upgrade of all the cluster's agents was created after `createdAt` (it decides the cluster's targets, not an earlier one). */
  async upgradeOfAllSince(em: EntityManager, clusterId: string, createdAt: Date): Promise<boolean> {
    const later = await em
      .createQueryBuilder(Upgrade, 'u')
      .select(['u.id', 'u.target'])
      .where('u.clusterId = :clusterId AND u.createdAt > :createdAt', {
        clusterId,
        createdAt: toDbTimestamp(createdAt),
      })
      .getMany();
    return later.some((u) => u.target.all === true);
  }

  /** Upgrades the executor must look at: running, paused, cancelled with steps still running, and scheduled ones that are due. */
  async idsToDrive(now: Date): Promise<string[]> {
    const rows = await this.db.reader
      .createQueryBuilder(Upgrade, 'u')
      .select('u.id', 'id')
      .where(
        new Brackets((w) =>
          w
            .where("u.status IN ('running', 'paused', 'rolling-back')")
            .orWhere("u.status = 'cancelled' AND u.finishedAt IS NULL")
            .orWhere("u.status = 'scheduled' AND u.scheduledAt <= :now", { now: toDbTimestamp(now) }),
        ),
      )
      .orderBy('u.createdAt', 'ASC')
      .getRawMany<{ id: string }>();
    return rows.map((r) => r.id);
  }

  /** How many upgrades of the cluster used this package (any status): part of their steps' ids (step-ids.ts). */
  usesOfPackage(em: EntityManager, clusterId: string, packageId: string): Promise<number> {
    return em.countBy(Upgrade, { clusterId, packageId });
  }

  countInCluster(em: EntityManager, clusterId: string): Promise<number> {
    return em.countBy(Upgrade, { clusterId });
  }

  async insert(em: EntityManager, upgrade: Upgrade, steps: UpgradeStep[]): Promise<void> {
    await em.insert(Upgrade, upgrade);
    // Chunks keep each INSERT under SQLite's limit of bound parameters. Copies, as in replaceSteps:
    // what TypeORM reads back after a multi-row insert it merges into the wrong objects, ids included,
    // and these objects are the steps the caller answers with.
    for (let i = 0; i < steps.length; i += 200)
      await em.insert(
        UpgradeStep,
        steps.slice(i, i + 200).map((s) => ({ ...s })),
      );
  }

  async save(em: EntityManager, upgrade: Upgrade): Promise<void> {
    const { id, ...columns } = upgrade;
    await this.db.rows(Upgrade).update(em, id, columns);
  }

  /** Writes the upgrade's percent alone: what a step's progress moves. */
  async savePercent(em: EntityManager, upgrade: Upgrade): Promise<void> {
    await this.db.rows(Upgrade).update(em, upgrade.id, { percent: upgrade.percent, updatedAt: upgrade.updatedAt });
  }

  stepsOf(em: EntityManager, upgradeId: string): Promise<UpgradeStep[]> {
    return this.db.rows(UpgradeStep).find(em, '"upgradeId" = $1', [upgradeId], { orderBy: '"ordinal"' });
  }

  stepsOfMany(upgradeIds: string[]): Promise<UpgradeStep[]> {
    if (upgradeIds.length === 0) return Promise.resolve([]);
    return this.db.reader.find(UpgradeStep, { where: { upgradeId: In(upgradeIds) }, order: { ordinal: 'ASC' } });
  }

  /** The steps of some agents in one upgrade: what their flags are derived from. */
  async stepsOfAgents(em: EntityManager, upgradeId: string, agentIds: string[]): Promise<UpgradeStep[]> {
    if (agentIds.length === 0) return [];
    // Sorted here: an ORDER BY ordinal in SQL makes SQLite walk every step of the upgrade in that order instead of using the (upgradeId, agentId) index.
    const steps = await this.db
      .rows(UpgradeStep)
      .find(em, `"upgradeId" = $1 AND "agentId" IN (${placeholders(2, agentIds.length)})`, [upgradeId, ...agentIds]);
    return steps.sort((a, b) => a.ordinal - b.ordinal);
  }

  /** Per status: how many steps and the sum of their percents, for the upgrade's percent without loading every step. */
  async statusSummary(
    em: EntityManager,
    upgradeId: string,
    round = 0,
  ): Promise<Array<{ status: UpgradeStep['status']; count: number; percent: number }>> {
    // Fixed SQL: asked on every progress report. PostgreSQL answers COUNT and SUM as text.
    const rows: Array<{ status: UpgradeStep['status']; count: string | number; percent: string | number }> =
      await em.query(this.db.sql(STATUS_SUMMARY_SQL), [upgradeId, round]);
    return rows.map((r) => ({ status: r.status, count: Number(r.count), percent: Number(r.percent) }));
  }

  /** A retry's new plan for some units: their old steps out, the new ones in (after the others, in plan order). */
  async replaceSteps(em: EntityManager, removed: UpgradeStep[], added: UpgradeStep[]): Promise<void> {
    for (let i = 0; i < removed.length; i += 200)
      await em.delete(UpgradeStep, { id: In(removed.slice(i, i + 200).map((s) => s.id)) });
    // Copies: after a multi-row insert TypeORM reads back columns with defaults (attempts, percent)
    // and merges them into the objects it was given, not always onto the right one.
    for (let i = 0; i < added.length; i += 200)
      await em.insert(
        UpgradeStep,
        added.slice(i, i + 200).map((s) => ({ ...s })),
      );
  }

  /**
   * Writes what running a step changes, with one fixed UPDATE per step; the plan's columns (agent,
   * unit, order, dependencies...) are written once, when the step is inserted.
   */
  async saveSteps(em: EntityManager, steps: UpgradeStep[]): Promise<void> {
    const rows = this.db.rows(UpgradeStep);
    for (const step of steps) {
      await rows.update(em, step.id, Object.fromEntries(RUN_COLUMNS.map((c) => [c, step[c]])));
    }
  }

  /**
   * How long the cluster's latest steps that succeeded took (start to end), newest first, at most
   * `limit`: upgrades with packages of `packageKind`, and takeovers. What maintenance windows predict
   * a unit's duration from (window-rules.ts).
   */
  async recentStepDurations(
    em: EntityManager,
    clusterId: string,
    packageKind: Upgrade['packageKind'],
    agentIds: string[] = [],
    limit = 2000,
  ): Promise<Array<{ agentId: string; kind: UpgradeStep['kind']; ms: number }>> {
    const rows = await em
      .createQueryBuilder(UpgradeStep, 's')
      .innerJoin(Upgrade, 'u', 'u.id = s.upgradeId')
      .select([
        's.id AS "id"',
        's.agentId AS "agentId"',
        's.kind AS "kind"',
        's.startedAt AS "startedAt"',
        's.endedAt AS "endedAt"',
      ])
      .where("u.clusterId = :clusterId AND s.status = 'succeeded'", { clusterId })
      .andWhere('s.startedAt IS NOT NULL AND s.endedAt IS NOT NULL')
      .andWhere(
        new Brackets((w) =>
          w
            .where("s.kind = 'upgrade' AND u.packageKind = :packageKind", { packageKind })
            .orWhere("s.kind IN ('switchover', 'switchback')"),
        ),
      )
      .orderBy('s.endedAt', 'DESC')
      .limit(limit)
      .getRawMany<DurationRow>();
    // Each agent's own latest ones too, however far back in the cluster's history they are.
    const seen = new Set(rows.map((r) => r.id));
    for (let i = 0; i < agentIds.length; i += 500) {
      const chunk = agentIds.slice(i, i + 500);
      const own: DurationRow[] = await em.query(this.db.sql(AGENT_DURATIONS_SQL(chunk.length)), [
        packageKind,
        ...chunk,
      ]);
      for (const row of own) if (!seen.has(row.id)) rows.push(row);
    }
    rows.sort((a, b) => (a.endedAt < b.endedAt ? 1 : a.endedAt > b.endedAt ? -1 : 0));
    return rows.map((r) => ({ agentId: r.agentId, kind: r.kind, ms: Date.parse(r.endedAt) - Date.parse(r.startedAt) }));
  }
}
