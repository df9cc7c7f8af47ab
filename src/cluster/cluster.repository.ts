import { Injectable } from '@nestjs/common';
import { EntityManager, IsNull, Not } from 'typeorm';
import { Database } from '../database/database';
import { Agent } from './agent.entity';
import { Cluster } from './cluster.entity';
import type { ClusterCounts } from './dto/cluster.dto';

@Injectable()
export class ClusterRepository {
  constructor(private readonly db: Database) {}

  findById(id: string, em: EntityManager = this.db.reader): Promise<Cluster | null> {
    return this.db.rows(Cluster).findById(em, id);
  }

  /** The cluster, its row locked on PostgreSQL until the transaction ends (a change of its signing policy). */
  findForUpdate(em: EntityManager, id: string, lock: boolean): Promise<Cluster | null> {
    return this.db.rows(Cluster).findById(em, id, { lock });
  }

  /** A change of the cluster's signing keys or policy: agents holding an older revision are sent the new one. */
  async bumpSigningRevision(em: EntityManager, id: string): Promise<void> {
    await em.query(this.db.sql('UPDATE "clusters" SET "signingRevision" = "signingRevision" + 1 WHERE "id" = $1'), [
      id,
    ]);
  }

  /** Turns the signature requirement on or off, a change of the signing policy like a key's. */
  async setSigningRequirement(em: EntityManager, id: string, required: boolean): Promise<void> {
    await em.query(
      this.db.sql(
        'UPDATE "clusters" SET "requireSignedPackages" = $1, "signingRevision" = "signingRevision" + 1 WHERE "id" = $2',
      ),
      [this.db.type === 'sqlite' ? Number(required) : required, id],
    );
  }

  findByName(name: string, em: EntityManager = this.db.reader): Promise<Cluster | null> {
    return em.findOneBy(Cluster, { name });
  }

  listAll(): Promise<Cluster[]> {
    return this.db.reader.find(Cluster, { order: { name: 'ASC' } });
  }

  listWithTarget(): Promise<Cluster[]> {
    return this.db.reader.find(Cluster, {
      where: [{ targetPackageId: Not(IsNull()) }, { webappsTargetPackageId: Not(IsNull()) }],
      order: { name: 'ASC' },
    });
  }

  async insert(em: EntityManager, cluster: Cluster): Promise<void> {
    await em.insert(Cluster, cluster);
  }

  async save(em: EntityManager, cluster: Cluster): Promise<void> {
    await em.save(Cluster, cluster);
  }

  async delete(em: EntityManager, id: string): Promise<void> {
    await em.delete(Cluster, { id });
  }

  /** Counts by version, web-apps version, state and version status, for every cluster asked for, in four grouped queries. */
  async countsFor(clusterIds: string[]): Promise<Map<string, ClusterCounts>> {
    const result = new Map<string, ClusterCounts>(
      clusterIds.map((id) => [
        id,
        { versions: {}, webappsVersions: {}, states: {}, versionStatuses: {}, agentCount: 0 },
      ]),
    );
    if (clusterIds.length === 0) return result;
    const grouped = (column: 'version' | 'webappsVersion' | 'state' | 'versionStatus') =>
      this.db.reader
        .createQueryBuilder(Agent, 'a')
        .select('a.clusterId', 'clusterId')
        .addSelect(`a.${column}`, 'value')
        .addSelect('COUNT(*)', 'n')
        .where('a.clusterId IN (:...clusterIds)', { clusterIds })
        .groupBy('a.clusterId')
        .addGroupBy(`a.${column}`)
        .getRawMany<{ clusterId: string; value: string | null; n: string | number }>();
    const [versions, webapps, states, statuses] = await Promise.all([
      grouped('version'),
      grouped('webappsVersion'),
      grouped('state'),
      grouped('versionStatus'),
    ]);
    for (const row of versions) {
      const counts = result.get(row.clusterId)!;
      counts.agentCount += Number(row.n);
      if (row.value) counts.versions[row.value] = Number(row.n);
    }
    for (const row of webapps) if (row.value) result.get(row.clusterId)!.webappsVersions[row.value] = Number(row.n);
    for (const row of states)
      result.get(row.clusterId)!.states[row.value as keyof ClusterCounts['states']] = Number(row.n);
    for (const row of statuses)
      result.get(row.clusterId)!.versionStatuses[row.value as keyof ClusterCounts['versionStatuses']] = Number(row.n);
    return result;
  }
}
