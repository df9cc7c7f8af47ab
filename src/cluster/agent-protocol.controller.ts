import { Body, Controller, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiTags, ApiTooManyRequestsResponse } from '@nestjs/swagger';
import { AgentRoute, CurrentPrincipal, Public } from '../auth/access.decorators';
import type { Principal } from '../auth/principal';
import { FailedAttempts, PairingRateGuard } from '../auth/rate-limits';
import type { Request } from 'express';
import { IdParam } from '../common/id-param';
import { AgentCommandsService } from './agent-commands.service';
import { AgentProtocolService } from './agent-protocol.service';
import { CommandStateDto, CompleteReportDto, HeartbeatAnswerDto, HeartbeatDto, PairAnswerDto, PairDto, ProgressReportDto } from './dto/agent-protocol.dto';

/** An agent route is reached only with an agent token, so the principal is always an agent here. */
const agentIdOf = (principal: Principal): string => (principal as Extract<Principal, { kind: 'agent' }>).agentId;

@ApiTags('agent protocol')
@Controller('api/v1/agent')
export class AgentProtocolController {
  constructor(
    private readonly protocol: AgentProtocolService,
    private readonly commands: AgentCommandsService,
    private readonly failedAttempts: FailedAttempts,
  ) {}

  @Post('pair')
  @Public() // authenticated by the one-time pairing key in the body
  @UseGuards(PairingRateGuard)
  @ApiOperation({ summary: 'Trade a one-time pairing key for the agent token' })
  @ApiTooManyRequestsResponse({ description: 'Too many pairing calls, or failed pairing-key and token checks, from this address (PAIRING_RATE_LIMIT, AUTH_FAILURE_LIMIT); Retry-After says when to try again.' })
  pair(@Req() req: Request, @Body() body: PairDto): Promise<PairAnswerDto> {
    return this.failedAttempts.check(req.ip, () => this.protocol.pair(body));
  }

  @Post('heartbeat')
  @HttpCode(200)
  @AgentRoute()
  @ApiOperation({ summary: 'Report version, work and facts; get commands, hold and the next poll time' })
  heartbeat(@CurrentPrincipal() principal: Principal, @Body() body: HeartbeatDto): Promise<HeartbeatAnswerDto> {
    return this.protocol.heartbeat(agentIdOf(principal), body);
  }

  @Post('commands/:commandId/progress')
  @HttpCode(200)
  @AgentRoute()
  @ApiOperation({ summary: 'Report the phase and percent of a command (idempotent)' })
  progress(@CurrentPrincipal() principal: Principal, @IdParam('commandId') commandId: string, @Body() body: ProgressReportDto): Promise<CommandStateDto> {
    return this.commands.reportProgress(agentIdOf(principal), commandId, body);
  }

  @Post('commands/:commandId/complete')
  @HttpCode(200)
  @AgentRoute()
  @ApiOperation({ summary: 'Report the end of a command (idempotent)' })
  complete(@CurrentPrincipal() principal: Principal, @IdParam('commandId') commandId: string, @Body() body: CompleteReportDto): Promise<CommandStateDto> {
    return this.commands.reportComplete(agentIdOf(principal), commandId, body);
  }
}
