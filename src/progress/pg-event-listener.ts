import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Client } from 'pg';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { EventFeed } from './event-feed';
import { EVENTS_CHANNEL } from './event-log.service';

const RECONNECT_AFTER_MS = 1000;

/**
 * On PostgreSQL, LISTENs on a dedicated connection and pokes the feed whenever any replica commits
 * events, so a viewer on this replica sees what an agent reported to another. After a lost
 * connection it reconnects and pokes once, catching up on whatever was committed meanwhile.
 */
@Injectable()
export class PgEventListener implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(PgEventListener.name);
  private client: Client | null = null;
  private stopped = false;
  private retry: NodeJS.Timeout | null = null;

  constructor(
    private readonly feed: EventFeed,
    @InjectAppConfig() private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.database.type !== 'postgres') return;
    await this.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }

  private async connect(): Promise<void> {
    if (this.stopped || this.config.database.type !== 'postgres') return;
    const client = new Client({ connectionString: this.config.database.url, application_name: 'lockstep-listen' });
    client.on('notification', () => void this.feed.poke());
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_CHANNEL}`);
      this.client = client;
      await this.feed.poke(); // whatever committed while we were not listening
    } catch (error) {
      this.lost(client, error as Error);
    }
  }

  private lost(client: Client, error?: Error): void {
    if (this.client === client) this.client = null;
    client.removeAllListeners();
    client.on('error', () => undefined); // a dead client may still emit; nothing left to do with it
    client.end().catch(() => undefined);
    if (this.stopped || this.retry) return;
    this.logger.warn(`event listener connection lost${error ? `: ${error.message}` : ''}; reconnecting`);
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.connect();
    }, RECONNECT_AFTER_MS);
  }
}
