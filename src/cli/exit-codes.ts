import type { Schemas } from './api';

/**
 * What `lockstep` exits with, so a pipeline can gate on an upgrade (docs/cli.md lists them).
 * Each way an upgrade can stop short has its own code.
 */
export const EXIT = {
  ok: 0,
  /** A refusal, a server or connection problem: the message says which. */
  error: 1,
  /** The command line itself is wrong. */
  usage: 2,
  failed: 3,
  completedWithErrors: 4,
  cancelled: 5,
  /** Paused (a canary waiting for a look, or an operator): nothing goes on until someone resumes it. */
  paused: 6,
} as const;

/** The exit code for an upgrade that ended, or paused, with this status. */
export function exitCodeForUpgrade(status: Schemas['UpgradeStatus']): number {
  switch (status) {
    case 'succeeded':
      return EXIT.ok;
    case 'failed':
      return EXIT.failed;
    case 'completed-with-errors':
      return EXIT.completedWithErrors;
    case 'cancelled':
      return EXIT.cancelled;
    case 'paused':
      return EXIT.paused;
    case 'scheduled':
    case 'running':
      return EXIT.error;
  }
}
