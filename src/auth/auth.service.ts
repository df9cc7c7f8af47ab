import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Clock } from '../common/clock';
import { ConflictError, NotFoundError } from '../common/errors';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { Database, Tx } from '../database/database';
import { AccessToken, UserRole } from './access-token.entity';
import { AccessTokenRepository } from './access-token.repository';
import { Principal } from './principal';
import { TokenCache } from './token-cache';
import { AGENT_TOKEN_PREFIX, generateSecret, hashSecret, secretPrefix, USER_TOKEN_PREFIX } from './token-secret';

export type AuthenticationResult = { ok: true; principal: Principal } | { ok: false; reason: 'unknown' | 'revoked' };

/** How long a verified token is trusted without asking the database again (see TokenCache). */
const TOKEN_CACHE_TTL_MS = 5000;
const TOKEN_CACHE_MAX_ENTRIES = 200_000;

@Injectable()
export class AuthService implements OnApplicationBootstrap {
  private readonly logger = new Logger(AuthService.name);
  private readonly cache = new TokenCache(TOKEN_CACHE_TTL_MS, TOKEN_CACHE_MAX_ENTRIES);

  constructor(
    private readonly db: Database,
    private readonly tokens: AccessTokenRepository,
    private readonly clock: Clock,
    @InjectAppConfig() private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.ensureAdminToken();
  }

  async authenticate(secret: string): Promise<AuthenticationResult> {
    const secretHash = hashSecret(secret);
    const cached = this.cache.get(secretHash);
    if (cached) return { ok: true, principal: cached };
    const token = await this.tokens.findBySecretHash(secretHash);
    if (!token) return { ok: false, reason: 'unknown' };
    if (token.revokedAt) return { ok: false, reason: 'revoked' };
    const principal: Principal =
      token.role === 'agent'
        ? { kind: 'agent', tokenId: token.id, agentId: token.agentId! }
        : { kind: 'user', tokenId: token.id, name: token.name, role: token.role };
    this.cache.set(secretHash, principal);
    return { ok: true, principal };
  }

  /** The principal of a token verified within the last few seconds, without asking the database. */
  verifiedRecently(secret: string | undefined): Principal | undefined {
    return secret === undefined ? undefined : this.cache.get(hashSecret(secret));
  }

  /** Issues an API token; the secret is returned here and never again. */
  async issueToken(name: string, role: UserRole, createdByTokenId: string | null): Promise<{ token: AccessToken; secret: string }> {
    const secret = generateSecret(USER_TOKEN_PREFIX);
    const token = this.newToken({ name, role, secret, createdByTokenId, agentId: null });
    await this.db.transaction((tx) => this.tokens.insert(tx.em, token));
    this.logger.log(`issued ${role} token ${token.id} (${name})`);
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

  /** Revokes an API token. Idempotent; refuses to revoke the last admin token, which would lock everyone out. */
  async revokeToken(id: string): Promise<AccessToken> {
    const token = await this.db.transaction(async (tx) => {
      const found = await this.tokens.findUserToken(id, tx.em);
      if (!found) throw new NotFoundError('Token', id);
      if (found.revokedAt) return found;
      if (found.role === 'admin' && (await this.tokens.countActive(tx.em, 'admin')) <= 1) {
        throw new ConflictError(
          'LAST_ADMIN_TOKEN',
          'This is the last active admin token; revoking it would lock every admin out. Issue another admin token first.',
        );
      }
      found.revokedAt = this.clock.now();
      await this.tokens.revoke(tx.em, id, found.revokedAt);
      tx.afterCommit(() => this.cache.evict(found.secretHash));
      return found;
    });
    this.logger.log(`revoked token ${id}`);
    return token;
  }

  /** Issues the token an agent speaks with, inside the caller's transaction (pairing). */
  async issueAgentToken(tx: Tx, agentId: string, agentName: string): Promise<string> {
    const secret = generateSecret(AGENT_TOKEN_PREFIX);
    await this.tokens.insert(tx.em, this.newToken({ name: agentName.slice(0, 100), role: 'agent', secret, createdByTokenId: null, agentId }));
    return secret;
  }

  /** Revokes every token of an agent inside the caller's transaction (re-pairing, removal). */
  async revokeAgentTokens(tx: Tx, agentId: string): Promise<void> {
    const hashes = await this.tokens.revokeAgentTokens(tx.em, agentId, this.clock.now());
    tx.afterCommit(() => hashes.forEach((h) => this.cache.evict(h)));
  }

  /**
   * With no active admin token in the database, installs LOCKSTEP_ADMIN_TOKEN or generates one and
   * prints it once. Under an advisory lock so replicas starting together create exactly one.
   */
  private async ensureAdminToken(): Promise<void> {
    const configured = this.config.adminToken;
    const created = await this.db.transaction(async (tx) => {
      await tx.advisoryLock('lockstep.bootstrap-admin');
      if ((await this.tokens.countActive(tx.em, 'admin')) > 0) return undefined;
      const secret = configured ?? generateSecret(USER_TOKEN_PREFIX);
      await this.tokens.insert(tx.em, this.newToken({ name: 'bootstrap admin', role: 'admin', secret, createdByTokenId: null, agentId: null }));
      return { secret, generated: !configured };
    });
    if (!created) {
      if (configured && !(await this.tokens.findBySecretHash(hashSecret(configured)))) {
        this.logger.warn('LOCKSTEP_ADMIN_TOKEN is set but admin tokens already exist; it was not added. Issue tokens with POST /api/v1/tokens.');
      }
      return;
    }
    if (!created.generated) {
      this.logger.log('installed LOCKSTEP_ADMIN_TOKEN as the first admin token');
      return;
    }
    // Printed once, outside the structured log, because this is the only time anyone can see it.
    process.stdout.write(
      [
        '',
        '================================================================================',
        ' Lockstep generated the first admin token. It is shown only this once:',
        '',
        `   ${created.secret}`,
        '',
        ' Use it as "Authorization: Bearer <token>"; issue more with POST /api/v1/tokens.',
        '================================================================================',
        '',
      ].join('\n') + '\n',
    );
  }

  private newToken(args: { name: string; role: AccessToken['role']; secret: string; createdByTokenId: string | null; agentId: string | null }): AccessToken {
    const token = new AccessToken();
    token.id = randomUUID();
    token.name = args.name;
    token.role = args.role;
    token.agentId = args.agentId;
    token.secretHash = hashSecret(args.secret);
    token.prefix = secretPrefix(args.secret);
    token.createdByTokenId = args.createdByTokenId;
    token.createdAt = this.clock.now();
    token.revokedAt = null;
    return token;
  }
}
