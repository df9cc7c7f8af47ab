import { AuditTrail } from '../audit/audit-trail.service';
import { actorName, type Origin } from '../audit/origin';
import { Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { Clock } from '../common/clock';
import { isUniqueViolation } from '../common/db-errors';
import { BadInputError, ConflictError, NotFoundError } from '../common/errors';
import { Database, Tx } from '../database/database';
import { parsePublicKey, type SigningPolicy } from '../protocol/package-signing';
import { Cluster } from './cluster.entity';
import { ClusterRepository } from './cluster.repository';
import { CreateSigningKeyDto, SigningKeyDto, toSigningKeyDto } from './dto/signing-key.dto';
import { SigningKey } from './signing-key.entity';

/**
 * The public keys trusted to sign a cluster's packages (docs/packages.md, "Signing"). Every change
 * bumps the cluster's signingRevision, so agents are sent the new keys on their next heartbeat.
 */
@Injectable()
export class SigningKeysService {
  private readonly logger = new Logger(SigningKeysService.name);

  constructor(
    private readonly db: Database,
    private readonly clusters: ClusterRepository,
    private readonly clock: Clock,
    private readonly audit: AuditTrail,
  ) {}

  async create(clusterId: string, dto: CreateSigningKeyDto, origin: Origin): Promise<SigningKeyDto> {
    let parsed: ReturnType<typeof parsePublicKey>;
    try {
      parsed = parsePublicKey(dto.publicKey);
    } catch (error) {
      const problem = (error as Error).message;
      throw new BadInputError(`${problem}.`, [{ field: 'publicKey', problems: [problem] }]);
    }
    const key = Object.assign(new SigningKey(), {
      id: randomUUID(),
      clusterId,
      name: dto.name,
      publicKey: parsed.pem,
      fingerprint: parsed.fingerprint,
      createdAt: this.clock.now(),
      createdByTokenId: origin.actor.kind === 'user' ? origin.actor.tokenId : null,
    } satisfies SigningKey);
    try {
      await this.db.transaction(async (tx) => {
        await this.lockCluster(tx, clusterId);
        const same = await tx.em.findOneBy(SigningKey, { clusterId, fingerprint: parsed.fingerprint });
        if (same)
          throw new ConflictError(
            'SIGNING_KEY_EXISTS',
            `This public key is already registered in the cluster as "${same.name}" (${same.id}).`,
            { keyId: same.id, name: same.name },
          );
        if (await tx.em.findOneBy(SigningKey, { clusterId, name: dto.name })) throw this.nameTaken(dto.name);
        await tx.em.insert(SigningKey, key);
        await this.clusters.bumpSigningRevision(tx.em, clusterId);
        await this.audit.record(tx, origin, {
          action: 'signing-key.create',
          target: 'signing-key',
          targetId: key.id,
          clusterId,
          summary: `registered signing key "${key.name}" (fingerprint ${key.fingerprint})`,
        });
      });
    } catch (error) {
      throw isUniqueViolation(error) ? this.nameTaken(dto.name) : error;
    }
    this.logger.log(`cluster ${clusterId}: signing key ${key.id} (${key.name}, ${key.fingerprint}) registered`);
    return toSigningKeyDto(key);
  }

  async list(clusterId: string): Promise<SigningKeyDto[]> {
    await this.requireCluster(this.db.reader, clusterId);
    return (await this.keysOf(this.db.reader, clusterId)).map(toSigningKeyDto);
  }

  /** Deletes a key; the last one is kept while the cluster requires signed packages. */
  async delete(clusterId: string, keyId: string, origin: Origin): Promise<void> {
    await this.db.transaction(async (tx) => {
      const cluster = await this.lockCluster(tx, clusterId);
      const key = await tx.em.findOneBy(SigningKey, { id: keyId, clusterId });
      if (!key) throw new NotFoundError('Signing key', keyId);
      if (cluster.requireSignedPackages && (await tx.em.countBy(SigningKey, { clusterId })) === 1) {
        throw new ConflictError(
          'LAST_SIGNING_KEY',
          `Cluster ${cluster.name} requires signed packages and "${key.name}" is its last signing key; register another key first, or turn requireSignedPackages off (PATCH /api/v1/clusters/${clusterId}).`,
        );
      }
      await tx.em.delete(SigningKey, { id: keyId });
      await this.clusters.bumpSigningRevision(tx.em, clusterId);
      await this.audit.record(tx, origin, {
        action: 'signing-key.delete',
        target: 'signing-key',
        targetId: keyId,
        clusterId,
        summary: `deleted signing key "${key.name}" (fingerprint ${key.fingerprint}): agents no longer trust it`,
      });
    });
    this.logger.log(`cluster ${clusterId}: signing key ${keyId} deleted by ${actorName(origin.actor)}`);
  }

  /** The cluster's keys, oldest first: what an upload's signature is checked against. */
  keysOf(em: EntityManager, clusterId: string): Promise<SigningKey[]> {
    return em.find(SigningKey, { where: { clusterId }, order: { createdAt: 'ASC', id: 'ASC' } });
  }

  /** The policy agents receive: on pairing, and on heartbeats when their revision is out of date. */
  async policyOf(clusterId: string, em: EntityManager = this.db.reader): Promise<SigningPolicy> {
    // The revision first, then the keys: keys newer than their revision cost one more resend, while
    // keys older than it (reads in the other order, or at once on two pooled connections) would stay.
    const cluster = await this.requireCluster(em, clusterId);
    const keys = await this.keysOf(em, clusterId);
    return {
      revision: cluster.signingRevision,
      requireSignedPackages: cluster.requireSignedPackages,
      keys: keys.map((k) => ({ id: k.id, name: k.name, publicKey: k.publicKey })),
    };
  }

  /** The cluster, its row locked on PostgreSQL: what a change of keys takes, and an upload's last check of its signature. */
  async lockCluster(tx: Tx, clusterId: string): Promise<Cluster> {
    const cluster = await this.clusters.findForUpdate(tx.em, clusterId, tx.rowLock !== undefined);
    if (!cluster) throw new NotFoundError('Cluster', clusterId);
    return cluster;
  }

  private async requireCluster(em: EntityManager, clusterId: string): Promise<Cluster> {
    const cluster = await this.clusters.findById(clusterId, em);
    if (!cluster) throw new NotFoundError('Cluster', clusterId);
    return cluster;
  }

  private nameTaken(name: string): ConflictError {
    return new ConflictError(
      'SIGNING_KEY_NAME_TAKEN',
      `A signing key named "${name}" already exists in this cluster; choose another name.`,
    );
  }
}
