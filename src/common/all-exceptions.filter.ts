import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendErrorResponse, toErrorResponse } from './error-body';
import { requestIdOf } from './request-id';

/** The one exception filter: every error leaves as the API's error body, the native agent routes' too. */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  constructor(private readonly limits: { maxJsonBodyBytes?: number } = {}) {}

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
    sendErrorResponse(reply, answer);
  }
}
