import { ApiProperty, ApiPropertyOptional, type ApiPropertyOptions } from '@nestjs/swagger';
import { IsIn, IsInt, IsISO8601, IsOptional, IsString, IsUUID, Length, Matches, Max, Min } from 'class-validator';
import { LimitQuery, QueryInt } from '../../common/page-query';
import { ACTOR_KINDS, type ActorKind, AUDIT_OUTCOMES, type AuditOutcome, AuditRecord } from '../audit-record.entity';
import { AUDIT_TARGETS, type AuditTarget } from '../audit.decorators';

/** GET /api/v1/audit: filters, newest first, a page at a time (limit 100 by default). */
export class AuditQuery extends LimitQuery {
  @ApiPropertyOptional({ description: "Only this actor: a token's id, a token's name, or an agent's id." })
  @IsOptional()
  @IsString()
  @Length(1, 100, { message: 'actor must be a token id, token name or agent id (1 to 100 characters)' })
  actor?: string;

  @ApiPropertyOptional({ format: 'uuid', description: "Only this cluster's records." })
  @IsOptional()
  @IsUUID('all', { message: 'clusterId must be a cluster id (a UUID)' })
  clusterId?: string;

  @ApiPropertyOptional({
    description: 'Only this action (`upgrade.pause`), or every action on one target type (`upgrade`).',
    example: 'upgrade.pause',
  })
  @IsOptional()
  @Matches(/^[a-z-]+(\.[a-z-]+)?$/, {
    message: 'action must be an action such as upgrade.pause, or a target such as upgrade',
  })
  action?: string;

  @ApiPropertyOptional({ enum: AUDIT_TARGETS, description: 'Only records about this kind of target.' })
  @IsOptional()
  @IsIn(AUDIT_TARGETS, { message: `targetType must be one of ${AUDIT_TARGETS.join(', ')}` })
  targetType?: AuditTarget;

  @ApiPropertyOptional({ description: "Only records about this target (an upgrade's, agent's... id)." })
  @IsOptional()
  @IsString()
  @Length(1, 100, { message: 'targetId must be an id (1 to 100 characters)' })
  targetId?: string;

  @ApiPropertyOptional({ description: 'Only the records of one request (its X-Request-Id, in every error body too).' })
  @IsOptional()
  @Matches(/^[A-Za-z0-9._:-]{1,100}$/, {
    message: 'requestId must be a request id (letters, digits, . _ : -; at most 100)',
  })
  requestId?: string;

  @ApiPropertyOptional({ enum: AUDIT_OUTCOMES })
  @IsOptional()
  @IsIn(AUDIT_OUTCOMES, { message: `outcome must be one of ${AUDIT_OUTCOMES.join(', ')}` })
  outcome?: AuditOutcome;

  @ApiPropertyOptional({ format: 'date-time', description: 'Records at or after this instant.' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'from must be an ISO-8601 date-time, e.g. 2026-12-01T00:00:00Z' })
  from?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'Records before this instant.' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'to must be an ISO-8601 date-time, e.g. 2026-12-02T00:00:00Z' })
  to?: string;

  @ApiPropertyOptional({ description: "Records older than this id: the previous page's nextBeforeId." })
  @IsOptional()
  @QueryInt()
  @IsInt({ message: 'beforeId must be a whole number (the nextBeforeId of the previous page)' })
  @Min(1, { message: 'beforeId must be a whole number (the nextBeforeId of the previous page)' })
  @Max(2_147_483_647, { message: 'beforeId must be a whole number (the nextBeforeId of the previous page)' })
  beforeId?: number;
}

export class AuditActorDto {
  @ApiProperty({ enum: ACTOR_KINDS, enumName: 'ActorKind' }) kind: ActorKind;
  @ApiProperty({ type: String, nullable: true, description: 'The API or agent token that made the call.' })
  tokenId: string | null;
  @ApiProperty({ type: String, nullable: true, description: "The token's name, or what part of Lockstep acted." })
  name: string | null;
  @ApiProperty({ type: String, nullable: true, description: "A user token's role." }) role: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'uuid' }) agentId: string | null;
}

export class AuditRecordDto {
  @ApiProperty({ description: 'Increasing: a later record has a larger id.' }) id: number;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ type: AuditActorDto }) actor: AuditActorDto;
  @ApiProperty({ example: 'upgrade.pause' }) action: string;
  @ApiProperty({ enum: AUDIT_TARGETS, enumName: 'AuditTarget' }) targetType: string;
  @ApiProperty({ type: String, nullable: true }) targetId: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'uuid' }) clusterId: string | null;
  @ApiProperty({ type: String, nullable: true }) requestId: string | null;
  @ApiProperty({ description: 'What changed; for a refusal, its code and message. Never a body, token or key.' })
  summary: string;
  @ApiProperty({ enum: AUDIT_OUTCOMES, enumName: 'AuditOutcome' }) outcome: AuditOutcome;
  @ApiProperty({ type: Number, nullable: true, description: 'The HTTP status answered; null for Lockstep’s own work.' })
  status: number | null;
  @ApiProperty({ type: String, nullable: true, description: "A refusal's error code." }) code: string | null;
}

export class AuditPageDto {
  @ApiProperty({ type: [AuditRecordDto] }) items: AuditRecordDto[];
  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'Pass as beforeId for the next (older) page; null on the last.',
  })
  nextBeforeId: number | null;
}

export function toAuditRecordDto(record: AuditRecord): AuditRecordDto {
  return {
    id: Number(record.id),
    createdAt: record.createdAt.toISOString(),
    actor: {
      kind: record.actorKind,
      tokenId: record.actorTokenId,
      name: record.actorName,
      role: record.actorRole,
      agentId: record.actorAgentId,
    },
    action: record.action,
    targetType: record.targetType,
    targetId: record.targetId,
    clusterId: record.clusterId,
    requestId: record.requestId,
    summary: record.summary,
    outcome: record.outcome,
    status: record.status,
    code: record.code,
  };
}

/** Who created an upgrade or uploaded a package: the API token, by id and by its name then. */
export interface TokenRefDto {
  tokenId: string;
  name: string | null;
}

/**
 * A nullable TokenRefDto's OpenAPI schema, inline: a `$ref` cannot be nullable in OpenAPI 3.0, and
 * the contract check holds answers to the document.
 */
export const nullableTokenRef = (description: string): ApiPropertyOptions => ({
  type: 'object',
  nullable: true,
  required: ['tokenId', 'name'],
  selfRequired: true,
  properties: {
    tokenId: { type: 'string', format: 'uuid' },
    name: { type: 'string', nullable: true, description: "The token's name then (null if it is no longer known)." },
  },
  description,
});

/** The token reference of a row's tokenId and name columns; null when none made it (Lockstep itself). */
export const tokenRefOf = (tokenId: string | null, name: string | null): TokenRefDto | null =>
  tokenId ? { tokenId, name } : null;
