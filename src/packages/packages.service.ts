import { AuditTrail } from '../audit/audit-trail.service';
import type { Origin } from '../audit/origin';
import { HttpStatus, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AgentsService } from '../cluster/agents.service';
import { ClustersService } from '../cluster/clusters.service';
import { SigningKeysService } from '../cluster/signing-keys.service';
import { Clock } from '../common/clock';
import { isUniqueViolation } from '../common/db-errors';
import {
  BadInputError,
  ConflictError,
  DomainError,
  ForbiddenError,
  NotFoundError,
  UnprocessableError,
} from '../common/errors';
import { Database, Tx } from '../database/database';
import { EventLog } from '../progress/event-log.service';
import { decodeSignature, findSigningKey } from '../protocol/package-signing';
import {
  ListPackagesQuery,
  PackageDto,
  PackagePageDto,
  type PackageStatusEventData,
  toPackageDto,
  UPLOAD_MODES,
} from './dto/package.dto';
import { type PackageManifest, parseManifest } from './manifest';
import { Package } from './package.entity';
import { PackageRepository } from './package.repository';
import { PackageStore } from './package-store';
import { checkPrerequisites, PrerequisiteResult } from './prerequisites';
import type { ReceivedUpload } from './upload-receiver';

/** The upgrade fields an upload with mode=install may carry (those of POST /api/v1/clusters/{id}/upgrades). */
export const INSTALL_FIELDS = ['target', 'policy', 'options', 'scheduledAt'];

/** An upload's signature, checked: what the package row keeps (all null for an unsigned package). */
type CheckedSignature = Pick<Package, 'signature' | 'signingKeyId' | 'signingKeyName'>;
/** The upload's signature checked again in the transaction that stores it. */
type ConfirmSignature = (tx: Tx) => Promise<CheckedSignature>;

/**
 * What an upload with mode=install installs, given by the caller of `accept` (the upgrades module,
 * which this module does not know): `parse` checks the form's install fields before the archive
 * is stored; `install` creates what it installs (an upgrade, T) in the transaction that stores
 * the package, so a refusal leaves no package either.
 */
export interface UploadInstaller<R, T> {
  parse(fields: Record<string, string>): Promise<R>;
  install(tx: Tx, pkg: Package, request: R): Promise<T>;
}

/** An accepted upload: the package, whether it is new, and with mode=install what was installed with it. */
export interface AcceptedUpload<T> {
  created: boolean;
  pkg: PackageDto;
  installed?: T;
}

/** mode=install, ready to run in the transaction that has the package. */
type Install<T> = (tx: Tx, pkg: Package) => Promise<T>;

@Injectable()
export class PackagesService {
  private readonly logger = new Logger(PackagesService.name);

  constructor(
    private readonly db: Database,
    private readonly packages: PackageRepository,
    private readonly store: PackageStore,
    private readonly clusters: ClustersService,
    private readonly agents: AgentsService,
    private readonly events: EventLog,
    private readonly clock: Clock,
    private readonly signingKeys: SigningKeysService,
    private readonly audit: AuditTrail,
  ) {}

  /** What of this module a cluster still holds ("2 packages"), for ClusterContents; null when none. */
  async leftIn(tx: Tx, clusterId: string): Promise<string | null> {
    const n = await this.packages.countInCluster(tx.em, clusterId);
    return n > 0 ? `${n} package${n === 1 ? '' : 's'}` : null;
  }

  /** The cluster must exist before a byte of the upload is read. */
  async requireCluster(clusterId: string): Promise<void> {
    await this.clusters.require(clusterId);
  }

  /**
   * Accepts a received upload: checks the mode, the manifest, the product and the prerequisites,
   * then stores it under its hash. The same bytes again answer the existing package (created false).
   * Whatever is refused leaves no row and no file.
   */
  async accept<R, T>(
    clusterId: string,
    upload: ReceivedUpload,
    origin: Origin,
    installer: UploadInstaller<R, T>,
  ): Promise<AcceptedUpload<T>> {
    try {
      const install = await this.installFor(upload.fields, installer);
      const manifest = await this.checkManifest(clusterId, upload);
      const signed = await this.checkSignature(clusterId, upload);
      // Checked again in the transaction that stores, under the cluster's row lock: a key deleted or
      // the requirement turned on meanwhile refuses the upload there (docs/packages.md, "Signing").
      const confirm: ConfirmSignature = (tx) => this.checkSignature(clusterId, upload, tx);
      const existing = await this.packages.findBySha256(clusterId, upload.archive.sha256);
      if (existing) return { created: false, ...(await this.installExisting(existing, install, origin, confirm)) };
      const check = await this.checkUploadPrerequisites(clusterId, manifest);
      const pkg = Object.assign(this.newPackage(clusterId, upload, origin, manifest, check), signed);
      return await this.storeNew(pkg, upload, install, origin, confirm);
    } finally {
      await this.store.removeTemp(upload.tempPath);
    }
  }

  /** The form's mode and fields: refused unless known; with mode=install, the install to run. */
  private async installFor<R, T>(
    fields: Record<string, string>,
    installer: UploadInstaller<R, T>,
  ): Promise<Install<T> | undefined> {
    const mode = fields.mode;
    if (!UPLOAD_MODES.includes(mode as (typeof UPLOAD_MODES)[number])) {
      throw new BadInputError(`mode must be one of: ${UPLOAD_MODES.join(', ')}.`, [
        { field: 'mode', problems: [`mode must be one of: ${UPLOAD_MODES.join(', ')}`] },
      ]);
    }
    const known = mode === 'install' ? ['mode', 'signature', ...INSTALL_FIELDS] : ['mode', 'signature'];
    const unknown = Object.keys(fields).filter((f) => !known.includes(f));
    if (unknown.length > 0) {
      const hint = mode === 'install' ? '' : ` (${INSTALL_FIELDS.join(', ')} go with mode=install)`;
      throw new BadInputError(
        `Unknown form fields: ${unknown.join(', ')}; remove them${hint}.`,
        unknown.map((field) => ({ field, problems: [`${field} is not a known field; remove it`] })),
      );
    }
    if (mode !== 'install') return undefined;
    const request = await installer.parse(fields);
    return (tx, pkg) => installer.install(tx, pkg, request);
  }

  /** The archive's manifest, which must be for the cluster's product. */
  private async checkManifest(clusterId: string, upload: ReceivedUpload): Promise<PackageManifest> {
    const cluster = await this.clusters.require(clusterId);
    const manifest = parseManifest(upload.archive.manifestText, upload.archive.entries);
    if (manifest.product !== cluster.product) {
      throw new UnprocessableError(
        'PRODUCT_MISMATCH',
        `The package is for product ${manifest.product}, but cluster ${cluster.name} runs ${cluster.product}.`,
        { packageProduct: manifest.product, clusterProduct: cluster.product },
      );
    }
    return manifest;
  }

  /**
   * The form's `signature` against the cluster's signing keys, once the whole file was received and
   * hashed and before anything is stored (docs/packages.md, "Signing"). A signature must verify
   * wherever it is given; none at all is refused only where the cluster requires signed packages.
   */
  private async checkSignature(clusterId: string, upload: ReceivedUpload, tx?: Tx): Promise<CheckedSignature> {
    const cluster = tx ? await this.signingKeys.lockCluster(tx, clusterId) : await this.clusters.require(clusterId);
    const given = upload.fields.signature;
    if (given === undefined || given.trim() === '') {
      if (cluster.requireSignedPackages) {
        throw new UnprocessableError(
          'SIGNATURE_REQUIRED',
          `Cluster ${cluster.name} requires signed packages: send the package's Ed25519 signature (base64) in the form field "signature" (npm run package -- --sign-key key.pem writes it to <archive>.sig).`,
          { field: 'signature' },
        );
      }
      return { signature: null, signingKeyId: null, signingKeyName: null };
    }
    if (!decodeSignature(given)) {
      const problem = 'signature must be the base64 of a 64-byte Ed25519 signature (88 characters)';
      throw new BadInputError(
        `${problem}; nothing was stored.`,
        [{ field: 'signature', problems: [problem] }],
        'SIGNATURE_MALFORMED',
      );
    }
    const keys = await this.signingKeys.keysOf(tx?.em ?? this.db.reader, clusterId);
    const key = findSigningKey(upload.archive.sha256, given, keys);
    if (!key) {
      throw new UnprocessableError(
        'SIGNATURE_INVALID',
        `The signature in the form field "signature" is not valid for this package with any of the ${keys.length} signing key${keys.length === 1 ? '' : 's'} of cluster ${cluster.name}: either it was made with a key not registered in this cluster (register its public key: POST /api/v1/clusters/${clusterId}/signing-keys), or the package was changed after it was signed (sign the exact archive you upload). Nothing was stored.`,
        { field: 'signature', sha256: upload.archive.sha256, keys: keys.map((k) => k.name) },
      );
    }
    return { signature: given.trim(), signingKeyId: key.id, signingKeyName: key.name };
  }

  /**
   * The same bytes again with a signature that verifies now: the stored package takes it (it was
   * unsigned, or signed by a key since deleted). Answers whether it changed.
   */
  private async resign(tx: Tx, existing: Package, signed: CheckedSignature): Promise<boolean> {
    if (!signed.signature || signed.signature === existing.signature) return false;
    await tx.em.update(Package, { id: existing.id }, signed);
    Object.assign(existing, signed);
    return true;
  }

  /** The package's prerequisites against every agent of the cluster: a failure refuses the upload, unknowns are warnings. */
  private async checkUploadPrerequisites(clusterId: string, manifest: PackageManifest): Promise<PrerequisiteResult> {
    const check = await this.checkCluster(clusterId, {
      kind: manifest.kind,
      version: manifest.version,
      prerequisites: this.prerequisitesOf(manifest),
    });
    if (check.failures.length > 0) {
      const agents = new Set(check.failures.map((f) => f.agentName)).size;
      throw new UnprocessableError(
        'PREREQUISITES_UNMET',
        `${agents === 1 ? '1 agent of the cluster fails' : `${agents} agents of the cluster fail`} the package's prerequisites; see details for each check.`,
        check,
      );
    }
    return check;
  }

  private prerequisitesOf(manifest: PackageManifest): Package['prerequisites'] {
    return manifest.prerequisites ? { ...manifest.prerequisites } : {};
  }

  private newPackage(
    clusterId: string,
    upload: ReceivedUpload,
    origin: Origin,
    manifest: PackageManifest,
    check: PrerequisiteResult,
  ): Package {
    return Object.assign(new Package(), {
      id: randomUUID(),
      clusterId,
      product: manifest.product,
      version: manifest.version,
      kind: manifest.kind,
      status: 'available',
      sha256: upload.archive.sha256,
      size: upload.archive.size,
      prerequisites: this.prerequisitesOf(manifest),
      migration: manifest.migration ?? null,
      notes: manifest.notes ?? null,
      warnings: check.warnings,
      uploadedByTokenId: origin.actor.kind === 'user' ? origin.actor.tokenId : null,
      uploadedByName: origin.actor.kind === 'user' ? origin.actor.name : null,
      uploadedAt: this.clock.now(),
      reservedByUpgradeId: null,
      completedAt: null,
      usedByUpgradeId: null,
      signature: null,
      signingKeyId: null,
      signingKeyName: null,
    } satisfies Package);
  }

  /**
   * Stores the file, then the row (and with mode=install what it installs) in one transaction. The
   * same bytes uploaded at the same moment answer the package the other upload made; a refusal
   * removes the file unless another package has the same bytes.
   */
  private async storeNew<T>(
    pkg: Package,
    upload: ReceivedUpload,
    install: Install<T> | undefined,
    origin: Origin,
    confirm: ConfirmSignature,
  ): Promise<AcceptedUpload<T>> {
    const alreadyStored = await this.store.exists(pkg.sha256);
    await this.store.commit(upload.tempPath, pkg.sha256);
    let installed: T | undefined;
    try {
      // With mode=install the upgrade is made in the same transaction: refused, it leaves no package.
      installed = await this.db.transaction(async (tx) => {
        Object.assign(pkg, await confirm(tx));
        await this.packages.insert(tx.em, pkg);
        await this.recordUpload(tx, origin, pkg, 'new');
        await this.publish(tx, pkg);
        return install?.(tx, pkg);
      });
    } catch (error) {
      // The same bytes uploaded at the same moment: the other upload made the package.
      const raced = isUniqueViolation(error) ? await this.packages.findBySha256(pkg.clusterId, pkg.sha256) : null;
      if (raced) return { created: false, ...(await this.installExisting(raced, install, origin, confirm)) };
      if (!alreadyStored && !(await this.packages.sha256InUse(this.db.reader, pkg.sha256)))
        await this.store.removeStored(pkg.sha256);
      throw error;
    }
    this.logger.log(
      `stored package ${pkg.id} (${pkg.product} ${pkg.version}, ${pkg.size} bytes) in cluster ${pkg.clusterId}${installed ? ' and created its upgrade' : ''}`,
    );
    return {
      created: true,
      pkg: toPackageDto(installed ? await this.require(pkg.id) : pkg),
      ...(installed ? { installed } : {}),
    };
  }

  private async installExisting<T>(
    existing: Package,
    install: Install<T> | undefined,
    origin: Origin,
    confirm: ConfirmSignature,
  ): Promise<{ pkg: PackageDto; installed?: T }> {
    const installed = await this.db.transaction(async (tx) => {
      const resigned = await this.resign(tx, existing, await confirm(tx));
      await this.recordUpload(tx, origin, existing, resigned ? 'resigned' : 'again');
      return install?.(tx, await this.require(existing.id, tx));
    });
    return {
      pkg: toPackageDto(install ? await this.require(existing.id) : existing),
      ...(install ? { installed } : {}),
    };
  }

  /** The upload's audit record, in the transaction that stores the package (or installs the one stored before). */
  private recordUpload(tx: Tx, origin: Origin, pkg: Package, how: 'new' | 'again' | 'resigned'): Promise<void> {
    const what = `${pkg.product} ${pkg.version} (${pkg.kind}, sha256 ${pkg.sha256.slice(0, 12)}…, ${pkg.size} bytes)`;
    const signed = pkg.signingKeyName ? `, signed by key "${pkg.signingKeyName}"` : ', unsigned';
    return this.audit.record(tx, origin, {
      action: 'package.upload',
      target: 'package',
      targetId: pkg.id,
      clusterId: pkg.clusterId,
      summary:
        how === 'new'
          ? `uploaded package ${what}${signed}`
          : how === 'resigned'
            ? `uploaded package ${what} again: the same bytes as the package stored before, which takes the new signature by key "${pkg.signingKeyName}"`
            : `uploaded package ${what} again: the same bytes as the package stored before, nothing new stored`,
    });
  }

  /** The prerequisite check against a cluster's agents (or some of them): for upload, schedule and start. */
  async checkCluster(
    clusterId: string,
    pkg: { kind: Package['kind']; version: string; prerequisites: Package['prerequisites'] },
    agentIds?: string[],
  ): Promise<PrerequisiteResult> {
    const inventory = await this.agents.inventory(clusterId);
    const chosen = agentIds ? inventory.filter((a) => agentIds.includes(a.id)) : inventory;
    return checkPrerequisites(
      pkg,
      chosen.map((a) => ({ id: a.id, name: a.name, version: a.version, facts: a.facts })),
    );
  }

  async list(clusterId: string, query: ListPackagesQuery): Promise<PackagePageDto> {
    await this.clusters.require(clusterId);
    const limit = query.limit ?? 100;
    const offset = query.offset ?? 0;
    const [items, total] = await this.packages.list(
      clusterId,
      { status: query.status, kind: query.kind },
      limit,
      offset,
    );
    return { items: items.map(toPackageDto), total, limit, offset };
  }

  async get(id: string): Promise<PackageDto> {
    return toPackageDto(await this.require(id));
  }

  async require(id: string, tx?: Tx): Promise<Package> {
    const pkg = await this.packages.findById(id, tx?.em);
    if (!pkg) throw new NotFoundError('Package', id);
    return pkg;
  }

  /**
   * Life cycle, each move one conditional UPDATE so that of two upgrades racing for a package
   * exactly one wins: available -> reserved (a scheduled upgrade holds it).
   */
  async reserve(tx: Tx, packageId: string, upgradeId: string): Promise<void> {
    const moved = await this.move(
      tx,
      packageId,
      { status: 'reserved', reservedByUpgradeId: upgradeId },
      "status = 'available'",
      {},
    );
    if (!moved) await this.refuseUse(tx, packageId);
  }

  /** available, or reserved by this upgrade -> completed (the upgrade started; kept as history). */
  async complete(tx: Tx, packageId: string, upgradeId: string): Promise<void> {
    const moved = await this.move(
      tx,
      packageId,
      { status: 'completed', completedAt: this.clock.now(), usedByUpgradeId: upgradeId, reservedByUpgradeId: null },
      "(status = 'available' OR (status = 'reserved' AND reservedByUpgradeId = :upgradeId))",
      { upgradeId },
    );
    if (!moved) await this.refuseUse(tx, packageId);
  }

  /** reserved by this upgrade -> available (a scheduled upgrade was cancelled). */
  async release(tx: Tx, packageId: string, upgradeId: string): Promise<void> {
    await this.move(
      tx,
      packageId,
      { status: 'available', reservedByUpgradeId: null },
      "status = 'reserved' AND reservedByUpgradeId = :upgradeId",
      { upgradeId },
    );
  }

  private async move(
    tx: Tx,
    packageId: string,
    changes: Partial<Package>,
    condition: string,
    params: Record<string, unknown>,
  ): Promise<boolean> {
    const result = await tx.em
      .createQueryBuilder()
      .update(Package)
      .set(changes)
      .where(`id = :packageId AND ${condition}`, { packageId, ...params })
      .execute();
    if ((result.affected ?? 0) === 0) return false;
    await this.publish(tx, await this.require(packageId, tx));
    return true;
  }

  private async refuseUse(tx: Tx, packageId: string): Promise<never> {
    const pkg = await this.require(packageId, tx);
    const holder = pkg.usedByUpgradeId ?? pkg.reservedByUpgradeId;
    throw new ConflictError(
      pkg.status === 'completed' ? 'PACKAGE_USED' : 'PACKAGE_RESERVED',
      `Package ${packageId} is ${pkg.status}${holder ? ` by upgrade ${holder}` : ''}; a package starts one upgrade only. Upload a new package for another upgrade.`,
      { status: pkg.status, upgradeId: holder },
    );
  }

  /** Deletes an available package; reserved and completed ones are history and stay. */
  async delete(id: string, origin: Origin): Promise<void> {
    const sha256 = await this.db.transaction(async (tx) => {
      const pkg = await this.require(id, tx);
      if (pkg.status !== 'available') {
        throw new ConflictError(
          'PACKAGE_NOT_AVAILABLE',
          `Package ${id} is ${pkg.status}${pkg.usedByUpgradeId ? ` (used by upgrade ${pkg.usedByUpgradeId})` : ''}; only an available package can be deleted.`,
          { status: pkg.status },
        );
      }
      await this.packages.delete(tx.em, id);
      await this.audit.record(tx, origin, {
        action: 'package.delete',
        target: 'package',
        targetId: id,
        clusterId: pkg.clusterId,
        summary: `deleted package ${pkg.product} ${pkg.version} (${pkg.kind})`,
      });
      await this.publish(tx, pkg, { deleted: true });
      return (await this.packages.sha256InUse(tx.em, pkg.sha256)) ? null : pkg.sha256;
    });
    if (sha256) await this.store.removeStored(sha256);
  }

  /** The stored file an agent downloads: only an agent of the package's cluster may. */
  async downloadFor(agentId: string, packageId: string): Promise<{ path: string; pkg: Package }> {
    const [agent, pkg] = await Promise.all([this.agents.get(agentId), this.packages.findById(packageId)]);
    if (!pkg) throw new NotFoundError('Package', packageId);
    if (pkg.clusterId !== agent.clusterId)
      throw new ForbiddenError(
        `Package ${packageId} belongs to another cluster; an agent downloads only its own cluster's packages.`,
        'OTHER_CLUSTER',
      );
    return this.stored(pkg);
  }

  /** The stored file of a package, for an operator installing it by hand on a legacy agent. */
  async download(packageId: string): Promise<{ path: string; pkg: Package }> {
    return this.stored(await this.require(packageId));
  }

  private async stored(pkg: Package): Promise<{ path: string; pkg: Package }> {
    const packageId = pkg.id;
    if (!(await this.store.exists(pkg.sha256))) {
      throw new DomainError(
        HttpStatus.GONE,
        'PACKAGE_FILE_MISSING',
        `The file of package ${packageId} is missing from the package store; upload it again.`,
      );
    }
    return { path: this.store.pathOf(pkg.sha256), pkg };
  }

  /** `package.status`: a package arrived, moved in its life cycle, or (`deleted: true`) went. */
  private publish(tx: Tx, pkg: Package, extra: Pick<PackageStatusEventData, 'deleted'> = {}): Promise<void> {
    const data: PackageStatusEventData = {
      packageId: pkg.id,
      version: pkg.version,
      kind: pkg.kind,
      status: pkg.status,
      usedByUpgradeId: pkg.usedByUpgradeId,
      ...extra,
    };
    return this.events.append(tx, [{ type: 'package.status', clusterId: pkg.clusterId, data }]);
  }
}
