import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { sendErrorResponse, toErrorResponse } from './error-body';
import { requestIdOf } from './request-id';

/** The one exception filter: every error leaves as the API's error body. */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<Request>();
    const response = http.getResponse<Response>();
    const answer = toErrorResponse(exception, requestIdOf(request), this.logger);
    if (response.headersSent) {
      // A stream that already started cannot change its status; end it and keep the log.
      response.end();
      return;
    }
    sendErrorResponse(response, answer);
  }
}
