import { Injectable, Logger } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { Clock } from '../common/clock';
import { deleteOlderThanDays } from '../common/retention';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { Leadership } from '../database/leadership';
import { AuditTrail } from './audit-trail.service';

const EVERY_HOUR_MS = 3600_000;

/** Deletes audit records older than AUDIT_RETENTION_DAYS (365 by default), on the leader only. */
@Injectable()
export class AuditRetention {
  private readonly logger = new Logger(AuditRetention.name);

  constructor(
    private readonly audit: AuditTrail,
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
      'audit record(s)',
      this.config.auditRetentionDays,
      this.clock.now(),
      (cutoff) => this.audit.deleteOlderThan(cutoff),
      this.logger,
    );
  }
}
