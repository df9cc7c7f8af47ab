import type { Logger } from '@nestjs/common';

/**
 * One run of a retention job (the events', the audit trail's): deletes through `remove` what is
 * older than `days` before `now` and logs how many. Never throws: a failed run is logged, and the
 * next hourly one tries again.
 */
export async function deleteOlderThanDays(
  what: string,
  days: number,
  now: Date,
  remove: (cutoff: Date) => Promise<number>,
  logger: Logger,
): Promise<number> {
  try {
    const deleted = await remove(new Date(now.getTime() - days * 86400_000));
    if (deleted) logger.log(`deleted ${deleted} ${what} older than ${days} days`);
    return deleted;
  } catch (error) {
    logger.error(`${what} retention failed: ${(error as Error).message}`);
    return 0;
  }
}
