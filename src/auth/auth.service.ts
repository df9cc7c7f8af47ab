import { Injectable, Logger, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { AuditTrail } from '../audit/audit-trail.service';
import { type Origin, systemOrigin } from '../audit/origin';
import { Clock } from '../common/clock';
import { BadInputError, ConflictError, NotFoundError, UnauthenticatedError } from '../common/errors';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { Database, Tx } from '../database/database';
import { Notifications } from '../database/notifications';
import { AccessToken, isActiveToken, UserRole } from './access-token.entity';
import { AccessTokenRepository } from './access-token.repository';
import { Principal } from './principal';
import { TokenCache } from './token-cache';
import {
  AGENT_TOKEN_PREFIX,
  generateSecret,
  hashSecret,
  newAccessToken,
  secretBanner,
  USER_TOKEN_PREFIX,
} from './token-secret';

export type AuthenticationResult =
  | { ok: true; principal: Principal }
  | { ok: false; reason: 'unknown' | 'revoked' }
  | { ok: false; reason: 'expired'; expiredAt: Date };

/**
 * How long a verified token is trusted without asking the database again (see TokenCache and
 * docs/security.md, "Token checks"): an API token 5 s, the bound on a revocation another replica
 * could miss (the admin CLI revokes in the database, telling no process); an agent token 10
 * minutes while revocations reach every replica (Notifications.live), since agents poll slower
 * than 5 s and each miss is a database read on the hottest path.
 */
const TOKEN_CACHE_TTL_MS = 5000;
const AGENT_TOKEN_CACHE_TTL_MS = 600_000;
/** Revoked tokens' hashes, from the replica that revoked them to every other. */
export const TOKENS_CHANNEL = 'lockstep_tokens';
const TOKEN_CACHE_MAX_ENTRIES = 200_000;
/** The furthest ahead a token's expiresAt may be: a date decades away is more likely a typo than a plan. */
export const MAX_TOKEN_LIFETIME_YEARS = 10;

const BEARER = /^Bearer\s+(\S+)\s*$/i;

@Injectable()
export class AuthService implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger(AuthService.name);
  // Token expiry is read on the injected clock, like every other expiry (tests move it).
  private readonly cache = new TokenCache(TOKEN_CACHE_TTL_MS, TOKEN_CACHE_MAX_ENTRIES, undefined, () =>
    this.clock.now().getTime(),
  );

  constructor(
    private readonly db: Database,
    private readonly tokens: AccessTokenRepository,
    private readonly clock: Clock,
    @InjectAppConfig() private readonly config: AppConfig,
    private readonly audit: AuditTrail,
    private readonly notifications: Notifications,
  ) {}

  onModuleInit(): void {
    this.notifications.subscribe(TOKENS_CHANNEL, {
      notified: (secretHash) => this.cache.evict(secretHash),
      // Revocations may have gone unheard: every entry is read again.
      resync: () => this.cache.clear(),
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.ensureAdminToken();
  }

  /**
   * The caller an Authorization header names, or the refusal that says what is wrong with it
   * (missing, malformed, unknown, revoked, expired). The access guard and the native agent routes
   * both check tokens through here.
   */
  async principalFromHeader(header: string | undefined): Promise<Principal> {
    if (!header) {
      throw new UnauthenticatedError(
        'No token: send "Authorization: Bearer <token>". An admin issues tokens with POST /api/v1/tokens.',
        'TOKEN_MISSING',
      );
    }
    const match = BEARER.exec(header);
    if (!match) {
      throw new UnauthenticatedError('The Authorization header must be "Bearer <token>".', 'TOKEN_MALFORMED');
    }
    const result = await this.authenticate(match[1]);
    if (!result.ok) {
      if (result.reason === 'expired') {
        throw new UnauthenticatedError(
          `This token expired at ${result.expiredAt.toISOString()}; ask an admin for a new one.`,
          'TOKEN_EXPIRED',
        );
      }
      throw result.reason === 'revoked'
        ? new UnauthenticatedError('This token has been revoked; ask an admin for a new one.', 'TOKEN_REVOKED')
        : new UnauthenticatedError(
            'This token is not known to Lockstep; check it, or ask an admin for a new one.',
            'TOKEN_UNKNOWN',
          );
    }
    return result.principal;
  }

  async authenticate(secret: string): Promise<AuthenticationResult> {
    const secretHash = hashSecret(secret);
    const cached = this.cache.get(secretHash);
    if (cached) return { ok: true, principal: cached };
    const mark = this.cache.mark();
    const token = await this.tokens.findForCheck(secretHash);
    if (!token) return { ok: false, reason: 'unknown' };
    if (token.revokedAt) return { ok: false, reason: 'revoked' };
    if (token.expiresAt && token.expiresAt.getTime() <= this.clock.now().getTime())
      return { ok: false, reason: 'expired', expiredAt: token.expiresAt };
    const principal: Principal =
      token.role === 'agent'
        ? { kind: 'agent', tokenId: token.id, agentId: token.agentId! }
        : { kind: 'user', tokenId: token.id, name: token.name, role: token.role };
    const ttlMs = principal.kind === 'agent' && this.notifications.live ? AGENT_TOKEN_CACHE_TTL_MS : TOKEN_CACHE_TTL_MS;
    this.cache.set(secretHash, principal, token.expiresAt, { ttlMs, mark });
    return { ok: true, principal };
  }

  /** Issues an API token, valid until `expiresAt` (null: no end); the secret is returned here and never again. */
  async issueToken(
    name: string,
    role: UserRole,
    origin: Origin,
    expiresAt: Date | null = null,
  ): Promise<{ token: AccessToken; secret: string }> {
    const now = this.clock.now();
    if (expiresAt) checkTokenExpiry(expiresAt, now);
    const secret = generateSecret(USER_TOKEN_PREFIX);
    const createdByTokenId = origin.actor.kind === 'user' ? origin.actor.tokenId : null;
    const token = newAccessToken({ name, role, secret, createdByTokenId, agentId: null, expiresAt }, now);
    await this.db.transaction(async (tx) => {
      await this.tokens.insert(tx.em, token);
      await this.audit.record(tx, origin, {
        action: 'token.create',
        target: 'token',
        targetId: token.id,
        clusterId: null,
        summary: `issued ${role} token "${name}"${expiresAt ? `, expiring ${expiresAt.toISOString()}` : ''}`,
      });
    });
    this.logger.log(
      `issued ${role} token ${token.id} (${name})${expiresAt ? `, expires ${expiresAt.toISOString()}` : ''}`,
    );
    return { token, secret };
  }

  listTokens(includeRevoked: boolean): Promise<AccessToken[]> {
    return this.tokens.listUserTokens(includeRevoked);
  }

  async getToken(id: string): Promise<AccessToken> {
    const token = await this.tokens.findUserToken(id);
    if (!token) throw new NotFoundError('Token', id);
    return token;
  }

  /**
   * Revokes an API token. Idempotent; refuses to revoke the last active (unrevoked, unexpired)
   * admin token, which would lock everyone out. An expired one may always go.
   */
  async revokeToken(id: string, origin: Origin): Promise<AccessToken> {
    const token = await this.db.transaction(async (tx) => {
      const now = this.clock.now();
      const found = await this.tokens.findUserToken(id, tx.em);
      if (!found) throw new NotFoundError('Token', id);
      if (found.revokedAt) return found;
      if (
        found.role === 'admin' &&
        isActiveToken(found, now) &&
        (await this.tokens.countActive(tx.em, 'admin', now)) <= 1
      ) {
        throw new ConflictError(
          'LAST_ADMIN_TOKEN',
          'This is the last active admin token (expired ones do not count); revoking it would lock every admin out. Issue another admin token first.',
        );
      }
      found.revokedAt = now;
      await this.tokens.revoke(tx.em, id, found.revokedAt);
      await this.audit.record(tx, origin, {
        action: 'token.revoke',
        target: 'token',
        targetId: id,
        clusterId: null,
        summary: `revoked ${found.role} token "${found.name}"`,
      });
      await this.forgetRevoked(tx, [found.secretHash]);
      return found;
    });
    this.logger.log(`revoked token ${id}`);
    return token;
  }

  /** Issues the token an agent speaks with, inside the caller's transaction (pairing). */
  async issueAgentToken(tx: Tx, agentId: string, agentName: string): Promise<string> {
    const secret = generateSecret(AGENT_TOKEN_PREFIX);
    await this.tokens.insert(
      tx.em,
      newAccessToken(
        { name: agentName.slice(0, 100), role: 'agent', secret, createdByTokenId: null, agentId },
        this.clock.now(),
      ),
    );
    return secret;
  }

  /** Revokes every token of an agent inside the caller's transaction (re-pairing, removal). */
  async revokeAgentTokens(tx: Tx, agentId: string): Promise<void> {
    const hashes = await this.tokens.revokeAgentTokens(tx.em, agentId, this.clock.now());
    await this.forgetRevoked(tx, hashes);
  }

  /** Once `tx` commits, revoked tokens leave this replica's cache and, told by a notification, every other's. */
  private async forgetRevoked(tx: Tx, secretHashes: string[]): Promise<void> {
    for (const hash of secretHashes) await this.notifications.notify(tx, TOKENS_CHANNEL, hash);
    tx.afterCommit(() => secretHashes.forEach((hash) => this.cache.evict(hash)));
  }

  /**
   * With no active (unrevoked, unexpired) admin token in the database, installs LOCKSTEP_ADMIN_TOKEN
   * or generates one and prints it once. Under an advisory lock so replicas starting together
   * create exactly one.
   */
  private async ensureAdminToken(): Promise<void> {
    const configured = this.config.adminToken;
    const created = await this.db.transaction(async (tx) => {
      await tx.advisoryLock('lockstep.bootstrap-admin');
      const now = this.clock.now();
      if ((await this.tokens.countActive(tx.em, 'admin', now)) > 0) return undefined;
      // A LOCKSTEP_ADMIN_TOKEN already stored is no longer active (it was revoked): it is not
      // brought back (its hash is unique anyway); a new token is generated instead.
      const spent =
        configured !== undefined && (await tx.em.existsBy(AccessToken, { secretHash: hashSecret(configured) }));
      const secret = configured && !spent ? configured : generateSecret(USER_TOKEN_PREFIX);
      const token = newAccessToken(
        { name: 'bootstrap admin', role: 'admin', secret, createdByTokenId: null, agentId: null },
        now,
      );
      await this.tokens.insert(tx.em, token);
      await this.audit.record(tx, systemOrigin('bootstrap'), {
        action: 'token.create',
        target: 'token',
        targetId: token.id,
        clusterId: null,
        summary: 'issued the bootstrap admin token: the database had no active admin token',
      });
      return { secret, generated: secret !== configured, spent };
    });
    if (!created) {
      if (configured && !(await this.tokens.findBySecretHash(hashSecret(configured)))) {
        this.logger.warn(
          'LOCKSTEP_ADMIN_TOKEN is set but admin tokens already exist; it was not added. Issue tokens with POST /api/v1/tokens.',
        );
      }
      return;
    }
    if (!created.generated) {
      this.logger.log('installed LOCKSTEP_ADMIN_TOKEN as the first admin token');
      return;
    }
    if (created.spent) {
      this.logger.warn(
        'LOCKSTEP_ADMIN_TOKEN was revoked, so it was not installed again; a new admin token was generated instead.',
      );
    }
    // Printed once, outside the structured log, because this is the only time anyone can see it.
    process.stdout.write(
      secretBanner(
        'Lockstep generated an admin token (there was no active one). It is shown only this once:',
        created.secret,
        'Use it as "Authorization: Bearer <token>"; issue more with POST /api/v1/tokens.',
      ),
    );
  }
}

/** Refuses an expiresAt that is not in the future or is more than MAX_TOKEN_LIFETIME_YEARS ahead, naming the field. */
function checkTokenExpiry(expiresAt: Date, now: Date): void {
  const latest = new Date(now);
  latest.setUTCFullYear(latest.getUTCFullYear() + MAX_TOKEN_LIFETIME_YEARS);
  const problem =
    expiresAt.getTime() <= now.getTime()
      ? `expiresAt must be in the future (it is ${expiresAt.toISOString()}, now is ${now.toISOString()}); leave it out for a token that never expires`
      : expiresAt.getTime() > latest.getTime()
        ? `expiresAt must be at most ${MAX_TOKEN_LIFETIME_YEARS} years ahead (no later than ${latest.toISOString()}); leave it out for a token that never expires`
        : undefined;
  if (problem) throw new BadInputError(`Invalid request: ${problem}.`, [{ field: 'expiresAt', problems: [problem] }]);
}
