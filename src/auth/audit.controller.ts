import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from './access.decorators';
import { ApiRefusals } from '../common/openapi';
import { AuditTrail } from '../audit/audit-trail.service';
import { AuditPageDto, AuditQuery } from '../audit/dto/audit.dto';

/** The audit trail's read route: here, above the trail (src/audit), because it needs the access decorators. */
@ApiTags('audit')
@ApiRefusals()
@Controller('api/v1/audit')
export class AuditController {
  constructor(private readonly audit: AuditTrail) {}

  @Get()
  @RequireRole('admin', 'The audit trail is for admins: it names every token and what it did.')
  @ApiOperation({
    summary: 'Who did what: every state-changing call (refused ones too) and what Lockstep did by itself',
    description: 'Newest first; filter by actor, cluster, action, target, outcome and time; page with beforeId.',
  })
  @ApiOkResponse({ type: AuditPageDto })
  list(@Query() query: AuditQuery): Promise<AuditPageDto> {
    return this.audit.list(query);
  }
}
