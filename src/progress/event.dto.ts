import { applyDecorators } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiOkResponse,
  ApiProperty,
  ApiPropertyOptional,
  getSchemaPath,
  type SchemaObject,
} from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, IsUUID, Length, Matches, Max, Min } from 'class-validator';
import { EVENT_DATA_SCHEMAS, type EventData } from './event-map';
import { EVENT_TYPES, type EventType, ProgressEvent } from './progress-event.entity';

const toInt = () => Transform(({ value }: { value: unknown }) => (/^\d+$/.test(String(value)) ? Number(value) : value));

/** One event as streams and history carry it. */
export class EventDto {
  @ApiProperty({ description: 'Global, strictly increasing; what Last-Event-ID refers to.' }) id: number;
  @ApiProperty({ enum: EVENT_TYPES, enumName: 'EventType' }) type: EventType;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'uuid' }) clusterId: string;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) upgradeId: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) agentId: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description:
      "The name of the token whose call caused this event; null for Lockstep's own work and agents' reports.",
  })
  actor: string | null;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: "The event's type decides its shape: EventDataMap (src/progress/event-map.ts), one schema per type.",
  })
  data: Record<string, unknown>;
}

/** An event whose data is known by its type (EventDataMap). */
export type TypedEventDto<T extends EventType = EventType> = {
  [K in T]: Omit<EventDto, 'type' | 'data'> & { type: K; data: EventData<K> };
}[T];

const dataSchemaOf = (type: EventType) => `#/components/schemas/${EVENT_DATA_SCHEMAS[type]}`;

/** One type's event: an EventDto whose type is that one and whose data is that type's DTO. */
const typedEventSchema = (type: EventType): SchemaObject => ({
  allOf: [
    { $ref: getSchemaPath(EventDto) },
    {
      type: 'object',
      required: ['type', 'data'],
      properties: { type: { type: 'string', enum: [type] }, data: { $ref: dataSchemaOf(type) } },
    },
  ],
});

/** Any event, told apart by its type: what history items and each SSE frame's data are. */
export const TYPED_EVENT_SCHEMA: SchemaObject = { oneOf: EVENT_TYPES.map(typedEventSchema) };

/** `event: reset`: the events after Last-Event-ID are gone (retention) or were never this log's. */
export class StreamResetDto {
  @ApiProperty({ enum: ['events-expired', 'unknown-event-id'] }) reason: 'events-expired' | 'unknown-event-id';
  @ApiProperty() lastEventId: number;
  @ApiProperty({ type: Number, nullable: true }) oldestRetainedId: number | null;
}

/**
 * An SSE route: `text/event-stream`; each frame's `data:` is JSON: an event (one schema per type),
 * the final upgrade.status data (`event: end`, an upgrade's stream) or a StreamResetDto (`event:
 * reset`). `x-sse-events` names the schema of each `event:` a frame may carry.
 */
export const ApiEventStream = () =>
  applyDecorators(
    ApiExtraModels(EventDto, StreamResetDto),
    ApiOkResponse({
      description:
        "Server-Sent Events: `retry`, then per event `id: <id>`, `event: <type>` and `data: <the event as JSON>` (schema: one per type, told apart by `type`); `event: end` (an upgrade's stream) carries UpgradeStatusEventData, `event: reset` StreamResetDto (the events after Last-Event-ID are no longer retained); `: keep-alive` comments while idle. `x-sse-events` lists the data schema of every `event:` name.",
      content: {
        'text/event-stream': {
          // One frame's data: an event (by its type), an `end` or a `reset`.
          schema: {
            oneOf: [
              ...EVENT_TYPES.map(typedEventSchema),
              { $ref: dataSchemaOf('upgrade.status') },
              { $ref: getSchemaPath(StreamResetDto) },
            ],
          },
          // A vendor extension of the media type (OpenAPI 3.0 has no word for SSE frames).
          ...({
            'x-sse-events': {
              ...Object.fromEntries(EVENT_TYPES.map((type) => [type, typedEventSchema(type)])),
              end: { $ref: dataSchemaOf('upgrade.status') },
              reset: { $ref: getSchemaPath(StreamResetDto) },
            },
          } as object),
        },
      },
    }),
  );

export function toEventDto(event: ProgressEvent): EventDto {
  return {
    id: event.id,
    type: event.type,
    createdAt: event.createdAt.toISOString(),
    clusterId: event.clusterId,
    upgradeId: event.upgradeId,
    agentId: event.agentId,
    actor: event.actor ?? null,
    data: event.data,
  };
}

export class StreamQuery {
  @ApiPropertyOptional({
    description: 'Replay every event after this id, then go live (same as the Last-Event-ID header).',
  })
  @IsOptional()
  @Matches(/^\d{1,15}$/, { message: 'lastEventId must be a whole number, 0 or more' })
  lastEventId?: string;

  @ApiPropertyOptional({
    description: 'A stream ticket from POST /api/v1/stream-tickets, for clients that cannot send headers.',
  })
  @IsOptional()
  @IsString()
  @Length(8, 200)
  ticket?: string;
}

export class UpgradeStreamQuery extends StreamQuery {
  @ApiPropertyOptional({
    enum: ['true', 'false'],
    default: 'false',
    description:
      "Stay open after the upgrade ended (to watch a later retry of it). Without it the stream sends `event: end` (the upgrade's final status) once the upgrade ended and every event up to then was sent, then closes.",
  })
  @IsOptional()
  @IsIn(['true', 'false'], { message: 'follow must be true or false' })
  follow?: 'true' | 'false';
}

export class HistoryQuery {
  @ApiPropertyOptional({ description: 'Events after this id (0 = from the oldest retained).', default: 0 })
  @IsOptional()
  @toInt()
  @IsInt({ message: 'afterId must be a whole number, 0 or more' })
  @Min(0, { message: 'afterId must be a whole number, 0 or more' })
  afterId?: number;

  @ApiPropertyOptional({ default: 200, minimum: 1, maximum: 1000 })
  @IsOptional()
  @toInt()
  @IsInt({ message: 'limit must be a whole number from 1 to 1000' })
  @Min(1, { message: 'limit must be a whole number from 1 to 1000' })
  @Max(1000, { message: 'limit must be a whole number from 1 to 1000' })
  limit?: number;
}

export class HistoryPageDto {
  @ApiProperty({ type: 'array', items: TYPED_EVENT_SCHEMA }) items: EventDto[];
  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'Pass as afterId for the next page; null when this page is the last.',
  })
  nextAfterId: number | null;
}

export const STREAM_KINDS = ['cluster', 'upgrade'] as const;

export class StreamTicketRequestDto {
  @ApiProperty({ enum: STREAM_KINDS, enumName: 'StreamKind' })
  @IsIn(STREAM_KINDS, { message: `stream must be one of: ${STREAM_KINDS.join(', ')}` })
  stream: (typeof STREAM_KINDS)[number];

  @ApiProperty({ format: 'uuid', description: 'The cluster or upgrade id.' })
  @IsUUID('all', { message: 'id must be a UUID' })
  id: string;
}

export class StreamTicketDto {
  @ApiProperty({ description: 'Pass as ?ticket= when opening the stream; good once, for one stream.' }) ticket: string;
  @ApiProperty({ format: 'date-time' }) expiresAt: string;
  @ApiProperty({ description: 'The stream URL with the ticket, ready for EventSource.' }) url: string;
}
