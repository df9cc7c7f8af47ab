import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsSingleLineText } from '../../common/validators';
import { Transform, Type } from 'class-transformer';
import { IsBoolean, IsIn, IsOptional, IsString, Length, Matches, ValidateIf, ValidateNested } from 'class-validator';
import type { MaintenanceWindow } from '../../policies/maintenance-windows';
import { CONCRETE_POLICIES, type ConcretePolicy, type UpgradeOptions } from '../../policies/upgrade-options';
import { AGENT_STATES, AgentState, VERSION_STATUSES, VersionStatus } from '../agent-state';
import { Cluster } from '../cluster.entity';
import { IsMaintenanceWindows, MaintenanceWindowDto, WINDOWS_DESCRIPTION } from './maintenance-window.dto';
import { UpgradeOptionsDto } from './upgrade-options.dto';

const trim = () => Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value));

export class CreateClusterDto {
  @ApiProperty({ description: 'Unique name of the cluster.', maxLength: 100 })
  @trim()
  @IsString()
  @Length(1, 100)
  @IsSingleLineText()
  name: string;

  @ApiProperty({
    description: 'The product its agents run; packages for another product are refused.',
    example: 'acme-agent',
  })
  @trim()
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, {
    message: 'product must be 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit',
  })
  product: string;

  @ApiPropertyOptional({ enum: CONCRETE_POLICIES, enumName: 'ClusterPolicy', default: 'simultaneous' })
  @IsOptional()
  @IsIn(CONCRETE_POLICIES, { message: `defaultPolicy must be one of: ${CONCRETE_POLICIES.join(', ')}` })
  defaultPolicy?: ConcretePolicy;

  @ApiPropertyOptional({ type: UpgradeOptionsDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => UpgradeOptionsDto)
  defaultOptions?: UpgradeOptionsDto;

  @ApiPropertyOptional({
    type: [MaintenanceWindowDto],
    description: `When its agents may be upgraded; absent or empty: any time. ${WINDOWS_DESCRIPTION}`,
  })
  @IsOptional()
  @IsMaintenanceWindows()
  windows?: MaintenanceWindow[];
  @ApiPropertyOptional({
    default: false,
    description:
      'Uploads must carry a signature by one of the cluster\'s signing keys, and its agents refuse to install a package without one (docs/packages.md, "Signing"). Turning it on needs a registered signing key.',
  })
  @IsOptional()
  @IsBoolean({ message: 'requireSignedPackages must be true or false' })
  requireSignedPackages?: boolean;
}

export class UpdateClusterDto {
  @ApiPropertyOptional({ enum: CONCRETE_POLICIES, enumName: 'ClusterPolicy' })
  @IsOptional()
  @IsIn(CONCRETE_POLICIES, { message: `defaultPolicy must be one of: ${CONCRETE_POLICIES.join(', ')}` })
  defaultPolicy?: ConcretePolicy;

  @ApiPropertyOptional({
    type: UpgradeOptionsDto,
    description: 'Merged into the current defaults: fields left out keep their value.',
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => UpgradeOptionsDto)
  defaultOptions?: UpgradeOptionsDto;

  @ApiPropertyOptional({
    type: [MaintenanceWindowDto],
    nullable: true,
    description: `Replaces its windows (absent: kept; [] or null: none, any time). ${WINDOWS_DESCRIPTION}`,
  })
  @ValidateIf((_, v) => v !== undefined && v !== null)
  @IsMaintenanceWindows()
  windows?: MaintenanceWindow[] | null;
  @ApiPropertyOptional({
    default: false,
    description:
      'Uploads must carry a signature by one of the cluster\'s signing keys, and its agents refuse to install a package without one (docs/packages.md, "Signing"). Turning it on needs a registered signing key.',
  })
  @IsOptional()
  @IsBoolean({ message: 'requireSignedPackages must be true or false' })
  requireSignedPackages?: boolean;
}

export interface ClusterCounts {
  versions: Record<string, number>;
  /** Agents per separately installed web-apps version (agents without one are not counted). */
  webappsVersions: Record<string, number>;
  states: Partial<Record<AgentState, number>>;
  versionStatuses: Partial<Record<VersionStatus, number>>;
  agentCount: number;
}

export class ClusterDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty() product: string;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The core version every agent should run (set by an upgrade of all agents with a full package).',
  })
  targetVersion: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    format: 'uuid',
    description: 'The package that set targetVersion; auto-upgrade uses it.',
  })
  targetPackageId: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description:
      'The web-apps version every agent should run (set by an upgrade of all agents with a webapps package; a new core target clears it).',
  })
  webappsTargetVersion: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'uuid' }) webappsTargetPackageId: string | null;
  @ApiProperty({ enum: CONCRETE_POLICIES, enumName: 'ClusterPolicy' }) defaultPolicy: ConcretePolicy;
  @ApiProperty({ type: UpgradeOptionsDto }) defaultOptions: UpgradeOptions;
  @ApiProperty({
    type: [MaintenanceWindowDto],
    description:
      "When its agents may be upgraded with options.respectWindows (an agent's own windows replace these); empty: any time.",
  })
  windows: MaintenanceWindow[];
  @ApiProperty({
    description:
      "Uploads must be signed by one of the cluster's signing keys, and agents refuse unsigned packages (GET .../signing-keys lists the keys).",
  })
  requireSignedPackages: boolean;
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'integer' },
    description: 'Agents per reported version.',
    example: { '10.2.0': 3 },
  })
  versions: Record<string, number>;
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'integer' },
    description: 'Agents per separately installed web-apps version.',
    example: { '10.2.1': 3 },
  })
  webappsVersions: Record<string, number>;
  @ApiProperty({
    description:
      'All agents that reported a version report the same one, none is unknown, and all run the same web apps.',
  })
  consistent: boolean;
  @ApiProperty() agentCount: number;
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'integer' },
    description: `Agents per state (${AGENT_STATES.join(', ')}).`,
  })
  states: Partial<Record<AgentState, number>>;
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'integer' },
    description: `Agents per version status (${VERSION_STATUSES.join(', ')}).`,
  })
  versionStatuses: Partial<Record<VersionStatus, number>>;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;
}

/** What a cluster's consistency is judged from; the metrics read the same facts with one query. */
export interface ConsistencyFacts {
  /** Distinct versions reported (an agent that reported none is not counted). */
  versions: number;
  /** Agents whose version status is unknown. */
  unknown: number;
  /** Distinct separately installed web-apps versions. */
  webappsVersions: number;
  /** Agents with no separate web-apps version. */
  withoutWebapps: number;
}

/** One version everywhere, none unknown, and one web-apps version: all on the same one, or none on any. */
export function isConsistent(facts: ConsistencyFacts): boolean {
  const webappsUniform = facts.webappsVersions === 0 || (facts.webappsVersions === 1 && facts.withoutWebapps === 0);
  return facts.versions <= 1 && facts.unknown === 0 && webappsUniform;
}

export function toClusterDto(cluster: Cluster, counts: ClusterCounts): ClusterDto {
  const webapps = Object.values(counts.webappsVersions);
  const consistent = isConsistent({
    versions: Object.keys(counts.versions).length,
    unknown: counts.versionStatuses.unknown ?? 0,
    webappsVersions: webapps.length,
    withoutWebapps: counts.agentCount - webapps.reduce((sum, n) => sum + n, 0),
  });
  return {
    id: cluster.id,
    name: cluster.name,
    product: cluster.product,
    targetVersion: cluster.targetVersion,
    targetPackageId: cluster.targetPackageId,
    webappsTargetVersion: cluster.webappsTargetVersion,
    webappsTargetPackageId: cluster.webappsTargetPackageId,
    defaultPolicy: cluster.defaultPolicy,
    defaultOptions: cluster.defaultOptions,
    windows: cluster.windows ?? [],
    requireSignedPackages: Boolean(cluster.requireSignedPackages),
    versions: counts.versions,
    webappsVersions: counts.webappsVersions,
    consistent,
    agentCount: counts.agentCount,
    states: counts.states,
    versionStatuses: counts.versionStatuses,
    createdAt: cluster.createdAt.toISOString(),
    updatedAt: cluster.updatedAt.toISOString(),
  };
}
