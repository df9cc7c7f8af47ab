import { ConsoleLogger, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import helmet from 'helmet';
import { AppModule, AppOverrides } from './app.module';
import { AGENT_ROUTE_MODELS, documentAgentRoutes, registerAgentRoutes } from './cluster/agent-protocol.routes';
import { AllExceptionsFilter, BeforeErrorAnswer } from './common/all-exceptions.filter';
import { AuditedRequest, originOfRequest } from './audit/audit.decorators';
import { AuditTrail } from './audit/audit-trail.service';
import { registerBodyParsers } from './common/body-parsers';
import { LockstepLogger } from './common/logger';
import { refuseNewRequestsWhileStopping, ShutdownState } from './common/graceful-stop';
import { addRequestIdAndAccessLog, requestIdFor } from './common/request-id';
import { createValidationPipe } from './common/validation';
import { AppConfig, LOG_LEVELS, LogLevelName } from './config/app-config';
import { DASHBOARD_CSP, DASHBOARD_DIR } from './dashboard/dashboard';

/** LOG_LEVEL names the least severe level shown; everything more severe is shown too. */
export function logLevelsFrom(level: LogLevelName): LogLevel[] {
  return LOG_LEVELS.slice(0, LOG_LEVELS.indexOf(level) + 1);
}

/** Nest's ConsoleLogger with ISO times, string messages in JSON and escaped control characters in text (src/common/logger.ts). */
export function createLogger(config: Pick<AppConfig, 'logLevel' | 'logFormat'>): ConsoleLogger {
  return new LockstepLogger({
    json: config.logFormat === 'json',
    colors: false,
    logLevels: logLevelsFrom(config.logLevel),
    prefix: 'lockstep',
  });
}

/**
 * helmet's headers on every answer but the agent protocol's (nosniff, Referrer-Policy, a strict
 * CSP, frame and cross-origin rules) minus HSTS, which belongs to the proxy that terminates TLS: Lockstep often
 * serves plain HTTP on a private network. API answers are never cached: some carry secrets
 * (new tokens, pairing keys, agent tokens, stream tickets) and all of them are live state.
 * docs/security.md lists every header.
 */
function addSecurityHeaders(fastify: FastifyInstance): void {
  const headers = helmet({ strictTransportSecurity: false });
  fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => {
    // Set on the raw response, so that streams and files written past Fastify carry them too.
    if (request.url.startsWith('/api/v1/')) {
      reply.raw.setHeader('Cache-Control', 'no-store');
      // The agent protocol is for programs only (agent tokens reach nothing else): browser headers
      // protect nothing there, and on the heartbeat, the hottest path, they cost a third of its rate.
      if (request.url.startsWith('/api/v1/agent/')) return done();
    }
    headers(request.raw, reply.raw, (error?: unknown) => done(error as Error | undefined));
  });
}

/**
 * Node ends any request not fully received within 300 s (requestTimeout), which would cap a 4 GiB
 * package at about 14 MB/s. Instead a connection is cut only when it goes quiet: nothing sent or
 * received for IDLE_CONNECTION_MS (or twice the event-stream keep-alive, which writes to idle
 * streams); headers must still arrive within 60 s. A stalled upload is thus ended and its temporary
 * file removed within minutes (docs/uploads.md).
 */
const IDLE_CONNECTION_MS = 120_000;
function applyConnectionTimeouts(server: import('node:http').Server, config: AppConfig): void {
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.setTimeout(Math.max(IDLE_CONNECTION_MS, 2 * config.sseKeepAliveMs));
}

/** Builds the configured application; main.ts and the tests both start Lockstep through here. */
export async function createApp(config: AppConfig, overrides: AppOverrides = {}): Promise<NestFastifyApplication> {
  const logger = createLogger(config);
  const adapter = new FastifyAdapter({
    // On close, idle keep-alive connections are closed and requests in flight finish; stopGracefully
    // bounds how long they may take, and event streams end before (EventStreams).
    forceCloseConnections: 'idle',
    genReqId: requestIdFor,
    // The client address the rate limits count by (docs/security.md): a proxy's X-Forwarded-For is
    // believed only for the proxies TRUST_PROXY names.
    trustProxy: config.trustProxy,
    bodyLimit: config.maxJsonBodyBytes,
    // A too-long path segment is then a 400 from the route's own check (a UUID), not a 404.
    routerOptions: { maxParamLength: 16 * 1024 },
    // Lockstep answers errors in its own shape (src/common/error-body.ts); its logger is Nest's.
    logger: false,
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config, overrides), adapter, {
    logger,
    bodyParser: false,
    abortOnError: false,
  });
  const fastify = app.getHttpAdapter().getInstance();
  addRequestIdAndAccessLog(fastify);
  refuseNewRequestsWhileStopping(fastify, app.get(ShutdownState));
  addSecurityHeaders(fastify);
  registerBodyParsers(fastify, config.maxJsonBodyBytes);
  // The dashboard's files, at `/`; public like /health: the page itself asks for a token.
  app.useStaticAssets({
    root: DASHBOARD_DIR,
    prefix: '/',
    index: 'index.html',
    maxAge: 5 * 60_000,
    // @fastify/static 10 hands setHeaders the reply (Nest's option type still names a raw response).
    setHeaders: (reply) => void (reply as unknown as FastifyReply).header('Content-Security-Policy', DASHBOARD_CSP),
  });
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(
    new AllExceptionsFilter({ maxJsonBodyBytes: config.maxJsonBodyBytes }, recordRefusals(app.get(AuditTrail))),
  );
  registerAgentRoutes(app);
  applyConnectionTimeouts(app.getHttpServer(), config);

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Lockstep')
      .setDescription(
        'Keeps a cluster of on-premise agents on one version: packages, failover-aware upgrades, live progress.',
      )
      .setVersion('1')
      .addBearerAuth({
        type: 'http',
        scheme: 'bearer',
        description: 'An API token (lsk_…) or, on /api/v1/agent/*, an agent token (lsa_…).',
      })
      .build(),
    { extraModels: AGENT_ROUTE_MODELS },
  );
  documentAgentRoutes(document);
  // Public routes (x-access, from the access decorators) say so: no security requirement at all.
  for (const item of Object.values(document.paths)) {
    for (const operation of Object.values(item) as Array<{ 'x-access'?: { kind: string }; security?: unknown[] }>) {
      if (operation?.['x-access']?.kind === 'public' && !operation.security) operation.security = [];
    }
  }
  SwaggerModule.setup('api/docs', app, document, {
    jsonDocumentUrl: 'api/docs-json',
    yamlDocumentUrl: 'api/docs-yaml',
  });
  return app;
}

/**
 * A refused or failed call of an audited route is recorded before it is answered (docs/audit.md).
 * Not a 429: the address is already over its limit of failed token checks, and recording each
 * further try would let anyone without a token fill the trail. Not a 503: the database could not
 * take a write (or the process is stopping), so the record would wait for it only to fail too.
 */
function recordRefusals(audit: AuditTrail): BeforeErrorAnswer {
  return async (request, answer) => {
    const audited = request as unknown as AuditedRequest;
    if (!audited.auditedRoute || answer.status === 429 || answer.status === 503) return;
    await audit.recordRefusal({
      route: audited.auditedRoute,
      origin: originOfRequest(audited),
      params: (request.params ?? {}) as Record<string, unknown>,
      status: answer.status,
      code: answer.body.code,
      message: answer.body.message,
    });
  };
}
