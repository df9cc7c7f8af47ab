import { Body, Controller, Delete, Get, HttpCode, Patch, Post } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/access.decorators';
import { IdParam } from '../common/id-param';
import { ClustersService } from './clusters.service';
import { ClusterDto, CreateClusterDto, UpdateClusterDto } from './dto/cluster.dto';

@ApiTags('clusters')
@Controller('api/v1/clusters')
export class ClustersController {
  constructor(private readonly clusters: ClustersService) {}

  @Post()
  @RequireRole('admin')
  @ApiOperation({ summary: 'Create a cluster' })
  create(@Body() body: CreateClusterDto): Promise<ClusterDto> {
    return this.clusters.create(body);
  }

  @Get()
  @RequireRole('viewer')
  @ApiOperation({ summary: 'List clusters with their version summary' })
  list(): Promise<ClusterDto[]> {
    return this.clusters.list();
  }

  @Get(':clusterId')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'Get a cluster with its version summary and counts' })
  get(@IdParam('clusterId') id: string): Promise<ClusterDto> {
    return this.clusters.get(id);
  }

  @Patch(':clusterId')
  @RequireRole('admin')
  @ApiOperation({ summary: 'Change the default policy and default upgrade options' })
  update(@IdParam('clusterId') id: string, @Body() body: UpdateClusterDto): Promise<ClusterDto> {
    return this.clusters.update(id, body);
  }

  @Delete(':clusterId')
  @HttpCode(204)
  @RequireRole('admin')
  @ApiOperation({ summary: 'Delete an empty cluster (no agents, no packages, no upgrades)' })
  delete(@IdParam('clusterId') id: string): Promise<void> {
    return this.clusters.delete(id);
  }
}
