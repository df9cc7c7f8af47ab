import { createHash } from 'node:crypto';

/** Fixed namespace of Lockstep's step ids; changing it would change every id a preview shows. */
const STEP_NAMESPACE = Buffer.from('6f0c6a52-3d1e-4d8b-9c57-2b8f4e1a7d30'.replace(/-/g, ''), 'hex');

/**
 * A step's id: a name-based UUID (RFC 4122 version 5, SHA-1) of the upgrade's package, how many
 * upgrades used that package before this one, and the step's key in the plan (its kind and agent:
 * `upgrade:<agentId>`, also for a manual step, or `switchover:`/`switchback:<failoverGroup>`). A
 * preview and the upgrade created from the same input on the same fleet therefore name each step
 * alike, and no two upgrades share an id (a package used again, by auto-upgrade or after a
 * scheduled upgrade gave it back, counts one more use).
 */
export function stepId(packageId: string, use: number, key: string): string {
  const hash = createHash('sha1').update(STEP_NAMESPACE).update(`${packageId}/${use}/${key}`).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50; // version 5
  hash[8] = (hash[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
