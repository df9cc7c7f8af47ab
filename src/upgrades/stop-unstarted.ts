import type { AgentCommandsService } from '../cluster/agent-commands.service';
import type { Tx } from '../database/database';
import { ENDED_STEP_STATUSES, type UpgradeStep } from './upgrade-step.entity';

/**
 * What a cancel and a rollback do first: every step that has not ended and is not running is
 * cancelled with `why` (a command queued but not fetched yet is withdrawn: the agent never sees
 * it). Returns the steps changed, for the caller to save with UpgradeWriter in its transaction.
 */
export async function stopUnstarted(
  tx: Tx,
  commands: Pick<AgentCommandsService, 'cancel'>,
  steps: UpgradeStep[],
  now: Date,
  why: { command: string; step: string },
): Promise<UpgradeStep[]> {
  const stopped = steps.filter((s) => !ENDED_STEP_STATUSES.includes(s.status) && s.status !== 'running');
  for (const step of stopped) {
    if (step.commandId && step.waitingFor === 'pickup') await commands.cancel(tx, step.commandId, why.command);
    Object.assign(step, { status: 'cancelled', error: why.step, waitingFor: null, endedAt: now });
  }
  return stopped;
}
