import { Logger } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';

const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/** Fastify's `genReqId`: the caller's `X-Request-Id` when sane, else a new UUID. */
export function requestIdFor(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && ACCEPTED_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** The id of a request (Fastify's `request.id`, set by requestIdFor). */
export const requestIdOf = (request: Pick<FastifyRequest, 'id'> | undefined): string | undefined =>
  request?.id === undefined ? undefined : String(request.id);

/**
 * Returns every request's id in `X-Request-Id`, and logs one line when the response ends. The
 * query string is never logged: stream tickets travel there. Hooks on the root instance, so the
 * native agent routes and the Nest routes are logged alike.
 */
export function addRequestIdAndAccessLog(fastify: FastifyInstance): void {
  const logger = new Logger('HTTP');
  fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    // On the raw response: event streams write their own head past Fastify, and carry it too.
    reply.raw.setHeader('X-Request-Id', request.id);
    done();
  });
  fastify.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const status = reply.statusCode;
    const entry = {
      requestId: request.id,
      method: request.method,
      path: request.url.split('?')[0],
      status,
      durationMs: Math.round(reply.elapsedTime * 1000) / 1000,
    };
    // Successful calls are routine (agents poll constantly); refusals and failures stand out.
    if (status >= 500) logger.error(entry);
    else if (status >= 400) logger.log(entry);
    else logger.debug(entry);
    done();
  });
}
