import { Logger } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { randomUUID } from 'node:crypto';

const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;
const REQUEST_ID = Symbol('requestId');

type WithRequestId = Request & { [REQUEST_ID]?: string };

export const requestIdOf = (request: Request): string | undefined => (request as WithRequestId)[REQUEST_ID];

/**
 * Gives every request an id (the caller's `X-Request-Id` when sane, else a new UUID), returns it in
 * `X-Request-Id`, and logs one line when the response ends. The query string is never logged:
 * stream tickets travel there.
 */
export function requestIdAndAccessLog(): (req: Request, res: Response, next: NextFunction) => void {
  const logger = new Logger('HTTP');
  return (req, res, next) => {
    const incoming = req.header('x-request-id');
    const id = incoming && ACCEPTED_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    (req as WithRequestId)[REQUEST_ID] = id;
    res.setHeader('X-Request-Id', id);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const entry = {
        requestId: id,
        method: req.method,
        path: req.originalUrl.split('?')[0],
        status: res.statusCode,
        durationMs: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
      };
      // Successful calls are routine (agents poll constantly); refusals and failures stand out.
      if (res.statusCode >= 500) logger.error(entry);
      else if (res.statusCode >= 400) logger.log(entry);
      else logger.debug(entry);
    });
    next();
  };
}
