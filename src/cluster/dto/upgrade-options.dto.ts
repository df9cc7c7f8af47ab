import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsBoolean, IsIn, IsInt, Matches, Max, Min } from 'class-validator';
import { IsCountOrPercent, IsFlatMap, IsOptionalNotNull } from '../../common/validators';
import {
  ON_BUDGET,
  ON_FAILURE,
  type AgentOptionValue,
  type CountOrPercent,
  type OnBudget,
  type OnFailure,
} from '../../policies/upgrade-options';

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

  @ApiPropertyOptional({
    enum: ON_FAILURE,
    default: 'stop',
    description:
      'After a failed step: stop (no new unit past failureThreshold), or rollback (no new unit after the first failure, then the whole upgrade is rolled back; needs backup).',
  })
  @IsOptionalNotNull()
  @IsIn(ON_FAILURE, { message: `onFailure must be one of: ${ON_FAILURE.join(', ')}` })
  onFailure?: OnFailure;

  @ApiPropertyOptional({
    minimum: 1,
    maximum: 10080,
    description:
      'Mixed-version budget: the most minutes the cluster may run more than one version during the upgrade (counted from when it first did, or from the last resume); absent: no limit.',
  })
  @IsOptionalNotNull()
  @IsInt({ message: 'maxMixedMinutes must be a whole number of minutes from 1 to 10080' })
  @Min(1, { message: 'maxMixedMinutes must be a whole number of minutes from 1 to 10080' })
  @Max(10080, { message: 'maxMixedMinutes must be a whole number of minutes from 1 to 10080' })
  maxMixedMinutes?: number;

  @ApiPropertyOptional({
    minimum: 0,
    maximum: 100000,
    description:
      "Mixed-version budget: the most agents of the upgrade that may be left behind on another version (their step failed, was missed or did not run) while others run the package's; absent: no limit.",
  })
  @IsOptionalNotNull()
  @IsInt({ message: 'maxMixedAgents must be a whole number of agents from 0 to 100000' })
  @Min(0, { message: 'maxMixedAgents must be a whole number of agents from 0 to 100000' })
  @Max(100000, { message: 'maxMixedAgents must be a whole number of agents from 0 to 100000' })
  maxMixedAgents?: number;

  @ApiPropertyOptional({
    enum: ON_BUDGET,
    default: 'pause',
    description: 'When a mixed-version budget runs out: pause the upgrade, or roll it back (docs/rollback.md).',
  })
  @IsOptionalNotNull()
  @IsIn(ON_BUDGET, { message: `onBudget must be one of: ${ON_BUDGET.join(', ')}` })
  onBudget?: OnBudget;

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
    default: false,
    description:
      "Start a unit only inside its agents' maintenance windows (an agent's own, else its cluster's), and only when its predicted duration fits before the window closes; until then its steps wait for `window`. Running units are never cut.",
  })
  @IsOptionalNotNull()
  @IsBoolean()
  respectWindows?: boolean;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] },
    description: 'Passed to the agent untouched.',
  })
  @IsOptionalNotNull()
  @IsFlatMap(['string', 'number', 'boolean'], 50)
  agentOptions?: Record<string, AgentOptionValue>;
}
