import { Injectable, Logger } from '@nestjs/common';
import { isUUID } from 'class-validator';
import { Brackets } from 'typeorm';
import { Clock } from '../common/clock';
import { toDbTimestamp } from '../common/columns';
import { Database, Tx } from '../database/database';
import { AuditOutcome, AuditRecord } from './audit-record.entity';
import type { AuditAction, AuditedRoute, AuditTarget } from './audit.decorators';
import { AuditPageDto, AuditQuery, toAuditRecordDto } from './dto/audit.dto';
import { Actor, Origin } from './origin';

/** What a service says of the change it made. */
export interface AuditChange {
  action: AuditAction;
  target: AuditTarget;
  targetId: string | null;
  clusterId: string | null;
  /** One sentence of what changed; never a secret, a key or a request body. */
  summary: string;
}

/** A refused or failed call, as the exception filter knows it. */
export interface AuditRefusal {
  route: AuditedRoute;
  origin: Origin;
  params: Record<string, unknown>;
  status: number;
  code: string;
  message: string;
}

const SUMMARY_MAX = 500;
const DEFAULT_PAGE = 100;

/**
 * The audit trail (docs/audit.md): one append-only record per state-changing call, written by the
 * service in the transaction of the change (so a change and its record commit or vanish together),
 * and one per refused call, written by the exception filter in a transaction of its own.
 */
@Injectable()
export class AuditTrail {
  private readonly logger = new Logger(AuditTrail.name);
  /** Who each open transaction acts for: the event log names the person on the events it writes. */
  private readonly origins = new WeakMap<Tx, Origin>();

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
  ) {}

  /** Records a change in its transaction. */
  async record(tx: Tx, origin: Origin, change: AuditChange): Promise<void> {
    this.origins.set(tx, origin);
    await tx.em.insert(AuditRecord, auditRecordOf(origin, change, this.clock.now()));
  }

  /** The name of the person (API token) this transaction acts for; null for Lockstep itself and agents. */
  personOf(tx: Tx): string | null {
    const actor = this.origins.get(tx)?.actor;
    return actor?.kind === 'user' ? actor.name : null;
  }

  /** Records a refused (4xx) or failed (5xx) call; never throws: the caller's answer goes out regardless. */
  async recordRefusal(refusal: AuditRefusal): Promise<void> {
    const { route, origin, params, status, code, message } = refusal;
    // Ids only as route parameters hold them when well formed: a refused call's path is the caller's text.
    const param = route.param ? uuidOrNull(params[route.param]) : null;
    const clusterId = uuidOrNull(params.clusterId);
    try {
      await this.db.transaction((tx) =>
        tx.em.insert(
          AuditRecord,
          auditRecordOf(
            origin,
            {
              action: route.action,
              target: route.target,
              targetId: param,
              clusterId: route.target === 'cluster' ? param : clusterId,
              summary: `${code}: ${message}`,
            },
            this.clock.now(),
            { outcome: status >= 500 ? 'failed' : 'refused', status, code },
          ),
        ),
      );
    } catch (error) {
      this.logger.error(`could not record the refusal of ${route.action}: ${(error as Error).message}`);
    }
  }

  async list(query: AuditQuery): Promise<AuditPageDto> {
    const limit = query.limit ?? DEFAULT_PAGE;
    const q = this.db.reader.createQueryBuilder(AuditRecord, 'a');
    if (query.actor)
      q.andWhere(
        new Brackets((or) =>
          or
            .where('a.actorTokenId = :actor', { actor: query.actor })
            .orWhere('a.actorName = :actor')
            .orWhere('a.actorAgentId = :actor'),
        ),
      );
    if (query.clusterId) q.andWhere('a.clusterId = :clusterId', { clusterId: query.clusterId.toLowerCase() });
    if (query.action?.includes('.')) q.andWhere('a.action = :action', { action: query.action });
    else if (query.action) q.andWhere('a.action LIKE :prefix', { prefix: `${query.action}.%` });
    if (query.targetType) q.andWhere('a.targetType = :targetType', { targetType: query.targetType });
    if (query.targetId) q.andWhere('a.targetId = :targetId', { targetId: query.targetId });
    if (query.requestId) q.andWhere('a.requestId = :requestId', { requestId: query.requestId });
    if (query.outcome) q.andWhere('a.outcome = :outcome', { outcome: query.outcome });
    if (query.from) q.andWhere('a.createdAt >= :from', { from: toDbTimestamp(new Date(query.from)) });
    if (query.to) q.andWhere('a.createdAt < :to', { to: toDbTimestamp(new Date(query.to)) });
    if (query.beforeId) q.andWhere('a.id < :beforeId', { beforeId: query.beforeId });
    const rows = await q
      .orderBy('a.id', 'DESC')
      .limit(limit + 1)
      .getMany();
    const items = rows.slice(0, limit).map(toAuditRecordDto);
    return { items, nextBeforeId: rows.length > limit ? items[items.length - 1].id : null };
  }

  /** Deletes records older than the cutoff; answers how many. */
  async deleteOlderThan(cutoff: Date): Promise<number> {
    const result = await this.db.transaction((tx) =>
      tx.em
        .createQueryBuilder()
        .delete()
        .from(AuditRecord)
        .where('createdAt < :cutoff', { cutoff: toDbTimestamp(cutoff) })
        .execute(),
    );
    return result.affected ?? 0;
  }
}

/** The row of one record; also written by the admin CLI, which runs without the server. */
export function auditRecordOf(
  origin: Origin,
  change: AuditChange,
  now: Date,
  result: { outcome: AuditOutcome; status: number | null; code: string | null } = {
    outcome: 'ok',
    status: null,
    code: null,
  },
): Omit<AuditRecord, 'id'> {
  const { actor } = origin;
  return {
    createdAt: now,
    actorKind: actor.kind,
    actorTokenId: tokenIdOf(actor),
    actorName: actor.kind === 'user' || actor.kind === 'system' ? actor.name : null,
    actorRole: actor.kind === 'user' ? actor.role : null,
    actorAgentId: actor.kind === 'agent' ? actor.agentId : null,
    action: change.action,
    targetType: change.target,
    targetId: change.targetId,
    clusterId: change.clusterId,
    requestId: origin.requestId,
    summary: change.summary.length > SUMMARY_MAX ? `${change.summary.slice(0, SUMMARY_MAX - 1)}…` : change.summary,
    ...result,
  };
}

/** As IdParam checks route ids: class-validator's isUUID. */
const uuidOrNull = (value: unknown): string | null =>
  typeof value === 'string' && isUUID(value, 'all') ? value.toLowerCase() : null;

const tokenIdOf = (actor: Actor): string | null =>
  actor.kind === 'user' ? actor.tokenId : actor.kind === 'agent' ? (actor.tokenId ?? null) : null;

const FIELD_MAX = 120;

/**
 * The fields a change set, for a summary: `defaultPolicy="backup-first", windows=[…]`. Only for
 * bodies that hold no secret (settings, names, flags); each value is cut at 120 characters.
 */
export function fieldsSummary(fields: object): string {
  return Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => {
      const text = JSON.stringify(value) ?? String(value);
      return `${key}=${text.length > FIELD_MAX ? `${text.slice(0, FIELD_MAX - 1)}…` : text}`;
    })
    .join(', ');
}
