import { nullableTokenRef, type TokenRefDto, tokenRefOf } from '../../audit/dto/audit.dto';
import { ApiProperty, ApiPropertyOptional, OmitType } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsDefined, IsIn, IsISO8601, IsOptional, IsUUID, ValidateNested } from 'class-validator';
import { LABELS_SCHEMA } from '../../cluster/dto/agent.dto';
import { UpgradeOptionsDto } from '../../cluster/dto/upgrade-options.dto';
import { type AgentLabels, IsLabels } from '../../cluster/labels';
import { PageQuery } from '../../common/page-query';
import { IsDateTime, IsHostOrIp, IsOptionalNotNull } from '../../common/validators';
import { STEP_KINDS, type PlanNotice, type RunWhen, type StepKind } from '../../policies/planner';
import {
  CONCRETE_POLICIES,
  FAILOVER_POLICIES,
  type ConcretePolicy,
  type FailoverPolicy,
  type UpgradeOptions,
} from '../../policies/upgrade-options';
import { PackageDto } from '../../packages/dto/package.dto';
import type { PrerequisiteResult } from '../../packages/prerequisites';
import {
  Upgrade,
  UPGRADE_ORIGINS,
  UPGRADE_STATUSES,
  type UpgradeOrigin,
  type UpgradeStatus,
  type UpgradeTarget,
} from '../upgrade.entity';
import { STEP_STATUSES, UpgradeStep, WAIT_REASONS, type StepStatus, type WaitReason } from '../upgrade-step.entity';
import type { BatchWindow } from '../window-rules';

export class UpgradeTargetDto {
  @ApiPropertyOptional({
    enum: [true],
    description: 'Every agent of the cluster; the cluster then targets the package version.',
  })
  @IsOptional()
  @IsIn([true], {
    message: 'target.all must be true when given; name agents with agentIds, addresses or labels instead',
  })
  all?: boolean;

  @ApiPropertyOptional({ type: [String], format: 'uuid' })
  @IsOptional()
  @IsArray({ message: 'agentIds must be an array of agent ids' })
  @ArrayMaxSize(100_000)
  @IsUUID('all', { each: true, message: 'each of agentIds must be an agent id (a UUID)' })
  agentIds?: string[];

  @ApiPropertyOptional({
    type: [String],
    description: "Agents by address (host name or IP), as reference 001's external IP.",
  })
  @IsOptional()
  @IsArray({ message: 'addresses must be an array of host names or IP addresses' })
  @ArrayMaxSize(100_000)
  @IsHostOrIp({ each: true, message: 'each of addresses must be a host name or an IP address' })
  addresses?: string[];

  @ApiPropertyOptional({
    ...LABELS_SCHEMA,
    minProperties: 1,
    description:
      'The agents whose labels include every one of these pairs. With agentIds or addresses, the agents named any way (a union). No agent matching is a 422 NO_AGENT_MATCHES_LABELS.',
  })
  @IsOptionalNotNull()
  @IsLabels()
  labels?: AgentLabels;
}

export class CreateUpgradeDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'packageId must be a package id (a UUID)' })
  packageId: string;

  @ApiProperty({ type: UpgradeTargetDto, example: { all: true } })
  @IsDefined({ message: 'target is required: {"all": true}, or agentIds, addresses and/or labels' })
  @ValidateNested()
  @Type(() => UpgradeTargetDto)
  target: UpgradeTargetDto;

  @ApiPropertyOptional({ enum: FAILOVER_POLICIES, enumName: 'FailoverPolicy', default: 'default' })
  @IsOptional()
  @IsIn(FAILOVER_POLICIES, { message: `policy must be one of: ${FAILOVER_POLICIES.join(', ')}` })
  policy?: FailoverPolicy;

  @ApiPropertyOptional({
    type: UpgradeOptionsDto,
    description: "Absent fields come from the cluster's default options.",
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => UpgradeOptionsDto)
  options?: UpgradeOptionsDto;

  @ApiPropertyOptional({ format: 'date-time', description: 'Start later (ISO-8601); absent = now.' })
  @IsOptional()
  @IsDateTime({ message: 'scheduledAt must be an ISO-8601 date and time such as 2026-12-01T02:00:00Z' })
  @IsISO8601(
    { strict: true },
    { message: 'scheduledAt must be an ISO-8601 date and time such as 2026-12-01T02:00:00Z' },
  )
  scheduledAt?: string;
}

/** An upgrade request without its package: the upgrade fields of an upload with mode=install. */
export class InstallFieldsDto extends OmitType(CreateUpgradeDto, ['packageId'] as const) {}

export class ListUpgradesQuery extends PageQuery {
  @ApiPropertyOptional({ enum: UPGRADE_STATUSES, enumName: 'UpgradeStatus' })
  @IsOptional()
  @IsIn(UPGRADE_STATUSES, { message: `status must be one of: ${UPGRADE_STATUSES.join(', ')}` })
  status?: UpgradeStatus;

  @ApiPropertyOptional({
    format: 'uuid',
    description: 'Only upgrades with a step for this agent (upgrading it, or taking over from it).',
  })
  @IsOptional()
  @IsUUID('all', { message: 'agentId must be the UUID of an agent' })
  agentId?: string;
}

export class StepDto {
  @ApiProperty({ description: 'A UUID; in a preview, a key naming the step.' }) id: string;
  @ApiProperty({
    enum: STEP_KINDS,
    description: 'rollback: a rollback round brings the agent back to toVersion with the backup of its upgrade.',
  })
  kind: StepKind;
  @ApiProperty({ type: String, nullable: true, format: 'uuid', description: 'The agent upgraded, or taking over.' })
  agentId: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    format: 'uuid',
    description: 'In a switchover or switchback, the agent handing over.',
  })
  fromAgentId: string | null;
  @ApiProperty({ type: String, nullable: true }) failoverGroup: string | null;
  @ApiProperty() unit: number;
  @ApiProperty({ description: "0: the upgrade's own steps; n: its n-th rollback's (docs/rollback.md)." })
  round: number;
  @ApiProperty() batch: number;
  @ApiProperty({ type: [String] }) dependsOn: string[];
  @ApiProperty({
    enum: ['succeeded', 'failed', 'ended'],
    description: 'Runs when its dependencies succeeded, failed, or ended either way.',
  })
  runWhen: RunWhen;
  @ApiProperty({ enum: STEP_STATUSES, enumName: 'StepStatus' }) status: StepStatus;
  @ApiProperty({
    type: String,
    nullable: true,
    // OpenAPI 3.0: a nullable enum lists null among its values, or null fails it.
    enum: [...WAIT_REASONS, null],
    description:
      'online, idle: its agent; pickup: the agent has not fetched its command yet; gate: a switchover check; peer: a serving pair member waits until its peer can take over; dependencies: earlier steps; window: a maintenance window long enough for its unit (options.respectWindows), opening at windowOpensAt.',
  })
  waitingFor: WaitReason | null;
  @ApiProperty({
    type: String,
    nullable: true,
    format: 'date-time',
    description:
      'Waiting for window: when the maintenance window it waits for opens (the first one long enough for its unit). Null otherwise.',
  })
  windowOpensAt: string | null;
  @ApiProperty({ type: String, nullable: true }) phase: string | null;
  @ApiProperty() percent: number;
  @ApiProperty() attempts: number;
  @ApiProperty({ type: String, nullable: true }) note: string | null;
  @ApiProperty({ type: String, nullable: true }) error: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The agent\'s last progress message, e.g. "downloaded 50%".',
  })
  message: string | null;
  @ApiProperty({
    type: [String],
    description: 'What the agent reported with its end: options not applied and why, a reboot, services.',
  })
  agentNotes: string[];
  @ApiProperty({
    type: String,
    nullable: true,
    description: "An upgrade step's: the backup its agent reported taking, which a rollback restores.",
  })
  backup: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description:
      "A rollback round's step: the version its agent goes back to (of what the package installs), or runs when it takes over.",
  })
  toVersion: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) startedAt: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) endedAt: string | null;
}

export class NoticeDto {
  @ApiProperty() code: string;
  @ApiProperty() message: string;
  @ApiPropertyOptional({ type: [String] }) agentIds?: string[];
}

export class UpgradeDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) clusterId: string;
  @ApiProperty({ format: 'uuid' }) packageId: string;
  @ApiProperty() packageVersion: string;
  @ApiProperty({ enum: UPGRADE_STATUSES, enumName: 'UpgradeStatus' }) status: UpgradeStatus;
  @ApiProperty({ enum: UPGRADE_ORIGINS }) origin: UpgradeOrigin;
  @ApiProperty({ type: UpgradeTargetDto }) target: UpgradeTarget;
  @ApiProperty({ enum: FAILOVER_POLICIES, description: 'The policy asked for.' }) policy: FailoverPolicy;
  @ApiProperty({ enum: CONCRETE_POLICIES, description: 'The policy it resolved to.' }) resolvedPolicy: ConcretePolicy;
  @ApiProperty({ type: UpgradeOptionsDto }) options: UpgradeOptions;
  @ApiProperty() units: number;
  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'Failed units after which no new unit starts; null = no limit.',
  })
  failureLimit: number | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) scheduledAt: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) startedAt: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) finishedAt: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty() percent: number;
  @ApiProperty({ type: String, nullable: true, description: 'Why it paused, failed or was cancelled.' }) reason:
    string | null;
  @ApiProperty({ type: [NoticeDto] }) warnings: PlanNotice[];
  @ApiProperty(nullableTokenRef('The API token that created it; null when Lockstep did (auto-upgrade).'))
  createdBy: TokenRefDto | null;
  @ApiPropertyOptional({ type: [StepDto], description: 'In plan order; absent in lists.' }) steps?: StepDto[];
}

export class UpgradePageDto {
  @ApiProperty({ type: [UpgradeDto] }) items: UpgradeDto[];
  @ApiProperty() total: number;
  @ApiProperty() limit: number;
  @ApiProperty() offset: number;
}

/** The maintenance window a batch of a preview is expected to run in. */
export class BatchWindowDto {
  @ApiProperty() batch: number;
  @ApiProperty({ description: "Its longest unit's predicted duration, from past upgrades (else phaseTimeoutS)." })
  predictedMinutes: number;
  @ApiProperty({
    type: String,
    nullable: true,
    format: 'date-time',
    description:
      'When its first unit is expected to start; null when a unit of it (or of a batch before it) fits no window.',
  })
  expectedStartAt: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    format: 'date-time',
    description: 'When its last unit is expected to end.',
  })
  expectedEndAt: string | null;
  @ApiProperty({
    // Inline, not a $ref: OpenAPI 3.0 ignores nullable beside a $ref.
    type: 'object',
    nullable: true,
    properties: { opensAt: { type: 'string', format: 'date-time' }, closesAt: { type: 'string', format: 'date-time' } },
    required: ['opensAt', 'closesAt'],
    description:
      "The window it runs in (from the first opening to the last closing of its units' windows); null when none limits its agents, or none fits.",
  })
  window: { opensAt: string; closesAt: string } | null;
}

export function toBatchWindowDto(b: BatchWindow): BatchWindowDto {
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  return {
    batch: b.batch,
    predictedMinutes: b.predictedMinutes,
    expectedStartAt: iso(b.expectedStartAt),
    expectedEndAt: iso(b.expectedEndAt),
    window: b.window && { opensAt: b.window.opensAt.toISOString(), closesAt: b.window.closesAt.toISOString() },
  };
}

export class PreviewDto {
  @ApiProperty({ enum: CONCRETE_POLICIES }) resolvedPolicy: ConcretePolicy;
  @ApiProperty({ type: [StepDto] }) steps: StepDto[];
  @ApiProperty() units: number;
  @ApiProperty() batches: number;
  @ApiProperty() maxParallel: number;
  @ApiProperty({ type: Number, nullable: true }) failureLimit: number | null;
  @ApiProperty({ type: [NoticeDto] }) warnings: PlanNotice[];
  @ApiProperty({
    type: [NoticeDto],
    description: 'Why creating this upgrade would be refused; empty when it would be accepted.',
  })
  refusals: PlanNotice[];
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'Prerequisite failures (refusals) and unknowns (warnings) per agent.',
  })
  prerequisites: PrerequisiteResult;
  @ApiProperty({
    type: [BatchWindowDto],
    description:
      'With options.respectWindows, per batch the maintenance window it is expected to run in (each batch once the one before it ended); empty otherwise.',
  })
  batchWindows: BatchWindowDto[];
}

/** What rolling an upgrade back would do now (POST /api/v1/upgrades/{id}/rollback/preview). */
export class RollbackPreviewDto {
  @ApiProperty({ format: 'uuid' }) upgradeId: string;
  @ApiProperty({ enum: UPGRADE_STATUSES, enumName: 'UpgradeStatus' }) status: UpgradeStatus;
  @ApiProperty({
    type: [StepDto],
    description: 'The steps of the rollback, in order; ids are keys naming the steps (the rollback gets UUIDs).',
  })
  steps: StepDto[];
  @ApiProperty() units: number;
  @ApiProperty() batches: number;
  @ApiProperty({ type: [NoticeDto], description: 'Agents left as they are, and why.' }) notes: PlanNotice[];
  @ApiProperty({
    type: [NoticeDto],
    description:
      'Why the rollback would be refused (no backup, changed since, in another upgrade); empty when it would run.',
  })
  refusals: PlanNotice[];
}

/** An upload with mode=install: the package, and the upgrade created with it in the same transaction. */
export class InstalledPackageDto {
  @ApiProperty({ type: () => PackageDto }) package: PackageDto;
  @ApiProperty({ type: () => UpgradeDto, description: 'The upgrade created with it.' }) upgrade: UpgradeDto;
}

export class MigrationDto {
  @ApiProperty({ format: 'uuid' }) commandId: string;
  @ApiProperty({ format: 'uuid' }) agentId: string;
  @ApiProperty({ type: String, nullable: true, description: 'The installed version whose migration runs again.' })
  version: string | null;
  @ApiProperty() status: string;
}

export function toStepDto(step: UpgradeStep): StepDto {
  return {
    id: step.id,
    kind: step.kind,
    agentId: step.agentId,
    fromAgentId: step.fromAgentId,
    failoverGroup: step.failoverGroup,
    unit: step.unit,
    round: step.round,
    batch: step.batch,
    dependsOn: step.dependsOn,
    runWhen: step.runWhen,
    status: step.status,
    waitingFor: step.waitingFor,
    windowOpensAt: step.waitingFor === 'window' ? (step.windowOpensAt?.toISOString() ?? null) : null,
    phase: step.phase,
    percent: step.percent,
    attempts: step.attempts,
    note: step.note,
    error: step.error,
    message: step.message,
    agentNotes: step.agentNotes ?? [],
    backup: step.backup,
    toVersion: step.toVersion,
    startedAt: step.startedAt?.toISOString() ?? null,
    endedAt: step.endedAt?.toISOString() ?? null,
  };
}

export function toUpgradeDto(upgrade: Upgrade, steps?: UpgradeStep[]): UpgradeDto {
  return {
    id: upgrade.id,
    clusterId: upgrade.clusterId,
    packageId: upgrade.packageId,
    packageVersion: upgrade.packageVersion,
    status: upgrade.status,
    origin: upgrade.origin,
    target: upgrade.target,
    policy: upgrade.policy,
    resolvedPolicy: upgrade.resolvedPolicy,
    options: upgrade.options,
    units: upgrade.units,
    failureLimit: upgrade.failureLimit,
    scheduledAt: upgrade.scheduledAt?.toISOString() ?? null,
    startedAt: upgrade.startedAt?.toISOString() ?? null,
    finishedAt: upgrade.finishedAt?.toISOString() ?? null,
    createdAt: upgrade.createdAt.toISOString(),
    percent: upgrade.percent,
    reason: upgrade.reason,
    warnings: upgrade.warnings,
    createdBy: tokenRefOf(upgrade.createdByTokenId, upgrade.createdByName),
    ...(steps ? { steps: steps.map(toStepDto) } : {}),
  };
}
