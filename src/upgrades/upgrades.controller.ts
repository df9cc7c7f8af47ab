import { Body, Controller, Get, HttpCode, HttpStatus, Post, Query } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiCreatedResponse,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { ApiRefusals } from '../common/openapi';
import { Audited, CallerOrigin, NotAudited } from '../audit/audit.decorators';
import type { Origin } from '../audit/origin';
import { RequireRole } from '../auth/access.decorators';
import { IdParam } from '../common/id-param';
import {
  CreateUpgradeDto,
  ListUpgradesQuery,
  MigrationDto,
  PreviewDto,
  UpgradeDto,
  UpgradePageDto,
} from './dto/upgrade.dto';
import { PairSwitchoverEventData, TaskProgressEventData, UpgradeStatusEventData } from './dto/upgrade-events.dto';
import { UpgradesService } from './upgrades.service';

@ApiTags('upgrades')
@ApiRefusals()
// The data of the upgrades' events (EventDataMap), which the event streams' schemas name.
@ApiExtraModels(UpgradeStatusEventData, TaskProgressEventData, PairSwitchoverEventData)
@Controller('api/v1')
export class UpgradesController {
  constructor(private readonly upgrades: UpgradesService) {}

  @Post('clusters/:clusterId/upgrades/preview')
  @RequireRole('operator')
  @NotAudited()
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'The plan, warnings, refusals and prerequisite check of an upgrade, without creating it' })
  @ApiOkResponse({ type: PreviewDto })
  preview(@IdParam('clusterId') clusterId: string, @Body() body: CreateUpgradeDto): Promise<PreviewDto> {
    return this.upgrades.preview(clusterId, body);
  }

  @Post('clusters/:clusterId/upgrades')
  @RequireRole('operator')
  @Audited('upgrade.create', 'upgrade')
  @ApiOperation({ summary: 'Create an upgrade: now, or at scheduledAt' })
  @ApiCreatedResponse({ type: UpgradeDto })
  create(
    @IdParam('clusterId') clusterId: string,
    @Body() body: CreateUpgradeDto,
    @CallerOrigin() by: Origin,
  ): Promise<UpgradeDto> {
    return this.upgrades.create(clusterId, body, by);
  }

  @Get('clusters/:clusterId/upgrades')
  @RequireRole('viewer')
  @ApiOperation({ summary: "A cluster's upgrades, newest first (without steps)" })
  @ApiOkResponse({ type: UpgradePageDto })
  list(@IdParam('clusterId') clusterId: string, @Query() query: ListUpgradesQuery): Promise<UpgradePageDto> {
    return this.upgrades.list(clusterId, query);
  }

  @Get('upgrades/:upgradeId')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'An upgrade with its steps' })
  @ApiOkResponse({ type: UpgradeDto })
  get(@IdParam('upgradeId') id: string): Promise<UpgradeDto> {
    return this.upgrades.get(id);
  }

  @Post('upgrades/:upgradeId/pause')
  @RequireRole('operator')
  @Audited('upgrade.pause', 'upgrade', 'upgradeId')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'No new step starts; running steps finish (409 unless running)' })
  @ApiOkResponse({ type: UpgradeDto })
  pause(@IdParam('upgradeId') id: string, @CallerOrigin() by: Origin): Promise<UpgradeDto> {
    return this.upgrades.pause(id, by);
  }

  @Post('upgrades/:upgradeId/resume')
  @RequireRole('operator')
  @Audited('upgrade.resume', 'upgrade', 'upgradeId')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Go on after a pause or after the canary units (409 unless paused)' })
  @ApiOkResponse({ type: UpgradeDto })
  resume(@IdParam('upgradeId') id: string, @CallerOrigin() by: Origin): Promise<UpgradeDto> {
    return this.upgrades.resume(id, by);
  }

  @Post('upgrades/:upgradeId/cancel')
  @RequireRole('operator')
  @Audited('upgrade.cancel', 'upgrade', 'upgradeId')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Stop every step not yet started; running steps finish (409 once ended)' })
  @ApiOkResponse({ type: UpgradeDto })
  cancel(@IdParam('upgradeId') id: string, @CallerOrigin() by: Origin): Promise<UpgradeDto> {
    return this.upgrades.cancel(id, by);
  }

  @Post('upgrades/:upgradeId/retry')
  @RequireRole('operator')
  @Audited('upgrade.retry', 'upgrade', 'upgradeId')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary:
      'Run the failed, missed or cancelled steps again, same upgrade, same package (409 while steps still run, or when none is left to retry)',
  })
  @ApiOkResponse({ type: UpgradeDto })
  retry(@IdParam('upgradeId') id: string, @CallerOrigin() by: Origin): Promise<UpgradeDto> {
    return this.upgrades.retry(id, by);
  }

  @Post('agents/:agentId/upgrade-now')
  @RequireRole('operator')
  @Audited('agent.upgrade-now', 'agent', 'agentId')
  @ApiOperation({ summary: "Bring one agent to its cluster's target version now, with the package that set it" })
  @ApiCreatedResponse({ type: UpgradeDto })
  upgradeNow(@IdParam('agentId') agentId: string, @CallerOrigin() by: Origin): Promise<UpgradeDto> {
    return this.upgrades.upgradeNow(agentId, by);
  }

  @Post('agents/:agentId/migrate')
  @RequireRole('operator')
  @Audited('agent.migrate', 'agent', 'agentId')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({ summary: "Run the data migration of the agent's installed version again" })
  @ApiAcceptedResponse({ type: MigrationDto })
  migrate(@IdParam('agentId') agentId: string, @CallerOrigin() by: Origin): Promise<MigrationDto> {
    return this.upgrades.migrate(agentId, by);
  }
}
