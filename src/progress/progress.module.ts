import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { EventFeed } from './event-feed';
import { EventLog } from './event-log.service';
import { EventRetention } from './event-retention';
import { EventStreams } from './event-streams';
import { ProgressController } from './progress.controller';
import { ProgressEventRepository } from './progress-event.repository';
import { StreamScopes } from './stream-scopes';

/** The event log, its live feed, the SSE streams and their fan-out. Knows no domain rules: the domain publishes to it. */
@Module({
  imports: [AuthModule],
  controllers: [ProgressController],
  providers: [ProgressEventRepository, EventFeed, EventLog, EventStreams, EventRetention, StreamScopes],
  exports: [EventLog, EventFeed, StreamScopes],
})
export class ProgressModule {}
