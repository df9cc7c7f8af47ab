import { Injectable, Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendErrorResponse, toErrorResponse } from './error-body';
import { ShuttingDownError } from './errors';

/** How long the shutdown hooks may take besides the requests' grace, before the stop gives up. */
const HOOKS_MS = 20_000;

/** Whether this process is stopping; set once, by stopGracefully. */
@Injectable()
export class ShutdownState {
  stopping = false;
}

/**
 * Once the process is stopping, a new request is answered 503 SHUTTING_DOWN with `Connection:
 * close` before anything runs (and any answer sent from then on closes its connection) (a load balancer, or the client's retry, takes it elsewhere); the
 * requests already running finish. Readiness (/health/ready) answers the same, so balancers stop
 * sending here.
 */
export function refuseNewRequestsWhileStopping(fastify: FastifyInstance, state: ShutdownState): void {
  const logger = new Logger('HTTP');
  fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    if (!state.stopping) return done();
    void reply.header('Connection', 'close');
    sendErrorResponse(reply, toErrorResponse(new ShuttingDownError(), String(request.id), logger));
  });
  // A request in flight when the stop began is answered with `Connection: close` too: a kept-alive
  // connection would hold the stop until the grace ran out, and then be cut.
  fastify.addHook('onSend', (_request: FastifyRequest, reply: FastifyReply, payload: unknown, done) => {
    if (state.stopping) void reply.header('Connection', 'close');
    done(null, payload);
  });
}

/**
 * The stop on SIGTERM (docs/operations.md, "Stopping"): new requests are refused and idle
 * keep-alive connections closed at once; then Nest's shutdown hooks run (the executor's pass
 * ends, buffered heartbeats are written, event streams end with a short retry hint, the leader
 * lock is released) and the HTTP server closes once the requests in flight are answered, or after
 * `graceMs`, when those still running are cut (their clients retry); last the database closes. A
 * stop that has not ended 20 s after that rejects (main.ts exits 1).
 */
export async function stopGracefully(app: NestFastifyApplication, graceMs: number): Promise<void> {
  const logger = new Logger('Lockstep');
  app.get(ShutdownState).stopping = true;
  const server = app.getHttpServer();
  server.closeIdleConnections();
  const cut = setTimeout(() => {
    logger.warn(`still answering requests ${graceMs} ms into the stop: cutting them (their clients retry)`);
    server.closeAllConnections();
  }, graceMs);
  // A hook that never returns (a database that stopped answering) must not keep the process: the
  // stop fails, and what was committed is safe anyway.
  let giveUp: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    giveUp = setTimeout(
      () => reject(new Error(`the stop did not end within ${graceMs + HOOKS_MS} ms`)),
      graceMs + HOOKS_MS,
    );
  });
  try {
    await Promise.race([app.close(), hung]);
  } finally {
    clearTimeout(cut);
    clearTimeout(giveUp);
  }
}
