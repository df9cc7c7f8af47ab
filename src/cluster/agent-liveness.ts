import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { Clock } from '../common/clock';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { Database } from '../database/database';
import { Leadership } from '../database/leadership';
import { Agent } from './agent.entity';
import { AgentRepository } from './agent.repository';
import { AgentUpdater } from './agent-updater';

const FLUSH_EVERY_MS = 1000;
const SWEEP_EVERY_MS = 5000;
const SWEEP_BATCH = 1000;

/**
 * Liveness without a disk write per heartbeat. A heartbeat that changes nothing but "still here"
 * (and the latest facts) is buffered here and written once a second for all agents in one
 * transaction: each commit waits for a sync of the WAL (docs/durability.md, "Group commit") and
 * costs a few statements of its own, and heartbeats are the hottest path.
 * A crash loses at most a second of `lastSeenAt`, which the agent's next heartbeat restores.
 * Every change of state or version is not buffered: the heartbeat writes it at once.
 */
@Injectable()
export class AgentLiveness implements BeforeApplicationShutdown {
  private readonly logger = new Logger(AgentLiveness.name);
  private pending = new Map<string, { seenAt: Date; facts?: Agent['facts'] }>();
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Database,
    private readonly agents: AgentRepository,
    private readonly updater: AgentUpdater,
    private readonly clock: Clock,
    @InjectAppConfig() private readonly config: AppConfig,
    private readonly leadership: Leadership,
  ) {}

  /** Records a heartbeat that changed nothing but the time and the facts. */
  seen(agentId: string, seenAt: Date, facts?: Agent['facts']): void {
    const previous = this.pending.get(agentId);
    this.pending.set(agentId, { seenAt, facts: facts ?? previous?.facts });
  }

  /** Forgets an agent whose heartbeat was written directly (or which was removed). */
  forget(agentId: string): void {
    this.pending.delete(agentId);
  }

  @Interval(FLUSH_EVERY_MS)
  async flush(): Promise<void> {
    // One flush at a time; a caller waits for the one in progress and then writes what is left.
    this.flushing = this.flushing.then(() => this.writePending());
    await this.flushing;
  }

  /** On the leading replica only: every replica flushes its own heartbeats, one sweeps. */
  @Interval(SWEEP_EVERY_MS)
  async periodicSweep(): Promise<void> {
    if (this.leadership.isLeader) await this.sweep();
  }

  /**
   * Marks agents offline once HEARTBEAT_TIMEOUT_S passed without a heartbeat. Flushes first, so the
   * database holds every heartbeat this replica received.
   */
  async sweep(): Promise<number> {
    try {
      await this.flush();
      const cutoff = new Date(this.clock.now().getTime() - this.config.heartbeatTimeoutS * 1000);
      const silent = await this.agents.findSilentSince(cutoff, SWEEP_BATCH);
      if (silent.length === 0) return 0;
      const marked = await this.db.transaction(async (tx) => {
        let count = 0;
        for (const { id } of silent) {
          const agent = await this.agents.findForUpdate(tx, id);
          // Checked again under the lock: a heartbeat may have arrived since the query above.
          if (!agent || !agent.online || !agent.lastSeenAt || agent.lastSeenAt >= cutoff) continue;
          await this.updater.apply(tx, agent, { online: false });
          count++;
        }
        return count;
      });
      if (marked)
        this.logger.log(
          `marked ${marked} agent(s) offline after ${this.config.heartbeatTimeoutS}s without a heartbeat`,
        );
      return marked;
    } catch (error) {
      this.logger.error(`offline sweep failed: ${(error as Error).message}`, (error as Error).stack);
      return 0;
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.flush();
  }

  private async writePending(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.db.transaction((tx) =>
        this.agents.recordLiveness(
          tx.em,
          [...batch].map(([agentId, entry]) => ({ agentId, ...entry })),
        ),
      );
    } catch (error) {
      // Keep what was not written, unless a newer heartbeat replaced it meanwhile.
      for (const [id, entry] of batch) if (!this.pending.has(id)) this.pending.set(id, entry);
      this.logger.error(`could not record heartbeats: ${(error as Error).message}`);
    }
  }
}
