import { AuditTrail, fieldsSummary } from '../audit/audit-trail.service';
import type { Origin } from '../audit/origin';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import { Clock } from '../common/clock';
import { isUniqueViolation } from '../common/db-errors';
import { BadInputError, ConflictError, NotFoundError } from '../common/errors';
import { Database, Tx } from '../database/database';
import { normalizeWindows } from '../policies/maintenance-windows';
import {
  DEFAULT_UPGRADE_OPTIONS,
  resolveOptions,
  rollbackWithoutBackup,
  rollbackWithoutBackupProblem,
  type UpgradeOptions,
} from '../policies/upgrade-options';
import { AgentRepository } from './agent.repository';
import type { ComponentKind } from './agent-state';
import { AgentUpdater } from './agent-updater';
import { Cluster, type ClusterTargets } from './cluster.entity';
import { ClusterRepository } from './cluster.repository';
import { ClusterDto, CreateClusterDto, toClusterDto, UpdateClusterDto } from './dto/cluster.dto';
import { SigningKey } from './signing-key.entity';
import { resolvePort } from '../common/ports';

/** 400 when these options would roll an upgrade back by itself with backups off (rollbackWithoutBackup). */
export function refuseRollbackWithoutBackup(options: UpgradeOptions, at: 'options' | 'defaultOptions'): void {
  const fields = rollbackWithoutBackup(options);
  if (fields.length === 0) return;
  const problem = rollbackWithoutBackupProblem(fields, at);
  throw new BadInputError(
    problem.message,
    problem.fields.map((field) => ({ field, problems: ['rollback needs backup: true'] })),
  );
}

const withRollbackChecked = (options: UpgradeOptions): UpgradeOptions => {
  refuseRollbackWithoutBackup(options, 'defaultOptions');
  return options;
};

/**
 * Port: what other modules still keep in a cluster (its packages, its upgrades), asked in the
 * transaction that would delete it. Declared here, bound by the module above that knows them
 * (UpgradesModule's providers), so cluster code never imports theirs; see docs/ARCHITECTURE.md, "Ports".
 */
export abstract class ClusterContents {
  /** Each kind of thing left in the cluster, counted in words ("2 packages"); empty when none. */
  abstract leftIn(tx: Tx, clusterId: string): Promise<string[]>;
}

@Injectable()
export class ClustersService implements OnModuleInit {
  private readonly logger = new Logger(ClustersService.name);
  private contents: ClusterContents;

  constructor(
    private readonly db: Database,
    private readonly clusters: ClusterRepository,
    private readonly agents: AgentRepository,
    private readonly clock: Clock,
    private readonly updater: AgentUpdater,
    private readonly moduleRef: ModuleRef,
    private readonly audit: AuditTrail,
  ) {}

  /** Resolved once every provider exists, not injected: its binder depends on this service (docs/ARCHITECTURE.md, "Ports"). */
  onModuleInit(): void {
    this.contents = resolvePort(this.moduleRef, ClusterContents, 'UpgradesModule');
  }

  async create(dto: CreateClusterDto, origin: Origin): Promise<ClusterDto> {
    // A new cluster has no signing key yet: register one, then turn the requirement on.
    if (dto.requireSignedPackages) throw this.noSigningKey(dto.name);
    const now = this.clock.now();
    const cluster = Object.assign(new Cluster(), {
      id: randomUUID(),
      name: dto.name,
      product: dto.product,
      targetVersion: null,
      targetPackageId: null,
      webappsTargetVersion: null,
      webappsTargetPackageId: null,
      defaultPolicy: dto.defaultPolicy ?? 'simultaneous',
      defaultOptions: withRollbackChecked(
        resolveOptions(DEFAULT_UPGRADE_OPTIONS, dto.defaultOptions as Partial<UpgradeOptions>),
      ),
      windows: normalizeWindows(dto.windows ?? []),
      requireSignedPackages: false,
      signingRevision: 0,
      createdAt: now,
      updatedAt: now,
    });
    try {
      await this.db.transaction(async (tx) => {
        if (await this.clusters.findByName(dto.name, tx.em)) throw this.nameTaken(dto.name);
        await this.clusters.insert(tx.em, cluster);
        await this.audit.record(tx, origin, {
          action: 'cluster.create',
          target: 'cluster',
          targetId: cluster.id,
          clusterId: cluster.id,
          summary: `created cluster "${cluster.name}" (${fieldsSummary(dto)})`,
        });
      });
    } catch (error) {
      throw isUniqueViolation(error) ? this.nameTaken(dto.name) : error;
    }
    this.logger.log(`created cluster ${cluster.id} (${cluster.name})`);
    return this.toDto(cluster);
  }

  async list(): Promise<ClusterDto[]> {
    const clusters = await this.clusters.listAll();
    const counts = await this.clusters.countsFor(clusters.map((c) => c.id));
    return clusters.map((c) => toClusterDto(c, counts.get(c.id)!));
  }

  async get(id: string): Promise<ClusterDto> {
    return this.toDto(await this.require(id));
  }

  /** Whether the cluster exists (an event stream's scope). */
  async exists(id: string): Promise<boolean> {
    return (await this.clusters.findById(id)) !== null;
  }

  /** The cluster, or a 404 naming it. Other modules use this to resolve a cluster id. */
  async require(id: string, tx?: Tx): Promise<Cluster> {
    const cluster = await this.clusters.findById(id, tx?.em);
    if (!cluster) throw new NotFoundError('Cluster', id);
    return cluster;
  }

  /**
   * The version every agent of the cluster should run, and the package that set it (auto-upgrade
   * brings late agents up with it): the core target for a full package, which also clears the
   * web-apps target (a full package replaces any earlier web-apps upgrade), or the web-apps target
   * for a webapps package. Every agent's version status is measured again.
   */
  async setTarget(tx: Tx, clusterId: string, kind: ComponentKind, version: string, packageId: string): Promise<void> {
    const cluster = await this.require(clusterId, tx);
    const target =
      kind === 'full'
        ? {
            targetVersion: version,
            targetPackageId: packageId,
            webappsTargetVersion: null,
            webappsTargetPackageId: null,
          }
        : { webappsTargetVersion: version, webappsTargetPackageId: packageId };
    Object.assign(cluster, target, { updatedAt: this.clock.now() });
    await this.clusters.save(tx.em, cluster);
    await this.updater.refreshVersionStatuses(tx, clusterId);
    this.logger.log(`cluster ${clusterId} now targets ${kind === 'full' ? '' : 'web apps '}${version}`);
  }

  /**
   * Sets the cluster's targets back to what they were (a rollback undoing the upgrade that set
   * them), unless another package of that kind has set them since.
   */
  async restoreTargets(tx: Tx, clusterId: string, setBy: string, targets: ClusterTargets): Promise<void> {
    const cluster = await this.require(clusterId, tx);
    if (cluster.targetPackageId !== setBy && cluster.webappsTargetPackageId !== setBy) return;
    Object.assign(cluster, targets, { updatedAt: this.clock.now() });
    await this.clusters.save(tx.em, cluster);
    await this.updater.refreshVersionStatuses(tx, clusterId);
    this.logger.log(`cluster ${clusterId} targets ${targets.targetVersion ?? 'no version'} again (a rollback)`);
  }

  /** Clusters with a target version set by a package: where auto-upgrade looks. */
  withTarget(): Promise<Cluster[]> {
    return this.clusters.listWithTarget();
  }

  async update(id: string, dto: UpdateClusterDto, origin: Origin): Promise<ClusterDto> {
    const cluster = await this.db.transaction(async (tx) => {
      const found = await this.require(id, tx);
      if (dto.defaultPolicy) found.defaultPolicy = dto.defaultPolicy;
      if (dto.defaultOptions)
        found.defaultOptions = withRollbackChecked(resolveOptions(found.defaultOptions, dto.defaultOptions));
      if (dto.windows !== undefined) found.windows = normalizeWindows(dto.windows ?? []);
      if (dto.requireSignedPackages !== undefined && dto.requireSignedPackages !== Boolean(found.requireSignedPackages))
        await this.setRequireSignedPackages(tx, found, dto.requireSignedPackages);
      found.updatedAt = this.clock.now();
      await this.clusters.save(tx.em, found);
      await this.audit.record(tx, origin, {
        action: 'cluster.update',
        target: 'cluster',
        targetId: id,
        clusterId: id,
        summary: `changed cluster "${found.name}": ${fieldsSummary(dto) || 'nothing'}`,
      });
      return found;
    });
    return this.toDto(cluster);
  }

  async delete(id: string, origin: Origin): Promise<void> {
    await this.db.transaction(async (tx) => {
      const cluster = await this.require(id, tx);
      const left: string[] = [];
      const agentCount = await this.agents.countInCluster(tx.em, id);
      if (agentCount > 0) left.push(`${agentCount} agent${agentCount === 1 ? '' : 's'}`);
      left.push(...(await this.contents.leftIn(tx, id)));
      if (left.length > 0) {
        throw new ConflictError(
          'CLUSTER_NOT_EMPTY',
          `Cluster ${cluster.name} still has ${left.join(' and ')}; remove them before deleting the cluster.`,
          { left },
        );
      }
      await tx.em.delete(SigningKey, { clusterId: id });
      await this.clusters.delete(tx.em, id);
      await this.audit.record(tx, origin, {
        action: 'cluster.delete',
        target: 'cluster',
        targetId: id,
        clusterId: id,
        summary: `deleted cluster "${cluster.name}"`,
      });
    });
    this.logger.log(`deleted cluster ${id}`);
  }

  /**
   * Turns the signature requirement on or off: on needs a signing key, counted under the cluster's
   * row lock (which deleting a key takes too). Agents get the new policy with their next heartbeat.
   */
  private async setRequireSignedPackages(tx: Tx, cluster: Cluster, required: boolean): Promise<void> {
    const locked = await this.clusters.findForUpdate(tx.em, cluster.id, tx.rowLock !== undefined);
    if (required && (await tx.em.countBy(SigningKey, { clusterId: cluster.id })) === 0)
      throw this.noSigningKey(cluster.name, cluster.id);
    await this.clusters.setSigningRequirement(tx.em, cluster.id, required);
    // For the answer: from the locked row, which a key registered since `cluster` was read bumped too.
    cluster.requireSignedPackages = required;
    cluster.signingRevision = Number(locked?.signingRevision ?? cluster.signingRevision) + 1;
  }

  private noSigningKey(name: string, id?: string): ConflictError {
    return new ConflictError(
      'NO_SIGNING_KEY',
      `Cluster ${name} has no signing key, so no package could be accepted: register one first (POST /api/v1/clusters/${id ?? '{id}'}/signing-keys), then set requireSignedPackages.`,
      { field: 'requireSignedPackages' },
    );
  }

  private async toDto(cluster: Cluster): Promise<ClusterDto> {
    const counts = await this.clusters.countsFor([cluster.id]);
    return toClusterDto(cluster, counts.get(cluster.id)!);
  }

  private nameTaken(name: string): ConflictError {
    return new ConflictError('CLUSTER_NAME_TAKEN', `A cluster named "${name}" already exists; choose another name.`);
  }
}
