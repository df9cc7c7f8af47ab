import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Client } from 'pg';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { Database, Tx } from './database';

const RECONNECT_AFTER_MS = 1000;
/**
 * How often the listening connection is asked to answer, and how long it may take: a connection
 * silently cut (a partition, a failover) reports no error, and `live` would stay true meanwhile.
 */
const PROBE_EVERY_MS = 10_000;
const PROBE_TIMEOUT_MS = 5_000;

/** Ends a connection whose events no longer matter (a dead client may still emit errors). */
async function closeQuietly(client: Client): Promise<void> {
  client.removeAllListeners();
  client.on('error', () => undefined);
  await client.end().catch(() => undefined);
}

/** What a channel's subscriber does with what other replicas say. */
export interface ChannelSubscriber {
  /** A replica committed a transaction that sent this payload (this replica's own commits included). */
  notified(payload: string): void;
  /**
   * Notifications may have been missed: the listener connection was lost (called at once) or has
   * just been (re)established (called again, after LISTEN). Catch up, or forget what a missed
   * notification could have made stale.
   */
  resync(): void;
}

/**
 * Word between replicas (docs/ARCHITECTURE.md, "Replicas"): on PostgreSQL, a NOTIFY sent inside a transaction
 * (delivered to every replica at commit, dropped on rollback) and one dedicated LISTEN connection
 * per replica that hands each channel's payloads to its subscribers. On SQLite there is one process
 * and nothing to tell: `notify` does nothing, and subscribers act on their own commits themselves.
 *
 * `live` says whether notifications flow right now: always on SQLite; on PostgreSQL only while the
 * listener is connected. A cache that relies on being told of changes (the token cache) keeps its
 * entries long only while it is true.
 */
@Injectable()
export class Notifications implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(Notifications.name);
  private readonly subscribers = new Map<string, ChannelSubscriber[]>();
  private client: Client | null = null;
  private stopped = false;
  private retry: NodeJS.Timeout | null = null;
  private probe: NodeJS.Timeout | null = null;
  /** Connections already given up: one lost while LISTEN was still being sent must not become live. */
  private readonly lostClients = new WeakSet<Client>();

  constructor(
    private readonly db: Database,
    @InjectAppConfig() private readonly config: AppConfig,
  ) {}

  get live(): boolean {
    return this.db.type !== 'postgres' || this.client !== null;
  }

  /** Subscribes to a channel; call before the application bootstraps (in a constructor or onModuleInit). */
  subscribe(channel: string, subscriber: ChannelSubscriber): void {
    this.subscribers.set(channel, [...(this.subscribers.get(channel) ?? []), subscriber]);
  }

  /** Tells every replica, when `tx` commits. The payload is plain text, at most 8000 bytes (PostgreSQL's limit). */
  async notify(tx: Tx, channel: string, payload: string): Promise<void> {
    if (this.db.type === 'postgres') await tx.em.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.probe) clearInterval(this.probe);
    const client = this.client;
    this.client = null;
    // Its end is no loss to report: nothing is resynced on the way out.
    if (client) await closeQuietly(client);
  }

  private async connect(): Promise<void> {
    if (this.stopped || this.config.database.type !== 'postgres') return;
    const client = new Client({
      connectionString: this.config.database.url,
      application_name: 'lockstep-listen',
      keepAlive: true,
    });
    client.on('notification', ({ channel, payload }) => {
      for (const subscriber of this.subscribers.get(channel) ?? []) subscriber.notified(payload ?? '');
    });
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      for (const channel of this.subscribers.keys()) await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
      if (this.stopped || this.lostClients.has(client)) return await closeQuietly(client);
      this.client = client;
      this.probe ??= setInterval(() => void this.probeListener(), PROBE_EVERY_MS).unref();
      this.resyncAll(); // whatever was committed while nobody listened
    } catch (error) {
      this.lost(client, error as Error);
    }
  }

  /** The listener answers a query in time, or it is lost (and reconnected). */
  private async probeListener(): Promise<void> {
    const client = this.client;
    if (!client) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
    });
    try {
      await Promise.race([client.query('SELECT 1'), late]);
    } catch (error) {
      this.lost(client, error as Error);
    } finally {
      clearTimeout(timer);
    }
  }

  private lost(client: Client, error?: Error): void {
    if (this.stopped || this.lostClients.has(client)) return;
    this.lostClients.add(client);
    const wasLive = this.client === client;
    if (wasLive) this.client = null;
    void closeQuietly(client);
    if (wasLive) this.resyncAll();
    if (this.retry) return;
    this.logger.warn(`notification listener connection lost${error ? `: ${error.message}` : ''}; reconnecting`);
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.connect();
    }, RECONNECT_AFTER_MS);
  }

  private resyncAll(): void {
    for (const subscribers of this.subscribers.values()) for (const subscriber of subscribers) subscriber.resync();
  }
}
