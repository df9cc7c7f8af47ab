import { Injectable } from '@nestjs/common';
import { Database } from '../database/database';
import { EventType, ProgressEvent } from './progress-event.entity';

/** Which events a stream carries: one cluster's, or one upgrade's. */
export type EventScope = { kind: 'cluster'; id: string } | { kind: 'upgrade'; id: string };

export const matchesScope = (event: ProgressEvent, scope: EventScope): boolean =>
  scope.kind === 'cluster' ? event.clusterId === scope.id : event.upgradeId === scope.id;

@Injectable()
export class ProgressEventRepository {
  constructor(private readonly db: Database) {}

  async maxId(): Promise<number> {
    const row = await this.db.reader
      .createQueryBuilder(ProgressEvent, 'e')
      .select('MAX(e.id)', 'max')
      .getRawOne<{ max: string | number | null }>();
    return Number(row?.max ?? 0);
  }

  /** The oldest id still retained, or null when the log is empty. */
  async minId(): Promise<number | null> {
    const row = await this.db.reader
      .createQueryBuilder(ProgressEvent, 'e')
      .select('MIN(e.id)', 'min')
      .getRawOne<{ min: string | number | null }>();
    return row?.min == null ? null : Number(row.min);
  }

  /** Every event after `afterId`, oldest first. */
  after(afterId: number, limit: number): Promise<ProgressEvent[]> {
    return this.db.reader
      .createQueryBuilder(ProgressEvent, 'e')
      .where('e.id > :afterId', { afterId })
      .orderBy('e.id', 'ASC')
      .limit(limit)
      .getMany();
  }

  /** A stream's events in (afterId, upToId], oldest first; uses the (clusterId, id) and (upgradeId, id) indexes. */
  inScope(scope: EventScope, afterId: number, upToId: number, limit: number): Promise<ProgressEvent[]> {
    const column = scope.kind === 'cluster' ? 'e.clusterId' : 'e.upgradeId';
    return this.db.reader
      .createQueryBuilder(ProgressEvent, 'e')
      .where(`${column} = :id AND e.id > :afterId AND e.id <= :upToId`, { id: scope.id, afterId, upToId })
      .orderBy('e.id', 'ASC')
      .limit(limit)
      .getMany();
  }

  /** A stream's newest event of one type with an id up to `upToId`, or null (none, or no longer retained). */
  newestOfType(scope: EventScope, type: EventType, upToId: number): Promise<ProgressEvent | null> {
    const column = scope.kind === 'cluster' ? 'e.clusterId' : 'e.upgradeId';
    return this.db.reader
      .createQueryBuilder(ProgressEvent, 'e')
      .where(`${column} = :id AND e.type = :type AND e.id <= :upToId`, { id: scope.id, type, upToId })
      .orderBy('e.id', 'DESC')
      .limit(1)
      .getOne();
  }

  async deleteOlderThan(cutoff: Date): Promise<number> {
    return this.db.transaction(async (tx) => {
      const result = await tx.em
        .createQueryBuilder()
        .delete()
        .from(ProgressEvent)
        .where('createdAt < :cutoff', { cutoff: cutoff.toISOString() })
        .execute();
      return result.affected ?? 0;
    });
  }
}
