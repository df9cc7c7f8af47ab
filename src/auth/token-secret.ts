import { createHash, randomBytes } from 'node:crypto';

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
