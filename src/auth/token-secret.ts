import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { AccessToken, TokenRole } from './access-token.entity';

/** Prefixes make leaked secrets recognisable to people and to secret scanners. */
export const USER_TOKEN_PREFIX = 'lsk_';
export const AGENT_TOKEN_PREFIX = 'lsa_';

export function generateSecret(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** What a listing may show of a secret: enough to recognise it, nowhere near enough to use it. */
export function secretPrefix(secret: string): string {
  return secret.slice(0, 8);
}

/** A new token row for `secret`, of which only the hash and the first characters are kept. */
export function newAccessToken(
  args: {
    name: string;
    role: TokenRole;
    secret: string;
    createdByTokenId: string | null;
    agentId: string | null;
    expiresAt?: Date | null;
  },
  now: Date,
): AccessToken {
  const token = new AccessToken();
  token.id = randomUUID();
  token.name = args.name;
  token.role = args.role;
  token.agentId = args.agentId;
  token.secretHash = hashSecret(args.secret);
  token.prefix = secretPrefix(args.secret);
  token.createdByTokenId = args.createdByTokenId;
  token.createdAt = now;
  token.revokedAt = null;
  token.expiresAt = args.expiresAt ?? null;
  return token;
}

/**
 * The framed block a secret is shown in, the one time anyone can see it (the first admin token at
 * start, a token from `npm run admin -- reset-token`). Printed outside the structured log.
 */
export function secretBanner(headline: string, secret: string, footer: string): string {
  const rule = '='.repeat(80);
  return ['', rule, ` ${headline}`, '', `   ${secret}`, '', ` ${footer}`, rule, ''].join('\n') + '\n';
}
