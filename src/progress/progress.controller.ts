import { NotAudited } from '../audit/audit.decorators';
import { Body, Controller, Get, Headers, Post, Query, Req, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiHeader, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { ApiRefusals } from '../common/openapi';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CurrentPrincipal, RequireRole, StreamRoute } from '../auth/access.decorators';
import type { Principal } from '../auth/principal';
import { StreamTicketsService } from '../auth/stream-tickets.service';
import { BadInputError } from '../common/errors';
import { IdParam } from '../common/id-param';
import {
  ApiEventStream,
  HistoryPageDto,
  HistoryQuery,
  StreamQuery,
  StreamTicketDto,
  StreamTicketRequestDto,
  toEventDto,
  UpgradeStreamQuery,
} from './event.dto';
import { EventStreams } from './event-streams';
import { ProgressEventRepository } from './progress-event.repository';
import { StreamScopes } from './stream-scopes';

/** Last-Event-ID from the header (what EventSource sends on reconnect) or the query. */
function lastEventIdFrom(header: string | undefined, query: StreamQuery): number | undefined {
  const raw = header ?? query.lastEventId;
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d{1,15}$/.test(raw)) {
    throw new BadInputError('Last-Event-ID must be a whole number: the id of the last event received.', [
      { field: 'Last-Event-ID', problems: ['must be a whole number, 0 or more'] },
    ]);
  }
  return Number(raw);
}

const lastEventIdHeader = ApiHeader({
  name: 'Last-Event-ID',
  required: false,
  description: 'Replay every event after this id, then go live.',
});

@ApiTags('progress')
@ApiRefusals()
@Controller('api/v1')
export class ProgressController {
  constructor(
    private readonly streams: EventStreams,
    private readonly scopes: StreamScopes,
    private readonly events: ProgressEventRepository,
    private readonly tickets: StreamTicketsService,
  ) {}

  @Get('clusters/:clusterId/events')
  @StreamRoute('cluster', 'clusterId')
  @ApiProduces('text/event-stream')
  @lastEventIdHeader
  @ApiOperation({
    summary: "A cluster's events as Server-Sent Events (agent.status, upgrade.status, task.progress, ...)",
  })
  @ApiEventStream()
  async clusterEvents(
    @IdParam('clusterId') id: string,
    @Query() query: StreamQuery,
    @Headers('last-event-id') header: string | undefined,
    @Req() req: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const lastEventId = lastEventIdFrom(header, query);
    const scope = await this.scopes.require('cluster', id);
    reply.hijack(); // the stream writes to the connection itself, for as long as the viewer stays
    await this.streams.stream(req.raw, reply.raw, scope, lastEventId);
  }

  @Get('upgrades/:upgradeId/events')
  @StreamRoute('upgrade', 'upgradeId')
  @ApiProduces('text/event-stream')
  @lastEventIdHeader
  @ApiOperation({
    summary: "An upgrade's events as Server-Sent Events",
    description:
      'Once the upgrade ended (final status, no step running) and every event up to then was sent, an `event: end` carries its final upgrade.status data and the stream closes; its id resumes there, so a reconnect gets the end at once. An EventSource reconnects by itself when a stream closes: call close() on `end`. `?follow=true` keeps the stream open instead (a later retry of the upgrade).',
  })
  @ApiEventStream()
  async upgradeEvents(
    @IdParam('upgradeId') id: string,
    @Query() query: UpgradeStreamQuery,
    @Headers('last-event-id') header: string | undefined,
    @Req() req: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const lastEventId = lastEventIdFrom(header, query);
    const scope = await this.scopes.require('upgrade', id);
    reply.hijack();
    await this.streams.stream(req.raw, reply.raw, scope, lastEventId, { endWhenUpgradeEnds: query.follow !== 'true' });
  }

  @Get('upgrades/:upgradeId/history')
  @RequireRole('viewer')
  @ApiOperation({ summary: "An upgrade's events as JSON, oldest first, paged by id" })
  @ApiOkResponse({ type: HistoryPageDto })
  async history(@IdParam('upgradeId') id: string, @Query() query: HistoryQuery): Promise<HistoryPageDto> {
    const scope = await this.scopes.require('upgrade', id);
    const limit = query.limit ?? 200;
    const items = await this.events.inScope(scope, query.afterId ?? 0, Number.MAX_SAFE_INTEGER, limit);
    return { items: items.map(toEventDto), nextAfterId: items.length === limit ? items[items.length - 1].id : null };
  }

  @Post('stream-tickets')
  @RequireRole('viewer')
  @NotAudited()
  @ApiOperation({ summary: 'A short-lived ticket to open one event stream with ?ticket= (for EventSource)' })
  @ApiCreatedResponse({ type: StreamTicketDto })
  async issueTicket(
    @Body() body: StreamTicketRequestDto,
    @CurrentPrincipal() caller: Principal,
  ): Promise<StreamTicketDto> {
    await this.scopes.require(body.stream, body.id);
    const { ticket, expiresAt } = await this.tickets.issue(caller, body.stream, body.id);
    const path =
      body.stream === 'cluster' ? `/api/v1/clusters/${body.id}/events` : `/api/v1/upgrades/${body.id}/events`;
    return { ticket, expiresAt: expiresAt.toISOString(), url: `${path}?ticket=${encodeURIComponent(ticket)}` };
  }
}
