import { Injectable, Logger } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { Clock } from '../common/clock';
import { deleteOlderThanDays } from '../common/retention';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { Leadership } from '../database/leadership';
import { ProgressEventRepository } from './progress-event.repository';

const EVERY_HOUR_MS = 3600_000;

/** Deletes events older than EVENT_RETENTION_DAYS; a viewer asking to replay from before then gets `reset`. */
@Injectable()
export class EventRetention {
  private readonly logger = new Logger(EventRetention.name);

  constructor(
    private readonly events: ProgressEventRepository,
    private readonly clock: Clock,
    @InjectAppConfig() private readonly config: AppConfig,
    private readonly leadership: Leadership,
  ) {}

  @Interval(EVERY_HOUR_MS)
  async periodic(): Promise<void> {
    if (this.leadership.isLeader) await this.clean();
  }

  clean(): Promise<number> {
    return deleteOlderThanDays(
      'event(s)',
      this.config.eventRetentionDays,
      this.clock.now(),
      (cutoff) => this.events.deleteOlderThan(cutoff),
      this.logger,
    );
  }
}
