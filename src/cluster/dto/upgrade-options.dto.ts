import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsBoolean, IsInt, Matches, Max, Min } from 'class-validator';
import { IsCountOrPercent, IsFlatMap, IsOptionalNotNull } from '../../common/validators';
import type { AgentOptionValue, CountOrPercent } from '../../policies/upgrade-options';

const countOrPercent = {
  oneOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', pattern: '^\\d{1,3}%$' },
  ],
};

/** Upgrade options; every field optional (absent, not null), what is absent comes from the cluster's defaults. */
export class UpgradeOptionsDto {
  @ApiPropertyOptional({
    ...countOrPercent,
    description: 'Units at once: a count or "25%"; 0 = all. A failover pair is one unit.',
  })
  @IsOptionalNotNull()
  @IsCountOrPercent()
  maxParallel?: CountOrPercent;

  @ApiPropertyOptional({
    ...countOrPercent,
    description: 'Failed units (count or percent) after which no new unit starts; running ones finish.',
  })
  @IsOptionalNotNull()
  @IsCountOrPercent()
  failureThreshold?: CountOrPercent;

  @ApiPropertyOptional({ description: 'Units to run first; then the upgrade pauses for a resume.', minimum: 0 })
  @IsOptionalNotNull()
  @IsInt()
  @Min(0)
  canary?: number;

  @ApiPropertyOptional({ description: 'Wait until a busy agent is idle before upgrading it.' })
  @IsOptionalNotNull()
  @IsBoolean()
  waitForIdle?: boolean;

  @ApiPropertyOptional({ minimum: 1, maximum: 604800 })
  @IsOptionalNotNull()
  @IsInt()
  @Min(1)
  @Max(604800)
  idleTimeoutS?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: 604800 })
  @IsOptionalNotNull()
  @IsInt()
  @Min(1)
  @Max(604800)
  offlineTimeoutS?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: 604800 })
  @IsOptionalNotNull()
  @IsInt()
  @Min(1)
  @Max(604800)
  phaseTimeoutS?: number;

  @ApiPropertyOptional() @IsOptionalNotNull() @IsBoolean() backup?: boolean;
  @ApiPropertyOptional() @IsOptionalNotNull() @IsBoolean() migrate?: boolean;
  @ApiPropertyOptional() @IsOptionalNotNull() @IsBoolean() startAfterUpgrade?: boolean;
  @ApiPropertyOptional() @IsOptionalNotNull() @IsBoolean() rebootAfter?: boolean;
  @ApiPropertyOptional() @IsOptionalNotNull() @IsBoolean() switchBackOnFailure?: boolean;

  @ApiPropertyOptional({ description: 'Acknowledge a backup-first policy on a major-version upgrade.' })
  @IsOptionalNotNull()
  @IsBoolean()
  allowLegacyPolicyOnMajor?: boolean;

  @ApiPropertyOptional({
    description: 'Seconds the agent waits before it starts the product again.',
    minimum: 0,
    maximum: 3600,
  })
  @IsOptionalNotNull()
  @IsInt({ message: 'delayedStartS must be a whole number of seconds from 0 to 3600' })
  @Min(0, { message: 'delayedStartS must be a whole number of seconds from 0 to 3600' })
  @Max(3600, { message: 'delayedStartS must be a whole number of seconds from 0 to 3600' })
  delayedStartS?: number;

  @ApiPropertyOptional({
    type: [String],
    example: ['snmpd'],
    description: 'Services the agent stops before the upgrade and starts after it (at most 20 names).',
  })
  @IsOptionalNotNull()
  @IsArray({ message: 'stopServices must be an array of service names' })
  @ArrayMaxSize(20, { message: 'stopServices takes at most 20 service names' })
  @Matches(/^[A-Za-z0-9_.@-]{1,64}$/, {
    each: true,
    message: 'each of stopServices must be a service name of 1-64 letters, digits, "_", ".", "@" or "-"',
  })
  stopServices?: string[];

  @ApiPropertyOptional({
    description:
      "Install even where the package's fromVersion prerequisite does not hold; the plan and the history say so.",
  })
  @IsOptionalNotNull()
  @IsBoolean()
  ignoreVersionCheck?: boolean;

  @ApiPropertyOptional({ description: 'Allow a package older than an agent (a downgrade); refused otherwise.' })
  @IsOptionalNotNull()
  @IsBoolean()
  allowDowngrade?: boolean;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] },
    description: 'Passed to the agent untouched.',
  })
  @IsOptionalNotNull()
  @IsFlatMap(['string', 'number', 'boolean'], 50)
  agentOptions?: Record<string, AgentOptionValue>;
}
