import { Controller, Delete, Get, HttpCode, HttpStatus, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AgentRoute, CurrentPrincipal, RequireRole } from '../auth/access.decorators';
import type { Principal } from '../auth/principal';
import { DomainError } from '../common/errors';
import { IdParam } from '../common/id-param';
import { ListPackagesQuery, PackageDto, PackagePageDto, UploadPackageForm } from './dto/package.dto';
import { PackagesService } from './packages.service';
import { UploadReceiver } from './upload-receiver';

@ApiTags('packages')
@Controller('api/v1')
export class PackagesController {
  constructor(
    private readonly packages: PackagesService,
    private readonly receiver: UploadReceiver,
  ) {}

  @Post('clusters/:clusterId/packages')
  @RequireRole('operator')
  @ApiConsumes('multipart/form-data')
  @ApiBody({ type: UploadPackageForm })
  @ApiOperation({
    summary: 'Upload a package (201), or find the same bytes already uploaded (200)',
    description: 'mode=upload-only answers the package. mode=install also takes the upgrade fields target, policy, options (JSON text) and scheduledAt, creates the upgrade in the same transaction, and answers 201 {package, upgrade}; target defaults to {"all": true}.',
  })
  async upload(@IdParam('clusterId') clusterId: string, @CurrentPrincipal() uploader: Principal, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<PackageDto | { package: PackageDto; upgrade: unknown }> {
    await this.packages.requireCluster(clusterId);
    const upload = await this.receiver.receive(req, res);
    const { created, pkg, upgrade } = await this.packages.accept(clusterId, upload, uploader);
    if (upgrade !== undefined) {
      res.status(201);
      return { package: pkg, upgrade };
    }
    res.status(created ? 201 : 200);
    return pkg;
  }

  @Get('clusters/:clusterId/packages')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'Package history, newest first' })
  list(@IdParam('clusterId') clusterId: string, @Query() query: ListPackagesQuery): Promise<PackagePageDto> {
    return this.packages.list(clusterId, query);
  }

  @Get('packages/:packageId')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'Get a package' })
  get(@IdParam('packageId') id: string): Promise<PackageDto> {
    return this.packages.get(id);
  }

  @Delete('packages/:packageId')
  @HttpCode(204)
  @RequireRole('operator')
  @ApiOperation({ summary: 'Delete an available package' })
  delete(@IdParam('packageId') id: string): Promise<void> {
    return this.packages.delete(id);
  }

  @Get('agent/packages/:packageId/content')
  @AgentRoute()
  @ApiProduces('application/gzip')
  @ApiOperation({ summary: "Download a package of the agent's cluster; byte ranges resume a broken download" })
  async download(@CurrentPrincipal() principal: Principal, @IdParam('packageId') id: string, @Res() res: Response): Promise<void> {
    await sendPackage(res, await this.packages.downloadFor((principal as Extract<Principal, { kind: 'agent' }>).agentId, id));
  }

  @Get('packages/:packageId/content')
  @RequireRole('operator')
  @ApiProduces('application/gzip')
  @ApiOperation({ summary: 'Download a package, to install it by hand on a legacy agent; byte ranges resume a broken download' })
  async downloadByHand(@IdParam('packageId') id: string, @Res() res: Response): Promise<void> {
    const stored = await this.packages.download(id);
    res.setHeader('Content-Disposition', `attachment; filename="${stored.pkg.product.replace(/[^\w.-]/g, '_')}-${stored.pkg.version}.tar.gz"`);
    await sendPackage(res, stored);
  }
}

/** Streams a stored package with its hash; ranges answered 206, a range outside it 416. */
async function sendPackage(res: Response, { path, pkg }: { path: string; pkg: { sha256: string; size: number } }): Promise<void> {
  res.setHeader('ETag', `"${pkg.sha256}"`);
  res.setHeader('X-Content-SHA256', pkg.sha256);
  res.setHeader('Digest', `sha-256=${Buffer.from(pkg.sha256, 'hex').toString('base64')}`);
  await new Promise<void>((resolve, reject) =>
    // send answers Range with 206 and Content-Range, and honours If-Range against the ETag above.
    res.sendFile(path, { acceptRanges: true, etag: false, lastModified: false, cacheControl: false, headers: { 'Content-Type': 'application/gzip' } }, (error?: Error & { status?: number }) => {
      if (!error || res.headersSent) return resolve(); // done, or the agent went away mid-download (it resumes with a range)
      if (error.status === 416) {
        res.removeHeader('Content-Range');
        return reject(new DomainError(HttpStatus.REQUESTED_RANGE_NOT_SATISFIABLE, 'RANGE_NOT_SATISFIABLE', `The range asked for is outside the package's ${pkg.size} bytes; ask for a range within bytes 0-${pkg.size - 1}.`));
      }
      reject(error);
    }),
  );
}
