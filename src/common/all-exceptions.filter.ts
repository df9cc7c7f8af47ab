import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorResponse, sendErrorResponse, toErrorResponse } from './error-body';
import { requestIdOf } from './request-id';

/** Called with every error answer before it is sent: the audit trail records refused calls (docs/audit.md). */
export type BeforeErrorAnswer = (request: FastifyRequest, answer: ErrorResponse) => Promise<void>;

/** The one exception filter: every error leaves as the API's error body, the native agent routes' too. */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  constructor(
    private readonly limits: { maxJsonBodyBytes?: number } = {},
    private readonly beforeAnswer?: BeforeErrorAnswer,
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const answer = toErrorResponse(exception, requestIdOf(request), this.logger, this.limits);
    if (reply.sent || reply.raw.headersSent) {
      // A stream that already started cannot change its status; end it and keep the log.
      if (!reply.raw.writableEnded) reply.raw.end();
      return;
    }
    if (!this.beforeAnswer) return sendErrorResponse(reply, answer);
    // The answer waits for the record, so a caller who reads the audit trail next finds it there.
    void this.beforeAnswer(request, answer).finally(() => sendErrorResponse(reply, answer));
  }
}
