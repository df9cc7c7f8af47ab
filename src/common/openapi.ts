import { applyDecorators } from '@nestjs/common';
import {
  ApiDefaultResponse,
  ApiExtraModels,
  ApiOkResponse,
  ApiProperty,
  ApiPropertyOptional,
  ApiResponse,
} from '@nestjs/swagger';

/** One refused field of a body, query or path: what is wrong with it, in words that say what to send. */
export class FieldProblemDto {
  @ApiProperty({ example: 'target.all', description: 'The field, as a dotted path.' }) field: string;
  @ApiProperty({ type: [String], example: ['target.all must be true'] }) problems: string[];
}

/**
 * The one shape of every refusal and failure (src/common/error-body.ts), published in the OpenAPI
 * document so that a generated client reads refusals as typed values.
 */
export class ErrorBodyDto {
  @ApiProperty({ example: 400 }) statusCode: number;
  @ApiProperty({ example: 'Bad Request', description: "The status's reason phrase." }) error: string;
  @ApiProperty({ example: 'VALIDATION_FAILED', description: 'A stable code to act on; the message may change.' })
  code: string;
  @ApiProperty({ description: 'What went wrong and what to do.' }) message: string;
  @ApiPropertyOptional({
    description:
      'For VALIDATION_FAILED and other input refusals: each bad field (FieldProblemDto); for others, the facts the message names (ids, statuses, archive entries).',
    anyOf: [
      { type: 'array', items: { $ref: '#/components/schemas/FieldProblemDto' } },
      { type: 'array', items: { type: 'object', additionalProperties: true } },
      { type: 'object', additionalProperties: true },
    ],
  })
  details?: FieldProblemDto[] | Record<string, unknown>;
  @ApiPropertyOptional({ description: 'Quote it when reporting a problem; the access log has it.' }) requestId?: string;
}

/** On a controller: every operation's other answers are refusals in the one error shape. */
export const ApiRefusals = () =>
  applyDecorators(
    ApiExtraModels(ErrorBodyDto, FieldProblemDto),
    ApiDefaultResponse({ type: ErrorBodyDto, description: 'A refusal or a failure, in the one error shape.' }),
  );

/** A package download: the archive, whole (200) or a byte range of it (206). */
export const ApiPackageContent = () =>
  applyDecorators(
    ApiOkResponse({
      description: 'The whole package; ETag and X-Content-SHA256 carry its sha256.',
      content: { 'application/gzip': { schema: { type: 'string', format: 'binary' } } },
    }),
    ApiResponse({
      status: 206,
      description: 'The byte range asked for (Range, If-Range against the ETag).',
      content: { 'application/gzip': { schema: { type: 'string', format: 'binary' } } },
    }),
  );
