import { systemOrigin } from '../audit/origin';
import { Injectable, Logger } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { Agent } from '../cluster/agent.entity';
import { behindOn } from '../cluster/agent-state';
import { AgentsService } from '../cluster/agents.service';
import { Cluster } from '../cluster/cluster.entity';
import { ClustersService } from '../cluster/clusters.service';
import { Clock } from '../common/clock';
import { DomainError } from '../common/errors';
import { Leadership } from '../database/leadership';
import { setBack } from './auto-upgrade-rules';
import { UpgradesService } from './upgrades.service';

const SWEEP_EVERY_MS = 5000;
/** How soon a serving pair member waiting for its peer is looked at again. */
const PAIR_RECHECK_MS = 60_000;

/**
 * Auto-upgrade (reference 002): an online, idle, remote-upgradable agent with auto-upgrade on that
 * is behind its cluster's core or web-apps target is brought up with the package that set it. This
 * is how an agent that was offline or busy during the cluster upgrade, or a new one, converges.
 *
 * It never creates an upgrade with nothing to do (upgrade-now refuses those), and it leaves alone:
 * an agent whose last upgrade failed (an operator retries, or upgrades it now); one left behind by
 * a cancel or the failure threshold (until someone acts); one whose attempt was refused or missed
 * (after a back-off that doubles up to an hour); and a serving pair member whose peer cannot take
 * over (offline, failed, opted out): stopping it would leave its pair with no member serving. A
 * standby member goes first; the serving one follows once its peer runs the target and can take
 * over. Every agent left alone carries the reason (`autoUpgradeBlocked`).
 */
@Injectable()
export class AutoUpgrader {
  private readonly logger = new Logger(AutoUpgrader.name);
  private running = false;

  constructor(
    private readonly clusters: ClustersService,
    private readonly agents: AgentsService,
    private readonly upgrades: UpgradesService,
    private readonly leadership: Leadership,
    private readonly clock: Clock,
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
        // One cluster's trouble does not stop auto-upgrade for the clusters after it.
        started += await this.sweepCluster(cluster).catch((error: Error) => {
          this.logger.error(`auto-upgrade sweep of cluster ${cluster.name} failed: ${error.message}`, error.stack);
          return 0;
        });
      }
    } catch (error) {
      this.logger.error(`auto-upgrade sweep failed: ${(error as Error).message}`, (error as Error).stack);
    } finally {
      this.running = false;
    }
    return started;
  }

  private async sweepCluster(cluster: Cluster): Promise<number> {
    let started = 0;
    const candidates = await this.agents.autoUpgradeCandidates(cluster.id);
    const candidateIds = new Set(candidates.map((a) => a.id));
    for (const agent of candidates) {
      // Outdated only against the highest version reported (no core target yet): nothing to bring it up with.
      if (!behindOn(agent, cluster.targetVersion, cluster.webappsTargetVersion)) continue;
      const wait = await this.pairWait(cluster, agent, candidateIds);
      if (wait === 'later') continue;
      if (wait) {
        await this.agents.holdAutoUpgrade(
          agent.id,
          wait.reason,
          new Date(this.clock.now().getTime() + PAIR_RECHECK_MS),
        );
        continue;
      }
      if (await this.start(cluster, agent)) started++;
    }
    return started;
  }

  private async start(cluster: Cluster, agent: Agent): Promise<boolean> {
    try {
      const upgrade = await this.upgrades.upgradeNow(agent.id, systemOrigin('auto-upgrade'), 'auto-upgrade');
      this.logger.log(`auto-upgrade of ${agent.name} (${agent.version}) to ${upgrade.packageVersion} started`);
      return true;
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      const held = setBack(agent, this.clock.now(), `auto-upgrade refused: ${error.message}`.slice(0, 500));
      await this.agents.holdAutoUpgrade(agent.id, held.autoUpgradeBlocked!, held.autoUpgradeRetryAt!, true);
      this.logger.warn(
        `auto-upgrade of ${agent.name} in ${cluster.name} refused (tries again at ${held.autoUpgradeRetryAt!.toISOString()}): ${error.message}`,
      );
      return false;
    }
  }

  /**
   * Null when the agent may go now; 'later' when its pair's standby goes first in this sweep; else
   * the reason it waits. Only a serving member waits: a standby upgrades while its peer serves.
   */
  private async pairWait(
    cluster: Cluster,
    agent: Agent,
    candidates: Set<string>,
  ): Promise<null | 'later' | { reason: string }> {
    if (!agent.failoverGroup || !agent.active) return null;
    const peer = (await this.agents.pairOf(agent)).find((m) => m.id !== agent.id);
    if (!peer) return null;
    const component = behindOn(agent, cluster.targetVersion, cluster.webappsTargetVersion);
    const peerBehind = behindOn(peer, cluster.targetVersion, cluster.webappsTargetVersion) === component;
    if (peerBehind && candidates.has(peer.id)) return 'later';
    const problem = !peer.online
      ? 'is offline'
      : peer.lastUpgradeFailed
        ? 'failed its last upgrade'
        : peer.upgradeId
          ? `is in upgrade ${peer.upgradeId}`
          : peerBehind
            ? `is not on the target yet (${!peer.remoteUpgrade ? 'a legacy agent' : !peer.autoUpgrade ? 'auto-upgrade is off for it' : (peer.autoUpgradeBlocked ?? `it is ${peer.state}`)})`
            : null;
    if (!problem) return null;
    return {
      reason: `serves failover group ${agent.failoverGroup} and its peer ${peer.name} ${problem}: it is upgraded once ${peer.name} runs the target and can take over`,
    };
  }
}
