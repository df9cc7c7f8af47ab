import { HttpStatus } from '@nestjs/common';

/** One problem with one input field, as carried in an error body's `details`. */
export interface FieldProblem {
  field: string;
  problems: string[];
}

/**
 * A refusal the user can act on. Services throw these; the exception filter maps them to HTTP
 * with the body `{statusCode, error, code, message, details?}`. `message` tells a person what to do.
 */
export class DomainError extends Error {
  /** When set, the answer carries `Retry-After` with this many seconds: the refusal is temporary. */
  retryAfterS?: number;

  constructor(
    readonly status: HttpStatus,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class NotFoundError extends DomainError {
  constructor(resource: string, id: string) {
    super(HttpStatus.NOT_FOUND, 'NOT_FOUND', `${resource} ${id} does not exist; check the id.`);
  }
}

export class ConflictError extends DomainError {
  constructor(code: string, message: string, details?: unknown) {
    super(HttpStatus.CONFLICT, code, message, details);
  }
}

export class UnprocessableError extends DomainError {
  constructor(code: string, message: string, details?: unknown) {
    super(HttpStatus.UNPROCESSABLE_ENTITY, code, message, details);
  }
}

export class BadInputError extends DomainError {
  /** `details` is most often the FieldProblem[] of a refused body, but may be anything that says more. */
  constructor(message: string, details?: unknown, code = 'VALIDATION_FAILED') {
    super(HttpStatus.BAD_REQUEST, code, message, details);
  }
}

export class UnauthenticatedError extends DomainError {
  constructor(message: string, code = 'UNAUTHENTICATED') {
    super(HttpStatus.UNAUTHORIZED, code, message);
  }
}

export class ForbiddenError extends DomainError {
  constructor(message: string, code = 'FORBIDDEN') {
    super(HttpStatus.FORBIDDEN, code, message);
  }
}

/** Too many attempts from one client address; `Retry-After` says when it may try again. */
export class TooManyRequestsError extends DomainError {
  constructor(message: string, retryAfterS: number, code = 'RATE_LIMITED') {
    super(HttpStatus.TOO_MANY_REQUESTS, code, message);
    this.retryAfterS = Math.max(1, Math.ceil(retryAfterS));
  }
}

/** The process is stopping (SIGTERM): a request that arrives then is not run at all. */
export class ShuttingDownError extends DomainError {
  constructor() {
    super(
      HttpStatus.SERVICE_UNAVAILABLE,
      'SHUTTING_DOWN',
      'This Lockstep process is stopping and takes no new requests; nothing was changed. Send the request again: another replica answers it, or this one once it is back.',
    );
    this.retryAfterS = 1;
  }
}
