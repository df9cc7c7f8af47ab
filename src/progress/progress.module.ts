import { Module } from '@nestjs/common';
import { EventLog } from './event-log.service';

/** The event log and its streams. Knows no domain rules: the domain publishes to it. */
@Module({
  providers: [EventLog],
  exports: [EventLog],
})
export class ProgressModule {}
