import { Injectable } from '@nestjs/common';
import { EntityManager, In, IsNull } from 'typeorm';
import { toDbTimestamp } from '../common/columns';
import { Database } from '../database/database';
import { AccessToken, TokenRole, USER_ROLES, UserRole } from './access-token.entity';

/** The columns of a token that a token check reads. */
export type TokenCheck = Pick<AccessToken, 'id' | 'name' | 'role' | 'agentId' | 'revokedAt' | 'expiresAt'>;

// Timestamps are ISO text on both databases (TimestampColumn), read here without the entity's transformer.
const TOKEN_CHECK_SQL =
  'SELECT "id", "name", "role", "agentId", "revokedAt", "expiresAt" FROM "access_tokens" WHERE "secretHash" = $1';

@Injectable()
export class AccessTokenRepository {
  constructor(private readonly db: Database) {}

  /**
   * What a token check needs of a token, for every cache miss (docs/security.md, "Token checks"):
   * Database.hotRead's fixed SQL (on SQLite a connection's own prepared statement, without TypeORM's
   * query runner around it), naming only the columns a check reads and converting only them.
   */
  async findForCheck(secretHash: string): Promise<TokenCheck | null> {
    const [row] = await this.db.hotRead<Record<string, string | null>>(TOKEN_CHECK_SQL, [secretHash]);
    if (!row) return null;
    return {
      id: row.id!,
      name: row.name!,
      role: row.role as TokenRole,
      agentId: row.agentId,
      revokedAt: row.revokedAt === null ? null : new Date(row.revokedAt),
      expiresAt: row.expiresAt === null ? null : new Date(row.expiresAt),
    };
  }

  findBySecretHash(secretHash: string): Promise<AccessToken | null> {
    return this.db.reader.findOneBy(AccessToken, { secretHash });
  }

  findUserToken(id: string, em: EntityManager = this.db.reader): Promise<AccessToken | null> {
    return em.findOneBy(AccessToken, { id, role: In([...USER_ROLES]) });
  }

  listUserTokens(includeRevoked: boolean): Promise<AccessToken[]> {
    return this.db.reader.find(AccessToken, {
      where: { role: In([...USER_ROLES]), ...(includeRevoked ? {} : { revokedAt: IsNull() }) },
      order: { createdAt: 'ASC', id: 'ASC' },
    });
  }

  /** Tokens of `role` neither revoked nor expired at `now` (timestamps are ISO text, which sorts by time). */
  countActive(em: EntityManager, role: UserRole, now: Date): Promise<number> {
    return em
      .createQueryBuilder(AccessToken, 't')
      .where('t.role = :role AND t.revokedAt IS NULL', { role })
      .andWhere('(t.expiresAt IS NULL OR t.expiresAt > :now)', { now: toDbTimestamp(now) })
      .getCount();
  }

  async insert(em: EntityManager, token: AccessToken): Promise<void> {
    await em.insert(AccessToken, token);
  }

  /** Revokes if not revoked yet; returns whether this call did it. */
  async revoke(em: EntityManager, id: string, at: Date): Promise<boolean> {
    const result = await em
      .createQueryBuilder()
      .update(AccessToken)
      .set({ revokedAt: at })
      .where('id = :id AND revokedAt IS NULL', { id })
      .execute();
    return (result.affected ?? 0) > 0;
  }

  /** Revokes every live token of one agent; returns the hashes revoked, for cache eviction. */
  async revokeAgentTokens(em: EntityManager, agentId: string, at: Date): Promise<string[]> {
    const live = await em.find(AccessToken, {
      where: { agentId, revokedAt: IsNull() },
      select: { id: true, secretHash: true },
    });
    if (live.length === 0) return [];
    await em
      .createQueryBuilder()
      .update(AccessToken)
      .set({ revokedAt: at })
      .where('agentId = :agentId AND revokedAt IS NULL', { agentId })
      .execute();
    return live.map((t) => t.secretHash);
  }
}
