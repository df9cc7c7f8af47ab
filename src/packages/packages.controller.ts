import { Audited, CallerOrigin } from '../audit/audit.decorators';
import type { Origin } from '../audit/origin';
import { Controller, Delete, Get, HttpCode, HttpStatus, Query, Res } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiTags,
} from '@nestjs/swagger';
import { ApiPackageContent, ApiRefusals } from '../common/openapi';
import type {} from '@fastify/static'; // reply.sendFile
import type { FastifyReply } from 'fastify';
import * as nodePath from 'node:path';
import parseRange from 'range-parser';
import { AgentRoute, CurrentPrincipal, RequireRole } from '../auth/access.decorators';
import type { Principal } from '../auth/principal';
import { DomainError } from '../common/errors';
import { IdParam } from '../common/id-param';
import { ListPackagesQuery, PackageDto, PackagePageDto, PackageStatusEventData } from './dto/package.dto';
import { PackagesService } from './packages.service';

/**
 * Packages: history, downloads, deletion. The upload (POST /api/v1/clusters/{id}/packages) is
 * PackageUploadController's, in the upgrades module: with mode=install it creates an upgrade.
 */
@ApiTags('packages')
@ApiRefusals()
// The data of package.status events (EventDataMap), which the event streams' schemas name.
@ApiExtraModels(PackageStatusEventData)
@Controller('api/v1')
export class PackagesController {
  constructor(private readonly packages: PackagesService) {}

  @Get('clusters/:clusterId/packages')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'Package history, newest first' })
  @ApiOkResponse({ type: PackagePageDto })
  list(@IdParam('clusterId') clusterId: string, @Query() query: ListPackagesQuery): Promise<PackagePageDto> {
    return this.packages.list(clusterId, query);
  }

  @Get('packages/:packageId')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'Get a package' })
  @ApiOkResponse({ type: PackageDto })
  get(@IdParam('packageId') id: string): Promise<PackageDto> {
    return this.packages.get(id);
  }

  @Delete('packages/:packageId')
  @HttpCode(204)
  @RequireRole('operator')
  @Audited('package.delete', 'package', 'packageId')
  @ApiOperation({ summary: 'Delete an available package' })
  @ApiNoContentResponse({ description: 'Deleted.' })
  delete(@IdParam('packageId') id: string, @CallerOrigin() origin: Origin): Promise<void> {
    return this.packages.delete(id, origin);
  }

  @Get('agent/packages/:packageId/content')
  @AgentRoute()
  @ApiProduces('application/gzip')
  @ApiOperation({ summary: "Download a package of the agent's cluster; byte ranges resume a broken download" })
  @ApiPackageContent()
  async download(
    @CurrentPrincipal() principal: Principal,
    @IdParam('packageId') id: string,
    @Res() res: FastifyReply,
  ): Promise<void> {
    await sendPackage(
      res,
      await this.packages.downloadFor((principal as Extract<Principal, { kind: 'agent' }>).agentId, id),
    );
  }

  @Get('packages/:packageId/content')
  @RequireRole('operator')
  @ApiProduces('application/gzip')
  @ApiOperation({
    summary: 'Download a package, to install it by hand on a legacy agent; byte ranges resume a broken download',
  })
  @ApiPackageContent()
  async downloadByHand(@IdParam('packageId') id: string, @Res() res: FastifyReply): Promise<void> {
    const stored = await this.packages.download(id);
    res.header(
      'Content-Disposition',
      `attachment; filename="${stored.pkg.product.replace(/[^\w.-]/g, '_')}-${stored.pkg.version}.tar.gz"`,
    );
    await sendPackage(res, stored);
  }
}

/** Streams a stored package with its hash; ranges answered 206, a range outside it 416. */
async function sendPackage(
  reply: FastifyReply,
  { path, pkg }: { path: string; pkg: { sha256: string; size: number } },
): Promise<void> {
  const etag = `"${pkg.sha256}"`;
  // If-Range against this ETag (send knows only its own): a match keeps the range, else the whole package.
  const headers = reply.request.raw.headers;
  if (headers['if-range'] !== undefined) {
    if (headers['if-range'] === etag) delete headers['if-range'];
    else delete headers.range;
  }
  // @fastify/send answers an unsatisfiable range with its own error; the API answers it in its shape.
  if (headers.range && parseRange(pkg.size, headers.range) === -1) {
    throw new DomainError(
      HttpStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
      'RANGE_NOT_SATISFIABLE',
      `The range asked for is outside the package's ${pkg.size} bytes; ask for a range within bytes 0-${pkg.size - 1}.`,
      undefined,
    );
  }
  reply.header('ETag', etag);
  reply.header('X-Content-SHA256', pkg.sha256);
  reply.header('Digest', `sha-256=${Buffer.from(pkg.sha256, 'hex').toString('base64')}`);
  reply.header('Content-Type', 'application/gzip');
  // @fastify/static answers Range with 206 and Content-Range, and honours If-Range against the ETag above.
  await reply.sendFile(nodePath.basename(path), nodePath.dirname(path), {
    acceptRanges: true,
    etag: false,
    lastModified: false,
    cacheControl: false,
  });
}
