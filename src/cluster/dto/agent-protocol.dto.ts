import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { IsFlatMap, IsPrintableText, IsSemverVersion, IsSingleLineText } from '../../common/validators';
import { SigningPolicyDto } from './signing-key.dto';
import { BACKUP_NAME } from '../../protocol/agent-protocol';
import {
  COMMAND_STATUSES,
  COMMAND_TYPES,
  type CommandStatus,
  type CommandType,
  REPORTED_ENDS,
  type ReportedEnd,
} from '../agent-command.entity';

/** What an agent knows of its host. Bounded in size and shape: unknown keys are refused. */
export class FactsDto {
  @ApiPropertyOptional({ example: 'linux', maxLength: 32 })
  @IsOptional()
  @IsString()
  @Length(1, 32)
  @IsSingleLineText()
  os?: string;

  @ApiPropertyOptional({ example: 'x64', maxLength: 32 })
  @IsOptional()
  @IsString()
  @Length(1, 32)
  @IsSingleLineText()
  arch?: string;

  @ApiPropertyOptional({ minimum: 0 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(2 ** 40)
  freeDiskMb?: number;

  @ApiPropertyOptional({ minimum: 0 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(2 ** 40)
  memoryMb?: number;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'Named components and their versions (at most 50).',
  })
  @IsOptional()
  @IsFlatMap(['string'], 50)
  components?: Record<string, string>;
}

export class CapabilitiesDto {
  @ApiPropertyOptional({ description: 'False for a legacy agent that cannot upgrade itself remotely.', default: true })
  @IsOptional()
  @IsBoolean()
  remoteUpgrade?: boolean;
}

/** What an agent tells of itself beyond its version: the same on pairing and on every heartbeat. */
class AgentSelfReportDto {
  @ApiPropertyOptional({ type: FactsDto, description: 'Absent: the last facts stay.' })
  @IsOptional()
  @IsObject({ message: 'facts must be an object such as {"os": "linux", "freeDiskMb": 40000}' })
  @ValidateNested()
  @Type(() => FactsDto)
  facts?: FactsDto;

  @ApiPropertyOptional({ type: CapabilitiesDto })
  @IsOptional()
  @IsObject({ message: 'capabilities must be an object such as {"remoteUpgrade": true}' })
  @ValidateNested()
  @Type(() => CapabilitiesDto)
  capabilities?: CapabilitiesDto;
}

export class PairDto extends AgentSelfReportDto {
  @ApiProperty({ description: 'The one-time key given when the agent was registered.' })
  @IsString()
  @Length(8, 200)
  pairingKey: string;

  @ApiPropertyOptional({ example: '10.2.0' })
  @IsOptional()
  @IsSemverVersion()
  version?: string;

  @ApiPropertyOptional({ example: '10.2.0' })
  @IsOptional()
  @IsSemverVersion()
  webappsVersion?: string;
}

export class HeartbeatDto extends AgentSelfReportDto {
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'The installed version, or null if the agent cannot tell.',
    example: '10.2.0',
  })
  @ValidateIf((_, v) => v !== null)
  @IsSemverVersion()
  version: string | null;

  @ApiPropertyOptional({ type: String, nullable: true, example: '10.2.0' })
  @ValidateIf((_, v) => v !== undefined && v !== null)
  @IsSemverVersion()
  webappsVersion?: string | null;

  @ApiProperty({ description: 'Running work of its own (a scan, a job).' })
  @IsBoolean({ message: 'busy must be true or false' })
  busy: boolean;

  @ApiPropertyOptional({
    minimum: 0,
    description:
      "The revision of the cluster's signing policy the agent holds (signing.revision of an earlier answer; 0 for none): the answer carries the policy when the cluster's is another. Absent: the agent does not check signatures and is never sent the policy.",
  })
  @IsOptional()
  @IsInt({ message: 'signingRevision must be a whole number, 0 or more' })
  @Min(0, { message: 'signingRevision must be a whole number, 0 or more' })
  @Max(2 ** 31 - 1, { message: 'signingRevision must be a whole number, 0 or more' })
  signingRevision?: number;
}

export class ProgressReportDto {
  @ApiProperty({
    example: 'install',
    description: 'The phase running now (precheck, backup, stop, install, migrate, start, verify, rollback, ...).',
  })
  @Matches(/^[a-z][a-z-]{0,31}$/, { message: 'phase must be 1-32 lower-case letters or "-", such as "install"' })
  phase: string;

  @ApiProperty({ minimum: 0, maximum: 100 })
  @IsInt({ message: 'percent must be a whole number from 0 to 100' })
  @Min(0, { message: 'percent must be a whole number from 0 to 100' })
  @Max(100, { message: 'percent must be a whole number from 0 to 100' })
  percent: number;

  @ApiPropertyOptional({ maxLength: 500 })
  @IsOptional()
  @IsString()
  @Length(0, 500)
  @IsPrintableText()
  message?: string;
}

export class CompleteReportDto {
  @ApiProperty({ enum: REPORTED_ENDS, enumName: 'CommandEnd' })
  @IsIn(REPORTED_ENDS, { message: `status must be one of: ${REPORTED_ENDS.join(', ')}` })
  status: ReportedEnd;

  @ApiPropertyOptional({ description: 'The version now installed.', example: '10.3.0' })
  @IsOptional()
  @IsSemverVersion()
  version?: string;

  @ApiPropertyOptional({ maxLength: 2000 })
  @IsOptional()
  @IsString()
  @Length(0, 2000)
  @IsPrintableText()
  error?: string;

  @ApiPropertyOptional({
    type: [String],
    maxItems: 20,
    description:
      'What the operator must know: options not applied and why, a reboot issued, services stopped and started.',
  })
  @IsOptional()
  @IsArray({ message: 'notes must be an array of texts' })
  @ArrayMaxSize(20, { message: 'notes takes at most 20 texts' })
  @IsString({ each: true, message: 'each of notes must be a text' })
  @Length(1, 500, { each: true, message: 'each of notes must be 1 to 500 characters' })
  @IsPrintableText({
    each: true,
    message: 'each of notes must be printable text (no control characters but line breaks and tabs)',
  })
  notes?: string[];

  @ApiPropertyOptional({
    maxLength: 100,
    pattern: BACKUP_NAME.source,
    description:
      "An upgrade's report: the backup of the data it took (the agent's own name for it), which a rollback of that upgrade restores.",
    example: '2026-12-01T02-00-00-000Z',
  })
  @IsOptional()
  @IsString({ message: 'backup must be the name of a backup' })
  @Matches(BACKUP_NAME, {
    message: 'backup must be 1 to 100 letters, digits, dots, dashes or underscores, starting with a letter or digit',
  })
  backup?: string;
}

export class CommandDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: COMMAND_TYPES, enumName: 'CommandType' }) type: CommandType;
  [field: string]: unknown;
}

export class HeartbeatAnswerDto {
  @ApiProperty({ type: [CommandDto], description: 'Commands to run; each comes again until the agent reports on it.' })
  commands: CommandDto[];
  @ApiProperty({ description: 'Start no new work of your own while true.' }) hold: boolean;
  @ApiProperty({ description: 'When to send the next heartbeat.' }) pollAfterMs: number;
  @ApiPropertyOptional({ description: 'True once the agent has been removed: stop polling.' }) removed?: boolean;
  @ApiPropertyOptional({
    type: SigningPolicyDto,
    description:
      "The cluster's signing policy, when it differs from the signingRevision the heartbeat sent: keep it, replacing the one held.",
  })
  signing?: SigningPolicyDto;
}

export class PairAnswerDto {
  @ApiProperty({ format: 'uuid' }) agentId: string;
  @ApiProperty({ format: 'uuid' }) clusterId: string;
  @ApiProperty({ description: 'The agent token (lsa_...): keep it secret; it is shown only here.' }) token: string;
  @ApiProperty() pollAfterMs: number;
  @ApiProperty({
    type: SigningPolicyDto,
    description:
      "The cluster's signing policy: whether packages must be signed, and the keys to check them with. Send signing.revision back on heartbeats.",
  })
  signing: SigningPolicyDto;
}

export class CommandStateDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: COMMAND_TYPES, enumName: 'CommandType' }) type: CommandType;
  @ApiProperty({ enum: COMMAND_STATUSES, enumName: 'CommandStatus' }) status: CommandStatus;
  @ApiProperty({ type: String, nullable: true }) phase: string | null;
  @ApiProperty() percent: number;
}

/** One command an agent was given, and how it went: the agent's command history. */
export class AgentCommandDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) agentId: string;
  @ApiProperty({ enum: COMMAND_TYPES, enumName: 'CommandType' }) type: CommandType;
  @ApiProperty({ enum: COMMAND_STATUSES, enumName: 'CommandStatus' }) status: CommandStatus;
  @ApiProperty({ type: String, nullable: true }) phase: string | null;
  @ApiProperty() percent: number;
  @ApiProperty({ type: String, nullable: true, description: "The agent's last progress message." }) message:
    string | null;
  @ApiProperty({ type: String, nullable: true, description: 'The version the agent reported with its end.' })
  resultVersion: string | null;
  @ApiProperty({ type: String, nullable: true }) error: string | null;
  @ApiProperty({
    type: [String],
    description: 'What the agent reported it did not apply, or wants the operator to know.',
  })
  notes: string[];
  @ApiProperty({
    type: String,
    nullable: true,
    format: 'uuid',
    description: 'The upgrade it belongs to (null for a migration run by hand).',
  })
  upgradeId: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'uuid' }) stepId: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({
    type: String,
    nullable: true,
    format: 'date-time',
    description: 'When the agent received it; null = not yet.',
  })
  fetchedAt: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) endedAt: string | null;
}

export class AgentCommandPageDto {
  @ApiProperty({ type: [AgentCommandDto] }) items: AgentCommandDto[];
  @ApiProperty() total: number;
  @ApiProperty() limit: number;
  @ApiProperty() offset: number;
}

/** A `command.status` event's data: a command ended (AgentCommandsService.end), however it ended. */
export class CommandStatusEventData {
  @ApiProperty({ format: 'uuid' }) commandId: string;
  @ApiProperty({ format: 'uuid' }) agentId: string;
  @ApiProperty({ enum: COMMAND_TYPES, enumName: 'CommandType' }) type: CommandType;
  @ApiProperty({ enum: COMMAND_STATUSES, enumName: 'CommandStatus' }) status: CommandStatus;
  @ApiProperty({ type: String, nullable: true, description: 'The version the agent reported with its end.' })
  version: string | null;
  @ApiProperty({ type: String, nullable: true }) error: string | null;
  @ApiProperty({ type: [String] }) notes: string[];
  @ApiProperty({ type: String, nullable: true, description: 'Its last progress message.' }) message: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'uuid', description: 'The upgrade it was for, if any.' })
  upgradeId: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    format: 'uuid',
    description: 'The upgrade step it carried out, if any.',
  })
  stepId: string | null;
}

declare module '../../progress/event-map' {
  interface EventDataMap {
    'command.status': CommandStatusEventData;
  }
}
