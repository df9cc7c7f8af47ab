import { Global, Module } from '@nestjs/common';
import { AuditRetention } from './audit-retention';
import { AuditTrail } from './audit-trail.service';

/**
 * The audit trail (docs/audit.md). Global, as the Database is: every module that changes state
 * records its changes in the same transaction. Imports nothing above the database.
 */
@Global()
@Module({
  providers: [AuditTrail, AuditRetention],
  exports: [AuditTrail],
})
export class AuditModule {}
