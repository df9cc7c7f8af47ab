import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Client } from 'pg';
import { type AppConfig, InjectAppConfig } from '../config/app-config';

/** Advisory lock key held by the leading replica (arbitrary, fixed; the migration lock is another). */
const LEADER_LOCK_KEY = 7_318_201_002;
const TRY_EVERY_MS = 2000;

/**
 * Which replica runs the periodic jobs (executor ticks and scheduled starts, the offline sweep,
 * auto-upgrade, event retention), so they run once across replicas, not once per replica.
 *
 * On PostgreSQL the leader is the replica holding a session advisory lock on a dedicated
 * connection. If that replica dies, PostgreSQL ends its session and frees the lock, and another
 * replica takes it within TRY_EVERY_MS. On SQLite there is one process: it always leads.
 * Work that reacts to a request (a report, an operator's call) runs on whichever replica got it;
 * per-upgrade locks keep that safe.
 */
@Injectable()
export class Leadership implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(Leadership.name);
  private client: Client | null = null;
  private leader: boolean;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(@InjectAppConfig() private readonly config: AppConfig) {
    this.leader = config.database.type !== 'postgres';
  }

  get isLeader(): boolean {
    return this.leader;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.database.type !== 'postgres') return;
    await this.attempt();
    this.timer = setInterval(() => void this.attempt(), TRY_EVERY_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.leader = false;
    // Ending the session frees the lock at once for the other replicas.
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }

  private async attempt(): Promise<void> {
    if (this.stopped || this.leader || this.config.database.type !== 'postgres') return;
    try {
      if (!this.client) {
        const client = new Client({ connectionString: this.config.database.url, application_name: 'lockstep-leader' });
        client.on('error', (error) => this.lost(client, error));
        client.on('end', () => this.lost(client));
        await client.connect();
        this.client = client;
      }
      const rows = await this.client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [
        LEADER_LOCK_KEY,
      ]);
      if (rows.rows[0]?.locked) {
        this.leader = true;
        this.logger.log('this replica now runs the periodic jobs');
      }
    } catch (error) {
      if (this.client) this.lost(this.client, error as Error);
    }
  }

  private lost(client: Client, error?: Error): void {
    if (this.client !== client) return;
    this.client = null;
    client.removeAllListeners();
    client.on('error', () => undefined);
    client.end().catch(() => undefined);
    if (this.leader)
      this.logger.warn(`lost the leader connection${error ? `: ${error.message}` : ''}; another replica takes over`);
    this.leader = false;
  }
}
