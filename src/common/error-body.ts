import { HttpException, HttpStatus, LoggerService } from '@nestjs/common';
import { isUtf8 } from 'node:buffer';
import { STATUS_CODES } from 'node:http';
import { isDatabaseUnavailable } from './db-errors';
import { DomainError } from './errors';

/** The one error shape of the API: every refusal, whatever refused it, reads the same (README, "A first session"). */
export interface ErrorBody {
  statusCode: number;
  error: string;
  code: string;
  message: string;
  details?: unknown;
  requestId?: string;
}

const reason = (status: number) => STATUS_CODES[status] ?? 'Error';

/** Errors raised while reading a body (src/common/body-parsers.ts, as Express's parsers did) carry a `type` and a status. */
interface BodyParserError {
  type?: string;
  status?: number;
  statusCode?: number;
  limit?: number;
  /** Set by http-errors on a client error it wraps, e.g. a zlib error from a corrupt compressed body. */
  expose?: boolean;
}

const isBodyParserError = (e: unknown): e is BodyParserError =>
  typeof e === 'object' &&
  e !== null &&
  (typeof (e as BodyParserError).type === 'string' || (e as BodyParserError).expose === true) &&
  typeof ((e as BodyParserError).status ?? (e as BodyParserError).statusCode) === 'number';

/** Deeper JSON is refused as it is read: validating it would recurse that deep. */
export const MAX_JSON_DEPTH = 64;
const JSON_TOO_DEEP = 'entity.too.deep';

const INVALID_UTF8 = 'entity.invalid.utf8';

/**
 * A body parser `verify` hook, run on the bytes before they are parsed. JSON is UTF-8 (RFC 8259):
 * another charset is refused (415), and so are bytes that are not UTF-8, which would otherwise be
 * stored as U+FFFD in place of what was sent. JSON nested deeper than MAX_JSON_DEPTH is refused
 * before anything recurses into it, with one pass over the bytes (brackets inside strings do not count).
 */
export function checkJsonBody(_req: unknown, _res: unknown, body: Buffer, encoding: string): void {
  if (encoding.toLowerCase() !== 'utf-8' && encoding.toLowerCase() !== 'utf8') {
    throw Object.assign(new Error(`unsupported charset ${encoding}`), { type: 'charset.unsupported', status: 415 });
  }
  if (!isUtf8(body)) throw Object.assign(new Error('body is not UTF-8'), { type: INVALID_UTF8, status: 400 });
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_JSON_DEPTH)
        throw Object.assign(new Error('JSON nested too deep'), { type: JSON_TOO_DEEP, status: 400 });
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}

export interface ErrorResponse {
  status: number;
  body: ErrorBody;
  /** Seconds for a `Retry-After` header, when the refusal is temporary. */
  retryAfterS?: number;
}

/** Writes an error answer (status, Retry-After when temporary, the body). */
export function sendErrorResponse(
  reply: { status(code: number): { send(body: unknown): unknown }; header(name: string, value: string): unknown },
  answer: ErrorResponse,
): void {
  if (answer.retryAfterS !== undefined) reply.header('Retry-After', String(answer.retryAfterS));
  reply.status(answer.status).send(answer.body);
}

/**
 * Maps anything thrown while serving a request to a status and the API's error body.
 * A refusal explains itself; anything unexpected is a 500 that is logged with the request id and
 * tells the caller nothing of the internals.
 */
export function toErrorResponse(
  error: unknown,
  requestId: string | undefined,
  logger: LoggerService,
  limits: { maxJsonBodyBytes?: number } = {},
): ErrorResponse {
  const build: Build = (status, code, message, details) => ({
    status,
    body: {
      statusCode: status,
      error: reason(status),
      code,
      message,
      ...(details === undefined ? {} : { details }),
      requestId,
    },
  });

  if (error instanceof DomainError)
    return { ...build(error.status, error.code, error.message, error.details), retryAfterS: error.retryAfterS };
  const bodyRefusal = isBodyParserError(error) ? bodyParserResponse(error, build) : null;
  if (bodyRefusal) return bodyRefusal;
  if (error instanceof HttpException) return httpExceptionResponse(error, build, requestId, logger, limits);
  return unexpectedResponse(error, build, requestId, logger);
}

type Build = (status: number, code: string, message: string, details?: unknown) => ErrorResponse;

/** A body the parser refused: a 4xx that says what to fix, or null for its own 5xx (then unexpected). */
function bodyParserResponse(error: BodyParserError, build: Build): ErrorResponse | null {
  const status = error.status ?? error.statusCode ?? 400;
  switch (error.type) {
    case 'entity.too.large':
      return build(
        HttpStatus.PAYLOAD_TOO_LARGE,
        'BODY_TOO_LARGE',
        `The request body is larger than the limit of ${error.limit ?? 'the configured'} bytes; send less.`,
      );
    case 'entity.parse.failed':
      return build(HttpStatus.BAD_REQUEST, 'MALFORMED_JSON', 'The request body is not valid JSON; check its syntax.');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return build(HttpStatus.UNSUPPORTED_MEDIA_TYPE, 'UNSUPPORTED_ENCODING', 'The request body must be UTF-8 JSON.');
    case INVALID_UTF8:
      return build(
        HttpStatus.BAD_REQUEST,
        'INVALID_UTF8',
        'The request body is not valid UTF-8; send JSON encoded as UTF-8.',
      );
    case JSON_TOO_DEEP:
      return build(
        HttpStatus.BAD_REQUEST,
        'JSON_TOO_DEEP',
        `The request body nests objects or arrays more than ${MAX_JSON_DEPTH} levels deep; no request needs that many.`,
      );
    default:
      if (status < 500)
        return build(
          status,
          'BAD_BODY',
          'The request body could not be read; check Content-Type, Content-Length and, if it is compressed, that Content-Encoding names how.',
        );
      return null;
  }
}

/** Nest's HttpExceptions: an unknown route, Fastify's refusals of a body, a health check down, the rest as they are. */
function httpExceptionResponse(
  error: HttpException,
  build: Build,
  requestId: string | undefined,
  logger: LoggerService,
  limits: { maxJsonBodyBytes?: number },
): ErrorResponse {
  const status: HttpStatus = error.getStatus();
  const response = error.getResponse();
  if (
    status === HttpStatus.NOT_FOUND &&
    typeof response === 'object' &&
    /^Cannot [A-Z]+ /.test(String((response as { message?: unknown }).message))
  ) {
    return build(
      status,
      'NO_SUCH_ROUTE',
      `${String((response as { message: string }).message).replace('Cannot', 'There is no route')}; the API is described at /api/docs.`,
    );
  }
  // Fastify's own refusals of a body, before any route saw it (Nest hands them on as HttpException).
  if (status === HttpStatus.PAYLOAD_TOO_LARGE) {
    return build(
      status,
      'BODY_TOO_LARGE',
      `The request body is larger than the limit of ${limits.maxJsonBodyBytes ?? 'MAX_JSON_BODY_BYTES'} bytes; send less.`,
    );
  }
  if (status === HttpStatus.UNSUPPORTED_MEDIA_TYPE) {
    return build(
      status,
      'UNSUPPORTED_MEDIA_TYPE',
      'Send the body as application/json (UTF-8), or a package upload as multipart/form-data.',
    );
  }
  if (status === HttpStatus.SERVICE_UNAVAILABLE) {
    return build(status, 'UNAVAILABLE', 'Lockstep is not ready: a dependency is not answering.', response);
  }
  const given =
    typeof response === 'string' ? response : ((response as { message?: unknown }).message ?? error.message);
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a thrower's message may be anything (ValidationPipe's is a string[]); String() is how the API has always rendered it
  const message = String(given);
  if (status >= HttpStatus.INTERNAL_SERVER_ERROR) logger.error(`request ${requestId}: ${error.message}`, error.stack);
  return build(status, HttpStatus[status] ?? 'HTTP_ERROR', message);
}

/** Anything else: an unreachable database is a 503 to retry; the rest a 500, logged, that tells nothing of the internals. */
function unexpectedResponse(
  error: unknown,
  build: Build,
  requestId: string | undefined,
  logger: LoggerService,
): ErrorResponse {
  const err = error instanceof Error ? error : new Error(String(error));
  if (isDatabaseUnavailable(err)) {
    // Not a bug: the database is down or overloaded. Nothing was half-written (one transaction).
    logger.error(`request ${requestId}: database unavailable: ${err.message}`);
    return {
      ...build(
        HttpStatus.SERVICE_UNAVAILABLE,
        'DATABASE_UNAVAILABLE',
        `The database is not answering; nothing was changed. Retry in a moment (request id ${requestId}).`,
      ),
      retryAfterS: 5,
    };
  }
  logger.error(`request ${requestId} failed unexpectedly: ${err.message}`, err.stack);
  return build(
    HttpStatus.INTERNAL_SERVER_ERROR,
    'INTERNAL',
    `Lockstep failed unexpectedly; this is a bug. It was logged with request id ${requestId}: quote it when you report it.`,
  );
}
