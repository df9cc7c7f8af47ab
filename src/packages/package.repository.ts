import { Injectable } from '@nestjs/common';
import { EntityManager, FindOptionsWhere } from 'typeorm';
import { Database } from '../database/database';
import type { PackageKind } from './manifest';
import { Package, PackageStatus } from './package.entity';

@Injectable()
export class PackageRepository {
  constructor(private readonly db: Database) {}

  findById(id: string, em: EntityManager = this.db.reader): Promise<Package | null> {
    return em.findOneBy(Package, { id });
  }

  findBySha256(clusterId: string, sha256: string, em: EntityManager = this.db.reader): Promise<Package | null> {
    return em.findOneBy(Package, { clusterId, sha256 });
  }

  /** History, newest first. */
  list(
    clusterId: string,
    filter: { status?: PackageStatus; kind?: PackageKind },
    limit: number,
    offset: number,
  ): Promise<[Package[], number]> {
    // TypeORM 1.x refuses undefined in a where condition: add only the filters that were given.
    const where: FindOptionsWhere<Package> = { clusterId };
    if (filter.status) where.status = filter.status;
    if (filter.kind) where.kind = filter.kind;
    return this.db.reader.findAndCount(Package, {
      where,
      order: { uploadedAt: 'DESC', id: 'DESC' },
      take: limit,
      skip: offset,
    });
  }

  countInCluster(em: EntityManager, clusterId: string): Promise<number> {
    return em.countBy(Package, { clusterId });
  }

  /** Whether any package (of any cluster) still uses these bytes. */
  async sha256InUse(em: EntityManager, sha256: string): Promise<boolean> {
    return em.existsBy(Package, { sha256 });
  }

  async insert(em: EntityManager, pkg: Package): Promise<void> {
    await em.insert(Package, pkg);
  }

  async delete(em: EntityManager, id: string): Promise<void> {
    await em.delete(Package, { id });
  }
}
