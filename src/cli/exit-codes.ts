import type { Schemas } from './api';

/**
 * What `lockstep` exits with, so a pipeline can gate on an upgrade (docs/cli.md lists them).
 * Each way an upgrade can stop short has its own code.
 */
export const EXIT = {
  ok: 0,
  /** Refused by the server (a 4xx other than the token's): the message says why. */
  error: 1,
  /** The command line itself is wrong. */
  usage: 2,
  failed: 3,
  completedWithErrors: 4,
  cancelled: 5,
  /** Paused (a canary waiting for a look, or an operator): nothing goes on until someone resumes it. */
  paused: 6,
  /** The server could not be reached or failed (5xx): worth trying again later. */
  unavailable: 7,
  /** The token is missing, unknown, expired, revoked, or its role is too low (401/403). */
  unauthorized: 8,
  /** Rolled back: every agent it changed is back on its old version (docs/rollback.md). */
  rolledBack: 9,
} as const;

/** The exit code for a refusal with this HTTP status. */
export function exitCodeForStatus(status: number): number {
  if (status === 401 || status === 403) return EXIT.unauthorized;
  if (status >= 500 || status === 429) return EXIT.unavailable;
  return EXIT.error;
}

/** The exit code for an upgrade that ended, or paused, with this status. */
export function exitCodeForUpgrade(status: Schemas['UpgradeStatus']): number {
  switch (status) {
    case 'succeeded':
      return EXIT.ok;
    case 'failed':
    case 'rollback-failed':
      return EXIT.failed;
    case 'rolled-back':
      return EXIT.rolledBack;
    case 'completed-with-errors':
      return EXIT.completedWithErrors;
    case 'cancelled':
      return EXIT.cancelled;
    case 'paused':
      return EXIT.paused;
    case 'scheduled':
    case 'running':
    case 'rolling-back':
      return EXIT.error;
  }
}
