import { generateSecret, hashSecret } from '../auth/token-secret';

export const PAIRING_KEY_PREFIX = 'lsp_';

/** A one-time pairing key: the secret to hand to the agent, and what is stored of it. */
export function newPairingKey(now: Date, ttlS: number): { key: string; hash: string; expiresAt: Date } {
  const key = generateSecret(PAIRING_KEY_PREFIX);
  return { key, hash: hashSecret(key), expiresAt: new Date(now.getTime() + ttlS * 1000) };
}
