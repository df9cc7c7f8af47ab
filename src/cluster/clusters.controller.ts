import { Body, Controller, Delete, Get, HttpCode, Patch, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Audited, CallerOrigin } from '../audit/audit.decorators';
import type { Origin } from '../audit/origin';
import { ApiRefusals } from '../common/openapi';
import { RequireRole } from '../auth/access.decorators';
import { IdParam } from '../common/id-param';
import { ClustersService } from './clusters.service';
import { ClusterDto, CreateClusterDto, UpdateClusterDto } from './dto/cluster.dto';

@ApiTags('clusters')
@ApiRefusals()
@Controller('api/v1/clusters')
export class ClustersController {
  constructor(private readonly clusters: ClustersService) {}

  @Post()
  @RequireRole('admin')
  @Audited('cluster.create', 'cluster')
  @ApiOperation({ summary: 'Create a cluster' })
  @ApiCreatedResponse({ type: ClusterDto })
  create(@Body() body: CreateClusterDto, @CallerOrigin() origin: Origin): Promise<ClusterDto> {
    return this.clusters.create(body, origin);
  }

  @Get()
  @RequireRole('viewer')
  @ApiOperation({ summary: 'List clusters with their version summary' })
  @ApiOkResponse({ type: [ClusterDto] })
  list(): Promise<ClusterDto[]> {
    return this.clusters.list();
  }

  @Get(':clusterId')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'Get a cluster with its version summary and counts' })
  @ApiOkResponse({ type: ClusterDto })
  get(@IdParam('clusterId') id: string): Promise<ClusterDto> {
    return this.clusters.get(id);
  }

  @Patch(':clusterId')
  @RequireRole('admin')
  @Audited('cluster.update', 'cluster', 'clusterId')
  @ApiOperation({ summary: 'Change the default policy, the default upgrade options or the maintenance windows' })
  @ApiOkResponse({ type: ClusterDto })
  update(
    @IdParam('clusterId') id: string,
    @Body() body: UpdateClusterDto,
    @CallerOrigin() origin: Origin,
  ): Promise<ClusterDto> {
    return this.clusters.update(id, body, origin);
  }

  @Delete(':clusterId')
  @HttpCode(204)
  @RequireRole('admin')
  @Audited('cluster.delete', 'cluster', 'clusterId')
  @ApiOperation({ summary: 'Delete an empty cluster (no agents, no packages, no upgrades)' })
  @ApiNoContentResponse({ description: 'Deleted.' })
  delete(@IdParam('clusterId') id: string, @CallerOrigin() origin: Origin): Promise<void> {
    return this.clusters.delete(id, origin);
  }
}
