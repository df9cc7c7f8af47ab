import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  ValidateBy,
  ValidateIf,
} from 'class-validator';
import { IsHostOrIp, IsOptionalNotNull, IsSingleLineText } from '../../common/validators';
import type { MaintenanceWindow } from '../../policies/maintenance-windows';
import { Agent } from '../agent.entity';
import {
  type AgentLabels,
  IsLabels,
  LABEL_KEY_RULE,
  LABEL_VALUE,
  LABEL_VALUE_RULE,
  MAX_LABELS,
  parseLabelSelectors,
} from '../labels';
import { IsMaintenanceWindows, MaintenanceWindowDto, WINDOWS_DESCRIPTION } from './maintenance-window.dto';
import {
  AGENT_ROLES,
  AGENT_STATES,
  type AgentFacts,
  type AgentRole,
  type AgentState,
  VERSION_STATUSES,
  type VersionStatus,
} from '../agent-state';

const trim = () => Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value));
const GROUP = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const groupMessage = 'failoverGroup must be 1-100 letters, digits, ".", "_" or "-"';

/** The OpenAPI schema of a label map (labels.ts has the rules). */
export const LABELS_SCHEMA = {
  type: 'object',
  maxProperties: MAX_LABELS,
  additionalProperties: { type: 'string', pattern: LABEL_VALUE.source, minLength: 1, maxLength: 63 },
  example: { site: 'eu-1', tier: 'db' },
} as const;
const LABELS_RULES = `At most ${MAX_LABELS}; ${LABEL_KEY_RULE}; ${LABEL_VALUE_RULE}.`;

export class RegisterAgentDto {
  @ApiProperty({ maxLength: 100 })
  @trim()
  @IsString()
  @Length(1, 100)
  @IsSingleLineText()
  name: string;

  @ApiProperty({ description: 'Host name or IP address, unique in the cluster.', example: '10.0.4.17' })
  @trim()
  @IsHostOrIp()
  address: string;

  @ApiProperty({ enum: AGENT_ROLES, enumName: 'AgentRole' })
  @IsIn(AGENT_ROLES, { message: `role must be one of: ${AGENT_ROLES.join(', ')}` })
  role: AgentRole;

  @ApiPropertyOptional({
    description: 'Required for main and backup (they share it); absent for standalone.',
    example: 'pair-a',
  })
  @IsOptional()
  @Matches(GROUP, { message: groupMessage })
  failoverGroup?: string;

  @ApiPropertyOptional({
    ...LABELS_SCHEMA,
    description: `What you say about the agent, to filter lists and target upgrades by. ${LABELS_RULES} Absent = none.`,
  })
  @IsOptionalNotNull()
  @IsLabels()
  labels?: AgentLabels;
}

export class UpdateAgentDto {
  @ApiPropertyOptional({ maxLength: 100 })
  @IsOptional()
  @trim()
  @IsString()
  @Length(1, 100)
  @IsSingleLineText()
  name?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @trim()
  @IsHostOrIp()
  address?: string;

  @ApiPropertyOptional({ enum: AGENT_ROLES, enumName: 'AgentRole' })
  @IsOptional()
  @IsIn(AGENT_ROLES, { message: `role must be one of: ${AGENT_ROLES.join(', ')}` })
  role?: AgentRole;

  @ApiPropertyOptional({ type: String, nullable: true, description: 'null to leave a pair (with role standalone).' })
  @ValidateIf((_, v) => v !== undefined && v !== null)
  @Matches(GROUP, { message: groupMessage })
  failoverGroup?: string | null;

  @ApiPropertyOptional({
    ...LABELS_SCHEMA,
    description: `The agent's labels, all of them: the map given replaces the one it had ({} removes every label; absent leaves them as they are). ${LABELS_RULES}`,
  })
  @IsOptionalNotNull()
  @IsLabels()
  labels?: AgentLabels;

  @ApiPropertyOptional({
    type: [MaintenanceWindowDto],
    nullable: true,
    description: `Its own maintenance windows, which replace its cluster's: [] for none (any time), null to take its cluster's again; absent leaves them as they are. ${WINDOWS_DESCRIPTION}`,
  })
  @ValidateIf((_, v) => v !== undefined && v !== null)
  @IsMaintenanceWindows()
  windows?: MaintenanceWindow[] | null;
}

export class AutoUpgradeDto {
  @ApiProperty({ description: 'Whether Lockstep brings this agent to the cluster target by itself.' })
  @IsBoolean({ message: 'enabled must be true or false' })
  enabled: boolean;
}

const toBool = () =>
  Transform(({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value));
const toInt = () => Transform(({ value }: { value: unknown }) => (/^\d+$/.test(String(value)) ? Number(value) : value));

export class ListAgentsQuery {
  @ApiPropertyOptional({ enum: AGENT_STATES, enumName: 'AgentState' })
  @IsOptional()
  @IsIn(AGENT_STATES, { message: `state must be one of: ${AGENT_STATES.join(', ')}` })
  state?: AgentState;

  @ApiPropertyOptional({ enum: VERSION_STATUSES, enumName: 'VersionStatus' })
  @IsOptional()
  @IsIn(VERSION_STATUSES, { message: `versionStatus must be one of: ${VERSION_STATUSES.join(', ')}` })
  versionStatus?: VersionStatus;

  @ApiPropertyOptional({ enum: AGENT_ROLES, enumName: 'AgentRole' })
  @IsOptional()
  @IsIn(AGENT_ROLES, { message: `role must be one of: ${AGENT_ROLES.join(', ')}` })
  role?: AgentRole;

  @ApiPropertyOptional()
  @IsOptional()
  @Matches(GROUP, { message: groupMessage })
  failoverGroup?: string;

  @ApiPropertyOptional({ default: 500, minimum: 1, maximum: 5000 })
  @IsOptional()
  @toInt()
  @IsInt({ message: 'limit must be a whole number from 1 to 5000' })
  @Min(1, { message: 'limit must be a whole number from 1 to 5000' })
  @Max(5000, { message: 'limit must be a whole number from 1 to 5000' })
  limit?: number;

  @ApiPropertyOptional({ default: 0, minimum: 0 })
  @IsOptional()
  @toInt()
  @IsInt({ message: 'offset must be a whole number, 0 or more' })
  @Min(0, { message: 'offset must be a whole number, 0 or more' })
  offset?: number;

  @ApiPropertyOptional({ description: 'Only agents that are (true) or are not (false) the active member.' })
  @IsOptional()
  @toBool()
  @IsBoolean({ message: 'active must be true or false' })
  active?: boolean;

  @ApiPropertyOptional({
    type: [String],
    example: ['site=eu-1'],
    description: `Only agents with this label, as key=value; repeat it (label=site=eu-1&label=tier=db) for agents with all of them. At most ${MAX_LABELS}.`,
  })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? [value] : value))
  @IsLabelSelectors()
  label?: string[];
}

/** `?label=key=value`, once or repeated: each well formed, at most MAX_LABELS, one value per key. */
function IsLabelSelectors(): PropertyDecorator {
  const problem = (value: unknown): string | undefined =>
    Array.isArray(value) && value.every((v) => typeof v === 'string')
      ? parseLabelSelectors('label', value).problem
      : 'label must be key=value, such as site=eu-1';
  return ValidateBy({
    name: 'isLabelSelectors',
    validator: {
      validate: (value) => problem(value) === undefined,
      defaultMessage: (args) => problem(args?.value) ?? '',
    },
  });
}

export class AgentFactsDto {
  @ApiPropertyOptional({ example: 'linux' }) os?: string;
  @ApiPropertyOptional({ example: 'x64' }) arch?: string;
  @ApiPropertyOptional() freeDiskMb?: number;
  @ApiPropertyOptional() memoryMb?: number;
  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' } }) components?: Record<
    string,
    string
  >;
}

export class AgentDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) clusterId: string;
  @ApiProperty() name: string;
  @ApiProperty() address: string;
  @ApiProperty({ enum: AGENT_ROLES, enumName: 'AgentRole' }) role: AgentRole;
  @ApiProperty({ type: String, nullable: true }) failoverGroup: string | null;
  @ApiProperty({ description: 'The member of its pair serving now (always true for standalone).' }) active: boolean;
  @ApiProperty({ enum: AGENT_STATES, enumName: 'AgentState' }) state: AgentState;
  @ApiProperty({ type: String, nullable: true }) version: string | null;
  @ApiProperty({ type: String, nullable: true }) webappsVersion: string | null;
  @ApiProperty({ enum: VERSION_STATUSES, enumName: 'VersionStatus' }) versionStatus: VersionStatus;
  @ApiProperty() autoUpgrade: boolean;
  @ApiProperty({ description: 'False for legacy agents, which need a manual reinstall.' }) remoteUpgrade: boolean;
  @ApiProperty() busy: boolean;
  @ApiProperty({ description: 'Told to start no work of its own while an upgrade of it is under way.' }) hold: boolean;
  @ApiProperty({
    type: String,
    nullable: true,
    format: 'uuid',
    description: 'The scheduled or running upgrade that holds it.',
  })
  upgradeId: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description:
      'Why auto-upgrade leaves it alone for now (left behind by a cancel or the failure threshold, a missed or refused attempt, a pair that cannot hand over); null = nothing holds it back.',
  })
  autoUpgradeBlocked: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    format: 'date-time',
    description:
      'When auto-upgrade tries again; null with a reason = not until someone acts (retry, upgrade now, a new upgrade).',
  })
  autoUpgradeRetryAt: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) lastSeenAt: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) pairedAt: string | null;
  @ApiProperty({ type: AgentFactsDto }) facts: AgentFacts;
  @ApiProperty({ ...LABELS_SCHEMA, description: 'What you say about the agent ({} for none).' })
  labels: AgentLabels;
  @ApiProperty({
    type: [MaintenanceWindowDto],
    nullable: true,
    description: "Its own maintenance windows, which replace its cluster's ([]: none, any time); null: its cluster's.",
  })
  windows: MaintenanceWindow[] | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
}

/**
 * An `agent.status` event's data: the agent exactly as GET /api/v1/clusters/{id}/agents/{agentId}
 * shows it, built from the row in hand (no read of its own); `removed: true` on the last event of
 * an agent that was removed.
 */
export class AgentStatusEventData extends AgentDto {
  @ApiPropertyOptional({ enum: [true], description: 'Present, true, on the event of its removal: it is gone.' })
  removed?: true;
}

declare module '../../progress/event-map' {
  interface EventDataMap {
    'agent.status': AgentStatusEventData;
  }
}

export class RegisteredAgentDto extends AgentDto {
  @ApiProperty({ description: 'One-time key the agent pairs with. Shown only in this response.' })
  pairingKey: string;
  @ApiProperty({ format: 'date-time' })
  pairingKeyExpiresAt: string;
}

export class PairingKeyDto {
  @ApiProperty() pairingKey: string;
  @ApiProperty({ format: 'date-time' }) pairingKeyExpiresAt: string;
}

export class AgentPageDto {
  @ApiProperty({ type: [AgentDto] }) items: AgentDto[];
  @ApiProperty() total: number;
  @ApiProperty() limit: number;
  @ApiProperty() offset: number;
}

export class RemovalDto {
  @ApiProperty({ description: 'True when the agent is gone; false when it is terminating and goes once idle.' })
  removed: boolean;
  @ApiProperty({ type: AgentDto }) agent: AgentDto;
}

export function toAgentDto(agent: Agent): AgentDto {
  return {
    id: agent.id,
    clusterId: agent.clusterId,
    name: agent.name,
    address: agent.address,
    role: agent.role,
    failoverGroup: agent.failoverGroup,
    active: agent.active,
    state: agent.state,
    version: agent.version,
    webappsVersion: agent.webappsVersion,
    versionStatus: agent.versionStatus,
    autoUpgrade: agent.autoUpgrade,
    remoteUpgrade: agent.remoteUpgrade,
    busy: agent.busy,
    hold: agent.hold,
    upgradeId: agent.upgradeId,
    autoUpgradeBlocked: agent.autoUpgradeBlocked,
    autoUpgradeRetryAt: agent.autoUpgradeRetryAt?.toISOString() ?? null,
    lastSeenAt: agent.lastSeenAt?.toISOString() ?? null,
    pairedAt: agent.pairedAt?.toISOString() ?? null,
    facts: agent.facts ?? {},
    labels: agent.labels ?? {},
    windows: agent.windows ?? null,
    createdAt: agent.createdAt.toISOString(),
  };
}
