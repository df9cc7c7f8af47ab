import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { RequireRole } from '../auth/access.decorators';
import { Metrics } from './metrics.service';

/**
 * GET /metrics in Prometheus' text format, for an admin token (a scrape reads the whole fleet).
 * Left out of the OpenAPI document: it is for Prometheus, not for API clients (docs/metrics.md).
 */
@ApiExcludeController()
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: Metrics) {}

  @Get()
  @RequireRole('admin', 'Metrics need an admin token: a scrape reads every cluster.')
  @Header('Cache-Control', 'no-store')
  async scrape(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    const body = await this.metrics.scrape();
    void reply.type(this.metrics.contentType);
    return body;
  }
}
