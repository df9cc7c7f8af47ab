import { Audited, CallerOrigin } from '../audit/audit.decorators';
import type { Origin } from '../audit/origin';
import { Controller, Post, Req, Res } from '@nestjs/common';
import {
  ApiBody,
  ApiConsumes,
  ApiCreatedResponse,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RequireRole } from '../auth/access.decorators';
import { IdParam } from '../common/id-param';
import { ApiRefusals } from '../common/openapi';
import { PackageDto, UploadPackageForm } from '../packages/dto/package.dto';
import { PackagesService } from '../packages/packages.service';
import { UploadReceiver } from '../packages/upload-receiver';
import { InstalledPackageDto } from './dto/upgrade.dto';
import { UpgradesService } from './upgrades.service';

/**
 * The package upload. Its route is here, not in the packages module, because mode=install also
 * creates an upgrade: this module calls the packages module with what that takes
 * (UpgradesService.acceptUpload), the packages module knows nothing of upgrades, and the answer is
 * typed (InstalledPackageDto). See docs/ARCHITECTURE.md, "Who imports whom".
 */
@ApiTags('packages')
@ApiRefusals()
@Controller('api/v1')
export class PackageUploadController {
  constructor(
    private readonly packages: PackagesService,
    private readonly upgrades: UpgradesService,
    private readonly receiver: UploadReceiver,
  ) {}

  @Post('clusters/:clusterId/packages')
  @RequireRole('operator')
  @Audited('package.upload', 'package')
  @ApiConsumes('multipart/form-data')
  @ApiBody({ type: UploadPackageForm })
  @ApiOperation({
    summary: 'Upload a package (201), or find the same bytes already uploaded (200)',
    description:
      'mode=upload-only answers the package. mode=install also takes the upgrade fields target, policy, options (JSON text) and scheduledAt, creates the upgrade in the same transaction, and answers 201 {package, upgrade}; target defaults to {"all": true}.',
  })
  @ApiCreatedResponse({
    description: 'A new package (mode=upload-only), or the package and its upgrade (mode=install).',
    schema: { oneOf: [{ $ref: getSchemaPath(PackageDto) }, { $ref: getSchemaPath(InstalledPackageDto) }] },
  })
  @ApiOkResponse({ type: PackageDto, description: 'The same bytes were uploaded before: that package.' })
  @ApiExtraModels(PackageDto, InstalledPackageDto)
  async upload(
    @IdParam('clusterId') clusterId: string,
    @CallerOrigin() by: Origin,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<PackageDto | InstalledPackageDto> {
    await this.packages.requireCluster(clusterId);
    const upload = await this.receiver.receive(req.raw, res.raw);
    const { created, pkg, installed } = await this.upgrades.acceptUpload(clusterId, upload, by);
    if (installed !== undefined) {
      res.status(201);
      return { package: pkg, upgrade: installed };
    }
    res.status(created ? 201 : 200);
    return pkg;
  }
}
