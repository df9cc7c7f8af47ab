import { Body, Controller, Delete, Get, HttpCode, Patch, Post, Put, Query, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiCreatedResponse,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { Audited, CallerOrigin } from '../audit/audit.decorators';
import type { Origin } from '../audit/origin';
import { ApiRefusals } from '../common/openapi';
import type { FastifyReply } from 'fastify';
import { RequireRole } from '../auth/access.decorators';
import { IdParam } from '../common/id-param';
import { PageQuery } from '../common/page-query';
import { AgentCommandsService } from './agent-commands.service';
import { AgentsService } from './agents.service';
import { AgentCommandPageDto, CommandStatusEventData } from './dto/agent-protocol.dto';
import {
  AgentDto,
  AgentPageDto,
  AgentStatusEventData,
  AutoUpgradeDto,
  ListAgentsQuery,
  PairingKeyDto,
  RegisterAgentDto,
  RegisteredAgentDto,
  RemovalDto,
  UpdateAgentDto,
} from './dto/agent.dto';

@ApiTags('agents')
@ApiRefusals()
// The data of the agents' events (EventDataMap), which the event streams' schemas name.
@ApiExtraModels(AgentStatusEventData, CommandStatusEventData)
@Controller('api/v1')
export class AgentsController {
  constructor(
    private readonly agents: AgentsService,
    private readonly agentCommands: AgentCommandsService,
  ) {}

  @Post('clusters/:clusterId/agents')
  @RequireRole('operator')
  @Audited('agent.register', 'agent')
  @ApiOperation({ summary: 'Register an agent; the answer holds its one-time pairing key' })
  @ApiCreatedResponse({ type: RegisteredAgentDto })
  register(
    @IdParam('clusterId') clusterId: string,
    @Body() body: RegisterAgentDto,
    @CallerOrigin() origin: Origin,
  ): Promise<RegisteredAgentDto> {
    return this.agents.register(clusterId, body, origin);
  }

  @Get('clusters/:clusterId/agents')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'List agents, filtered by state, version status, role, pair' })
  @ApiOkResponse({ type: AgentPageDto })
  list(@IdParam('clusterId') clusterId: string, @Query() query: ListAgentsQuery): Promise<AgentPageDto> {
    return this.agents.list(clusterId, query);
  }

  @Get('agents/:agentId')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'Get an agent' })
  @ApiOkResponse({ type: AgentDto })
  get(@IdParam('agentId') id: string): Promise<AgentDto> {
    return this.agents.get(id);
  }

  @Patch('agents/:agentId')
  @RequireRole('operator')
  @Audited('agent.update', 'agent', 'agentId')
  @ApiOperation({ summary: 'Change name, address, role, pair, labels or maintenance windows' })
  @ApiOkResponse({ type: AgentDto })
  update(
    @IdParam('agentId') id: string,
    @Body() body: UpdateAgentDto,
    @CallerOrigin() origin: Origin,
  ): Promise<AgentDto> {
    return this.agents.update(id, body, origin);
  }

  @Get('agents/:agentId/commands')
  @RequireRole('viewer')
  @ApiOperation({
    summary: "An agent's commands (upgrades, switchovers, migrations), newest first, with how each ended",
  })
  @ApiOkResponse({ type: AgentCommandPageDto })
  commands(@IdParam('agentId') id: string, @Query() query: PageQuery): Promise<AgentCommandPageDto> {
    return this.agentCommands.list(id, query.limit ?? 50, query.offset ?? 0);
  }

  @Put('agents/:agentId/auto-upgrade')
  @RequireRole('admin', 'Only admins may turn auto-upgrade on or off; ask an admin.')
  @Audited('agent.auto-upgrade', 'agent', 'agentId')
  @ApiOperation({ summary: 'Turn auto-upgrade on or off for an agent (admin only)' })
  @ApiOkResponse({ type: AgentDto })
  setAutoUpgrade(
    @IdParam('agentId') id: string,
    @Body() body: AutoUpgradeDto,
    @CallerOrigin() origin: Origin,
  ): Promise<AgentDto> {
    return this.agents.setAutoUpgrade(id, body.enabled, origin);
  }

  @Delete('agents/:agentId')
  @RequireRole('operator')
  @Audited('agent.remove', 'agent', 'agentId')
  @ApiOperation({ summary: 'Remove an agent: at once if idle or offline (200), else it becomes terminating (202)' })
  @ApiOkResponse({ type: RemovalDto, description: 'Removed.' })
  @ApiAcceptedResponse({
    type: RemovalDto,
    description: 'The agent is busy: it is terminating, and goes when it next reports idle.',
  })
  async remove(
    @IdParam('agentId') id: string,
    @Res({ passthrough: true }) res: FastifyReply,
    @CallerOrigin() origin: Origin,
  ): Promise<RemovalDto> {
    const result = await this.agents.remove(id, origin);
    res.status(result.removed ? 200 : 202);
    return result;
  }

  @Post('agents/:agentId/pairing-key')
  @HttpCode(201)
  @RequireRole('operator')
  @Audited('agent.pairing-key', 'agent', 'agentId')
  @ApiOperation({ summary: 'Issue a new pairing key for a reinstalled agent; its old token stops working' })
  @ApiCreatedResponse({ type: PairingKeyDto })
  issuePairingKey(@IdParam('agentId') id: string, @CallerOrigin() origin: Origin): Promise<PairingKeyDto> {
    return this.agents.issuePairingKey(id, origin);
  }
}
