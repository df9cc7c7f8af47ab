import { Controller, HttpCode, HttpStatus, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Audited, CallerOrigin, NotAudited } from '../audit/audit.decorators';
import type { Origin } from '../audit/origin';
import { RequireRole } from '../auth/access.decorators';
import { IdParam } from '../common/id-param';
import { ApiRefusals } from '../common/openapi';
import { RollbackPreviewDto, UpgradeDto } from './dto/upgrade.dto';
import { RollbacksService } from './rollbacks.service';

/** Rolling an upgrade back (docs/rollback.md). */
@ApiTags('upgrades')
@ApiRefusals()
@Controller('api/v1/upgrades/:upgradeId/rollback')
export class RollbacksController {
  constructor(private readonly rollbacks: RollbacksService) {}

  @Post('preview')
  @RequireRole('viewer')
  @NotAudited()
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: 'What rolling the upgrade back would do now: its steps, the agents left as they are, and refusals',
  })
  @ApiOkResponse({ type: RollbackPreviewDto })
  preview(@IdParam('upgradeId') id: string): Promise<RollbackPreviewDto> {
    return this.rollbacks.preview(id);
  }

  @Post()
  @RequireRole('operator')
  @Audited('upgrade.rollback', 'upgrade', 'upgradeId')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary:
      'Bring every agent the upgrade changed back to its old version with the data of its backup, and each pair its roles, never stopping a serving member (422 when an agent cannot be brought back; 409 when there is nothing to roll back)',
  })
  @ApiOkResponse({ type: UpgradeDto })
  rollBack(@IdParam('upgradeId') id: string, @CallerOrigin() by: Origin): Promise<UpgradeDto> {
    return this.rollbacks.rollBack(id, by);
  }
}
