import { Injectable, Logger } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { AgentsService } from '../cluster/agents.service';
import { ClustersService } from '../cluster/clusters.service';
import { DomainError } from '../common/errors';
import { Leadership } from '../database/leadership';
import { UpgradesService } from './upgrades.service';

const SWEEP_EVERY_MS = 5000;

/**
 * Auto-upgrade (reference 002): an online, idle, remote-upgradable agent with auto-upgrade on whose
 * version is below its cluster's target is brought to the target with the package that set it.
 * This is how an agent that was offline or busy during the cluster upgrade, or a new one, converges.
 * An agent whose last upgrade failed is left to an operator (retry, or upgrade now), so a broken
 * agent is not upgraded over and over.
 */
@Injectable()
export class AutoUpgrader {
  private readonly logger = new Logger(AutoUpgrader.name);
  /** Refusals already logged, so a refused agent is not logged every sweep. */
  private readonly reported = new Set<string>();
  private running = false;

  constructor(
    private readonly clusters: ClustersService,
    private readonly agents: AgentsService,
    private readonly upgrades: UpgradesService,
    private readonly leadership: Leadership,
  ) {}

  @Interval(SWEEP_EVERY_MS)
  async periodic(): Promise<void> {
    if (this.leadership.isLeader) await this.sweep();
  }

  async sweep(): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    let started = 0;
    try {
      for (const cluster of await this.clusters.withTarget()) {
        for (const agent of await this.agents.autoUpgradeCandidates(cluster.id)) {
          try {
            await this.upgrades.upgradeNow(agent.id, null, 'auto-upgrade');
            started++;
            this.logger.log(`auto-upgrade of ${agent.name} (${agent.version}) to ${cluster.targetVersion} started`);
          } catch (error) {
            if (!(error instanceof DomainError)) throw error;
            const key = `${agent.id}:${cluster.targetVersion}:${error.code}`;
            if (!this.reported.has(key)) this.logger.warn(`auto-upgrade of ${agent.name} to ${cluster.targetVersion} refused: ${error.message}`);
            this.reported.add(key);
          }
        }
      }
    } catch (error) {
      this.logger.error(`auto-upgrade sweep failed: ${(error as Error).message}`, (error as Error).stack);
    } finally {
      this.running = false;
    }
    return started;
  }
}
