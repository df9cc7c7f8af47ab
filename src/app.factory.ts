import { ConsoleLogger, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import { AppModule, AppOverrides } from './app.module';
import { AllExceptionsFilter } from './common/all-exceptions.filter';
import { LockstepLogger } from './common/logger';
import { checkJsonBody, sendErrorResponse, toErrorResponse } from './common/error-body';
import { requestIdAndAccessLog, requestIdOf } from './common/request-id';
import { createValidationPipe } from './common/validation';
import { AppConfig, LOG_LEVELS, LogLevelName } from './config/app-config';
import { DASHBOARD_CSP, DASHBOARD_DIR } from './dashboard/dashboard';

/** LOG_LEVEL names the least severe level shown; everything more severe is shown too. */
export function logLevelsFrom(level: LogLevelName): LogLevel[] {
  return LOG_LEVELS.slice(0, LOG_LEVELS.indexOf(level) + 1) as LogLevel[];
}

/** Nest's ConsoleLogger with ISO times, string messages in JSON and escaped control characters in text (src/common/logger.ts). */
export function createLogger(config: Pick<AppConfig, 'logLevel' | 'logFormat'>): ConsoleLogger {
  return new LockstepLogger({ json: config.logFormat === 'json', colors: false, logLevels: logLevelsFrom(config.logLevel), prefix: 'lockstep' });
}

/**
 * helmet's headers on every answer but the agent protocol's (nosniff, Referrer-Policy, a strict
 * CSP, frame and cross-origin rules) minus HSTS, which belongs to the proxy that terminates TLS: Lockstep often
 * serves plain HTTP on a private network. API answers are never cached: some carry secrets
 * (new tokens, pairing keys, agent tokens, stream tickets) and all of them are live state.
 * docs/security.md lists every header.
 */
function securityHeaders() {
  const headers = helmet({ strictTransportSecurity: false });
  return (req: Request, res: Response, next: NextFunction) => {
    if (!req.path.startsWith('/api/v1/')) return headers(req, res, next);
    res.setHeader('Cache-Control', 'no-store');
    // The agent protocol is for programs only (agent tokens reach nothing else): browser headers
    // protect nothing there, and on the heartbeat, the hottest path, they cost a third of its rate.
    if (req.path.startsWith('/api/v1/agent/')) return next();
    headers(req, res, next);
  };
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
export async function createApp(config: AppConfig, overrides: AppOverrides = {}): Promise<NestExpressApplication> {
  const logger = createLogger(config);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, overrides), {
    logger,
    bodyParser: false,
    // Open keep-alive and streaming connections must not hold a shutdown hostage.
    forceCloseConnections: true,
    abortOnError: false,
  });

  app.disable('x-powered-by');
  // Express hashes every response body for an ETag; API answers are never revalidated, so it is
  // wasted work on every call (heartbeats above all). Downloads set their own ETag.
  app.set('etag', false);
  // The client address the rate limits count by (docs/security.md): a proxy's X-Forwarded-For is
  // believed only for the proxies TRUST_PROXY names.
  app.set('trust proxy', config.trustProxy);
  app.use(requestIdAndAccessLog());
  app.use(securityHeaders());
  // The dashboard's files, at `/`; public like /health: the page itself asks for a token.
  app.useStaticAssets(DASHBOARD_DIR, { index: 'index.html', maxAge: '5m', setHeaders: (res) => res.setHeader('Content-Security-Policy', DASHBOARD_CSP) });
  app.useBodyParser('json', { limit: config.maxJsonBodyBytes, verify: checkJsonBody });
  // Body-parser errors happen before Nest's pipeline, so they are answered here in the same shape.
  app.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    sendErrorResponse(res, toErrorResponse(error, requestIdOf(req), logger));
  });
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new AllExceptionsFilter());
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  applyConnectionTimeouts(app.getHttpServer(), config);

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Lockstep')
      .setDescription('Keeps a cluster of on-premise agents on one version: packages, failover-aware upgrades, live progress.')
      .setVersion('1')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'An API token (lsk_…) or, on /api/v1/agent/*, an agent token (lsa_…).' })
      .build(),
  );
  SwaggerModule.setup('api/docs', app, document, { jsonDocumentUrl: 'api/docs-json', yamlDocumentUrl: 'api/docs-yaml' });
  return app;
}
