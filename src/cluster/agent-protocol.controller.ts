import { Audited, CallerOrigin } from '../audit/audit.decorators';
import type { Origin } from '../audit/origin';
import { Body, Controller, Post, Req, UseGuards } from '@nestjs/common';
import { ApiCreatedResponse, ApiOperation, ApiTags, ApiTooManyRequestsResponse } from '@nestjs/swagger';
import { ApiRefusals, ErrorBodyDto } from '../common/openapi';
import { Public } from '../auth/access.decorators';
import { FailedAttempts, PairingRateGuard } from '../auth/rate-limits';
import type { FastifyRequest } from 'fastify';
import { AgentProtocolService } from './agent-protocol.service';
import { PairAnswerDto, PairDto } from './dto/agent-protocol.dto';

/**
 * Pairing, the one agent-protocol route on Nest's pipeline; heartbeat, progress and complete are
 * native Fastify routes (./agent-protocol.routes.ts).
 */
@ApiTags('agent protocol')
@ApiRefusals()
@Controller('api/v1/agent')
export class AgentProtocolController {
  constructor(
    private readonly protocol: AgentProtocolService,
    private readonly failedAttempts: FailedAttempts,
  ) {}

  @Post('pair')
  @Public() // authenticated by the one-time pairing key in the body
  @UseGuards(PairingRateGuard)
  @Audited('agent.pair', 'agent')
  @ApiOperation({ summary: 'Trade a one-time pairing key for the agent token' })
  @ApiTooManyRequestsResponse({
    type: ErrorBodyDto,
    description:
      'Too many pairing calls, or failed pairing-key and token checks, from this address (PAIRING_RATE_LIMIT, AUTH_FAILURE_LIMIT); Retry-After says when to try again.',
  })
  @ApiCreatedResponse({ type: PairAnswerDto })
  pair(@Req() req: FastifyRequest, @Body() body: PairDto, @CallerOrigin() origin: Origin): Promise<PairAnswerDto> {
    return this.failedAttempts.check(req.ip, () => this.protocol.pair(body, origin.requestId));
  }
}
