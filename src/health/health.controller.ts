import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { ApiRefusals, ErrorBodyDto } from '../common/openapi';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { Public } from '../auth/access.decorators';
import { Database } from '../database/database';

@ApiTags('health')
@ApiRefusals()
@Controller('health')
@Public()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly db: Database,
  ) {}

  @Get('live')
  @ApiOperation({ summary: 'The process is up' })
  @ApiOkResponse({
    schema: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } },
  })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  // Documented here: terminus's own document has no content type and not the error shape the filter answers in.
  @HealthCheck({ swaggerDocumentation: false })
  @ApiOkResponse({
    description: 'Ready.',
    schema: {
      type: 'object',
      required: ['status'],
      properties: {
        status: { type: 'string', enum: ['ok'] },
        info: { type: 'object' },
        error: { type: 'object' },
        details: { type: 'object' },
      },
    },
  })
  @ApiServiceUnavailableResponse({
    type: ErrorBodyDto,
    description:
      'Not ready: code UNAVAILABLE, and in details what the health check found (which dependency, since when).',
  })
  @ApiOperation({
    summary: 'Ready to serve: the database answers, and writes commit (after one failed for want of disk space)',
  })
  ready() {
    return this.health.check([
      async () => {
        const indicator = this.indicators.check('database');
        try {
          await this.db.ping();
          return indicator.up({ type: this.db.type });
        } catch (error) {
          // While writes fail (DISK_FULL...), say which way and since when: the operator acts on it.
          const trouble = this.db.writeTrouble;
          const why = trouble ? { code: trouble.code, since: trouble.since.toISOString() } : {};
          return indicator.down({ type: this.db.type, ...why, message: (error as Error).message });
        }
      },
    ]);
  }
}
