import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { TimestampColumn } from '../common/columns';

export const USER_ROLES = ['viewer', 'operator', 'admin'] as const;
export type UserRole = (typeof USER_ROLES)[number];
export type TokenRole = UserRole | 'agent';

/**
 * A bearer credential: an API token of a person or automation (`viewer`, `operator`, `admin`), or
 * the token an agent received when it paired (`agent`). Only the SHA-256 of the secret is stored.
 */
@Entity('access_tokens')
export class AccessToken {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ type: 'varchar', length: 100 })
  name: string;

  @Column({ type: 'varchar', length: 10 })
  role: TokenRole;

  /** Set for agent tokens: the only agent this token may speak for. */
  @Index('idx_access_tokens_agent')
  @Column({ type: 'varchar', length: 36, nullable: true })
  agentId: string | null;

  /** Hex SHA-256 of the secret: the secret is random and long, so a slow hash adds nothing. */
  @Index('uq_access_tokens_secret_hash', { unique: true })
  @Column({ type: 'varchar', length: 64 })
  secretHash: string;

  /** The first characters of the secret, so people can tell their tokens apart in a list. */
  @Column({ type: 'varchar', length: 12 })
  prefix: string;

  @Column({ type: 'varchar', length: 36, nullable: true })
  createdByTokenId: string | null;

  @TimestampColumn()
  createdAt: Date;

  @TimestampColumn({ nullable: true })
  revokedAt: Date | null;

  /** After this instant the token is refused (TOKEN_EXPIRED); null: it never expires. */
  @TimestampColumn({ nullable: true })
  expiresAt: Date | null;
}

/** Neither revoked nor expired at `now`: the token still opens the API. */
export function isActiveToken(token: Pick<AccessToken, 'revokedAt' | 'expiresAt'>, now: Date): boolean {
  return !token.revokedAt && (!token.expiresAt || token.expiresAt.getTime() > now.getTime());
}
