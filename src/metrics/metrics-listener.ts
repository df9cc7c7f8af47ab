import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import * as http from 'node:http';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { Metrics } from './metrics.service';

/**
 * With METRICS_PORT, a second listener that answers GET /metrics and nothing else, without a
 * token: for a Prometheus on a private network, so no API token sits on its host. It binds to
 * METRICS_HOST, 127.0.0.1 unless set, so it is not reachable from outside by mistake
 * (docs/metrics.md).
 */
@Injectable()
export class MetricsListener implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(MetricsListener.name);
  private server?: http.Server;

  constructor(
    private readonly metrics: Metrics,
    @InjectAppConfig() private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const listener = this.config.metricsListener;
    if (!listener) return;
    const server = http.createServer((req, res) => void this.answer(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listener.port, listener.host, () => resolve());
    });
    this.server = server;
    this.logger.log(`metrics on http://${listener.host}:${listener.port}/metrics (no token)`);
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Only GET /metrics is served here.\n');
      return;
    }
    try {
      const body = await this.metrics.scrape();
      res.writeHead(200, { 'Content-Type': this.metrics.contentType, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (error) {
      this.logger.error(`a scrape failed: ${(error as Error).message}`);
      res
        .writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' })
        .end('The metrics could not be read; try again.\n');
    }
  }
}
