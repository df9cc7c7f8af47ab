import { TEST_ORIGIN } from '../../src/testing/fixtures';
import * as fc from 'fast-check';
import { In } from 'typeorm';
import { AgentCommandsService } from '../../src/cluster/agent-commands.service';
import { Agent } from '../../src/cluster/agent.entity';
import { AgentLiveness } from '../../src/cluster/agent-liveness';
import { AgentProtocolService } from '../../src/cluster/agent-protocol.service';
import { behindOn } from '../../src/cluster/agent-state';
import { AgentsService } from '../../src/cluster/agents.service';
import { Cluster } from '../../src/cluster/cluster.entity';
import { ManualClock } from '../../src/common/clock';
import { DomainError } from '../../src/common/errors';
import { POLICY_RULES } from '../../src/policies/planner';
import {
  CONCRETE_POLICIES,
  FAILOVER_POLICIES,
  type ConcretePolicy,
  type FailoverPolicy,
} from '../../src/policies/upgrade-options';
import { AutoUpgrader } from '../../src/upgrades/auto-upgrader';
import { UpgradeExecutor } from '../../src/upgrades/upgrade-executor';
import { Upgrade } from '../../src/upgrades/upgrade.entity';
import { UpgradeStep } from '../../src/upgrades/upgrade-step.entity';
import { UpgradesService } from '../../src/upgrades/upgrades.service';
import { givenCluster, givenPackage } from './builders';
import type { TestApp } from './test-app';

/**
 * A randomised world for the convergence property (docs/version-model.md): fleets of standalone
 * agents and pairs, some legacy, opted out, flapping, busy or failing, through random sequences of
 * full and web-apps packages, upgrades of all or some agents, pauses, cancels, retries and
 * "upgrade now", driven in rounds against the real services with the manual clock. Agents speak to
 * the services the HTTP routes call (heartbeat, progress, complete), so a round is cheap.
 */

export interface SimAgentSpec {
  legacy: boolean;
  autoUpgrade: boolean;
  /** How its upgrades end: always well, the first one rolled back, every one failed. */
  failure: 'never' | 'once' | 'always';
  /** Rounds of each operation during which it sends no heartbeat (offline), or null. */
  away: [number, number] | null;
  /** Rounds at the start of each operation during which it reports busy. */
  busyRounds: number;
  /** Refuses to take over (its switchovers fail): a pair that cannot hand over. */
  refusesTakeover: boolean;
}

export type SimUnit =
  { kind: 'standalone'; agent: SimAgentSpec } | { kind: 'pair'; main: SimAgentSpec; backup: SimAgentSpec };

export type SimOp =
  | {
      type: 'upgrade';
      kind: 'full' | 'webapps';
      /** null = all agents; else a bit mask over the fleet's agents. */
      subset: number | null;
      policy: FailoverPolicy;
      maxParallel: number;
      failureThreshold: number;
      pauseAt: number | null;
      cancelAt: number | null;
    }
  | { type: 'retry' }
  | { type: 'upgrade-now'; agent: number };

export interface SimCase {
  defaultPolicy: ConcretePolicy;
  units: SimUnit[];
  ops: SimOp[];
}

const agentSpec: fc.Arbitrary<SimAgentSpec> = fc.record({
  legacy: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  autoUpgrade: fc.integer({ min: 0, max: 7 }).map((n) => n !== 0),
  failure: fc.constantFrom('never', 'never', 'never', 'once', 'always'),
  away: fc.option(
    fc
      .tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 12 }))
      .map(([from, length]) => [from, from + length] as [number, number]),
    { freq: 2 },
  ),
  busyRounds: fc.constantFrom(0, 0, 0, 1, 3, 6),
  refusesTakeover: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
});

const unit: fc.Arbitrary<SimUnit> = fc.oneof(
  fc.record({ kind: fc.constant('standalone' as const), agent: agentSpec }),
  fc.record({ kind: fc.constant('pair' as const), main: agentSpec, backup: agentSpec }),
);

const upgradeOp: fc.Arbitrary<Extract<SimOp, { type: 'upgrade' }>> = fc.record({
  type: fc.constant('upgrade' as const),
  kind: fc.constantFrom('full' as const, 'full' as const, 'webapps' as const),
  subset: fc.option(fc.integer({ min: 1, max: 255 }), { freq: 2 }),
  policy: fc.constantFrom(...FAILOVER_POLICIES),
  maxParallel: fc.integer({ min: 0, max: 2 }),
  failureThreshold: fc.integer({ min: 0, max: 2 }),
  pauseAt: fc.option(fc.integer({ min: 0, max: 4 }), { freq: 4 }),
  cancelAt: fc.option(fc.integer({ min: 0, max: 4 }), { freq: 5 }),
});

const op: fc.Arbitrary<SimOp> = fc.oneof(
  { weight: 4, arbitrary: upgradeOp },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('retry' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({ type: fc.constant('upgrade-now' as const), agent: fc.integer({ min: 0, max: 7 }) }),
  },
);

export const simCase: fc.Arbitrary<SimCase> = fc.record({
  defaultPolicy: fc.constantFrom(...CONCRETE_POLICIES),
  units: fc.array(unit, { minLength: 1, maxLength: 4 }),
  // An upgrade first, so that retries and "upgrade now" that follow have something to act on.
  ops: fc.tuple(upgradeOp, fc.array(op, { maxLength: 3 })).map(([first, rest]) => [first, ...rest]),
});

interface SimAgent {
  spec: SimAgentSpec;
  id: string;
  name: string;
  version: string;
  webappsVersion: string | null;
  failures: number;
}

const ROUND_MS = 5_000;
const OP_ROUNDS = 8;
const SETTLE_ROUNDS = 60;
/** Long enough for every auto-upgrade back-off (at most an hour) to run out. */
const BACKOFF_JUMP_MS = 61 * 60_000;
const OPTIONS = { offlineTimeoutS: 20, idleTimeoutS: 20, phaseTimeoutS: 60 };

/** What the runs went through, printed after them, so a reader sees the property was not vacuous. */
export const SimStats = {
  agents: 0,
  onTargets: 0,
  heldBack: {} as Record<string, number>,
  upgrades: {} as Record<string, number>,
  missedSteps: 0,
  commands: 0,
  pairMemberUpgrades: 0,
  servingMemberUpgrades: 0,
};

/** What the world observed that breaks an invariant; empty when all held. */
export type Violations = string[];

export class Simulation {
  private readonly protocol: AgentProtocolService;
  private readonly commands: AgentCommandsService;
  private readonly upgrades: UpgradesService;
  private readonly agentsService: AgentsService;
  private readonly executor: UpgradeExecutor;
  private readonly autoUpgrader: AutoUpgrader;
  private readonly liveness: AgentLiveness;
  private readonly violations: string[] = [];
  private readonly commandsSeen = new Set<string>();
  private readonly stepsCarriedOut = new Set<string>();
  private agents: SimAgent[] = [];
  private clusterId = '';
  private lastUpgradeId: string | null = null;
  /** Retries that went through: someone acted on the agents of that upgrade then. */
  private readonly retries: Array<{ at: Date; upgradeId: string }> = [];
  private fullVersion = 0;
  private webappsVersion = 0;

  constructor(
    private readonly t: TestApp,
    private readonly clock: ManualClock,
  ) {
    this.protocol = t.app.get(AgentProtocolService);
    this.commands = t.app.get(AgentCommandsService);
    this.upgrades = t.app.get(UpgradesService);
    this.agentsService = t.app.get(AgentsService);
    this.executor = t.app.get(UpgradeExecutor);
    this.autoUpgrader = t.app.get(AutoUpgrader);
    this.liveness = t.app.get(AgentLiveness);
  }

  async run(c: SimCase): Promise<Violations> {
    await this.setUp(c);
    for (const operation of c.ops) await this.operate(operation);
    await this.settle();
    await this.check();
    await this.retire();
    return this.violations;
  }

  private async setUp(c: SimCase): Promise<void> {
    const cluster = await givenCluster(this.t, { defaultPolicy: c.defaultPolicy, defaultOptions: OPTIONS });
    this.clusterId = cluster.id;
    let n = 0;
    const add = async (spec: SimAgentSpec, role: 'standalone' | 'main' | 'backup', group?: string) => {
      const name = `${group ?? 'solo'}-${role}-${n++}`;
      const registered = await this.agentsService.register(
        cluster.id,
        {
          name,
          address: `${name}.sim`,
          role,
          ...(group ? { failoverGroup: group } : {}),
        },
        TEST_ORIGIN,
      );
      const paired = await this.protocol.pair({
        pairingKey: registered.pairingKey,
        version: '1.0.0',
        facts: { os: 'linux', freeDiskMb: 100_000 },
        capabilities: { remoteUpgrade: !spec.legacy },
      });
      if (!spec.autoUpgrade && !spec.legacy)
        await this.agentsService.setAutoUpgrade(paired.agentId, false, TEST_ORIGIN);
      this.agents.push({ spec, id: paired.agentId, name, version: '1.0.0', webappsVersion: null, failures: 0 });
    };
    for (const [i, u] of c.units.entries()) {
      if (u.kind === 'standalone') await add(u.agent, 'standalone');
      else {
        await add(u.main, 'main', `pair${i}`);
        await add(u.backup, 'backup', `pair${i}`);
      }
    }
  }

  private async operate(operation: SimOp): Promise<void> {
    let upgradeId: string | null = null;
    if (operation.type === 'upgrade') {
      const packageId = await this.upload(operation.kind);
      const chosen =
        operation.subset === null
          ? null
          : this.agents.filter((_, i) => operation.subset! & (1 << (i % 8))).map((a) => a.id);
      upgradeId = await this.attempt(() =>
        this.upgrades.create(
          this.clusterId,
          {
            packageId,
            target: chosen === null || chosen.length === 0 ? { all: true } : { agentIds: chosen },
            policy: operation.policy,
            options: {
              maxParallel: operation.maxParallel,
              failureThreshold: operation.failureThreshold,
              allowLegacyPolicyOnMajor: true,
            },
          },
          TEST_ORIGIN,
        ),
      );
    } else if (operation.type === 'retry' && this.lastUpgradeId) {
      const id = this.lastUpgradeId;
      upgradeId = await this.attempt(() => this.upgrades.retry(id, TEST_ORIGIN));
      if (upgradeId) this.retries.push({ at: this.clock.now(), upgradeId });
    } else if (operation.type === 'upgrade-now') {
      const agent = this.agents[operation.agent % this.agents.length];
      upgradeId = await this.attempt(() => this.upgrades.upgradeNow(agent.id, TEST_ORIGIN));
    }
    if (upgradeId) this.lastUpgradeId = upgradeId;
    for (let round = 0; round < OP_ROUNDS; round++) {
      if (operation.type === 'upgrade' && upgradeId) {
        const id = upgradeId;
        if (operation.pauseAt === round) await this.attempt(() => this.upgrades.pause(id, TEST_ORIGIN));
        if (operation.pauseAt !== null && operation.pauseAt + 2 === round)
          await this.attempt(() => this.upgrades.resume(id, TEST_ORIGIN));
        if (operation.cancelAt === round) await this.attempt(() => this.upgrades.cancel(id, TEST_ORIGIN));
      }
      await this.round(
        (agent) => !(agent.spec.away && round >= agent.spec.away[0] && round < agent.spec.away[1]),
        (agent) => round < agent.spec.busyRounds,
      );
    }
  }

  /**
   * Every agent back and idle; rounds until nothing moves. Whenever nothing is under way, time
   * jumps past every auto-upgrade back-off (three times), so what auto-upgrade would do later it
   * does now; the world has settled at the next round with nothing under way. (A pair that can
   * never hand over is retried hourly for ever: it is judged as it stands then.)
   */
  private async settle(): Promise<void> {
    let jumps = 0;
    for (let round = 0; round < SETTLE_ROUNDS; round++) {
      const moved = await this.round(
        () => true,
        () => false,
      );
      if (moved) continue;
      if (jumps === 3) return;
      this.clock.advance(BACKOFF_JUMP_MS);
      jumps++;
    }
  }

  /**
   * One round: time passes; every agent that is up heartbeats and answers what it received at
   * once; silent agents are marked offline; the executor and auto-upgrade run. Returns whether
   * anything is still under way.
   */
  private async round(up: (a: SimAgent) => boolean, busy: (a: SimAgent) => boolean): Promise<boolean> {
    this.clock.advance(ROUND_MS);
    for (const agent of this.agents) {
      if (!up(agent)) continue;
      const answer = await this.protocol.heartbeat(agent.id, {
        version: agent.version,
        webappsVersion: agent.webappsVersion,
        busy: busy(agent),
      });
      for (const command of answer.commands)
        await this.carryOut(agent, command as Record<string, unknown> & { id: string; type: string });
    }
    await this.liveness.sweep();
    await this.executor.tick();
    await this.autoUpgrader.sweep();
    await this.executor.tick();
    const live = await this.t.db.reader.count(Upgrade, {
      where: [
        { clusterId: this.clusterId, status: 'running' },
        { clusterId: this.clusterId, status: 'paused' },
        { clusterId: this.clusterId, status: 'scheduled' },
      ],
    });
    return live > 0;
  }

  private async carryOut(
    agent: SimAgent,
    command: Record<string, unknown> & { id: string; type: string },
  ): Promise<void> {
    if (this.commandsSeen.has(command.id)) return; // a command comes with every heartbeat until reported on
    this.commandsSeen.add(command.id);
    SimStats.commands++;
    if (command.type === 'upgrade') {
      const stepId = String(command.stepId);
      if (this.stepsCarriedOut.has(stepId))
        this.violations.push(`step ${stepId} reached ${agent.name} twice (command ${command.id})`);
      this.stepsCarriedOut.add(stepId);
      await this.checkPairSafety(agent, String(command.upgradeId));
      await this.commands.reportProgress(agent.id, command.id, {
        phase: 'install',
        percent: 50,
        message: 'installing',
      });
      const fails = agent.spec.failure === 'always' || (agent.spec.failure === 'once' && agent.failures === 0);
      const webapps = command.kind === 'webapps';
      if (fails) {
        agent.failures++;
        await this.commands.reportComplete(agent.id, command.id, {
          status: 'rolled-back',
          error: 'simulated failure',
          ...(webapps ? (agent.webappsVersion ? { version: agent.webappsVersion } : {}) : { version: agent.version }),
        });
        return;
      }
      if (webapps) agent.webappsVersion = String(command.toVersion);
      else {
        agent.version = String(command.toVersion);
        agent.webappsVersion = null; // a full package replaces the web apps
      }
      await this.commands.reportComplete(agent.id, command.id, {
        status: 'succeeded',
        version: String(command.toVersion),
      });
    } else if (command.type === 'switchover' && command.activate === true && agent.spec.refusesTakeover) {
      await this.commands.reportComplete(agent.id, command.id, {
        status: 'failed',
        error: 'simulated: cannot take over',
      });
    } else {
      await this.commands.reportComplete(agent.id, command.id, { status: 'succeeded' });
    }
  }

  /**
   * Pair safety, observed when an agent is about to stop for an upgrade: if it serves its pair,
   * its peer is online, healthy and upgraded with it in the same upgrade (simultaneous), or the
   * member would leave its pair with nothing serving.
   */
  private async checkPairSafety(agent: SimAgent, upgradeId: string): Promise<void> {
    const me = await this.t.db.reader.findOneBy(Agent, { id: agent.id });
    if (!me?.failoverGroup) return;
    SimStats.pairMemberUpgrades++;
    if (!me.active) return;
    SimStats.servingMemberUpgrades++;
    const peer = (
      await this.t.db.reader.findBy(Agent, { clusterId: me.clusterId, failoverGroup: me.failoverGroup })
    ).find((a) => a.id !== me.id);
    if (!peer) return;
    const upgrade = await this.t.db.reader.findOneBy(Upgrade, { id: upgradeId });
    const peerSteps = await this.t.db.reader.findBy(UpgradeStep, { upgradeId, agentId: peer.id, kind: 'upgrade' });
    // Upgraded with it: under a policy that upgrades both members together, the peer's step runs,
    // ran, or may start now (nothing planned before it).
    const withIt =
      !!upgrade &&
      POLICY_RULES[upgrade.resolvedPolicy].order === 'together' &&
      peerSteps.some(
        (s) =>
          ['running', 'succeeded'].includes(s.status) ||
          (['pending', 'waiting'].includes(s.status) && s.dependsOn.length === 0),
      );
    if (!peer.online || peer.lastUpgradeFailed || !withIt) {
      this.violations.push(
        `serving member ${me.name} stopped for upgrade ${upgradeId} (${upgrade?.resolvedPolicy}, ${upgrade?.origin}) while its peer ${peer.name} was ${peer.online ? 'online' : 'offline'}, ${peer.lastUpgradeFailed ? 'failed' : 'healthy'}, ${withIt ? 'upgrading with it' : 'not upgrading with it'}`,
      );
    }
  }

  /** The invariants over the end state (pair safety is checked as it happens). */
  private async check(): Promise<void> {
    const cluster = (await this.t.db.reader.findOneBy(Cluster, { id: this.clusterId }))!;
    const rows = await this.t.db.reader.findBy(Agent, { clusterId: this.clusterId });
    const upgrades = await this.t.db.reader.findBy(Upgrade, { clusterId: this.clusterId });
    for (const upgrade of upgrades) await this.checkUpgradeEnded(upgrade);
    await this.checkAutoUpgradeBackOff(upgrades);
    for (const sim of this.agents) {
      const row = rows.find((a) => a.id === sim.id);
      if (row?.lastUpgradeFailed && sim.spec.failure === 'never')
        this.violations.push(`${sim.name} never fails an upgrade, yet ends failed`);
    }
    for (const upgrade of upgrades) SimStats.upgrades[upgrade.origin] = (SimStats.upgrades[upgrade.origin] ?? 0) + 1;
    SimStats.missedSteps += await this.t.db.reader.count(UpgradeStep, {
      where: { upgradeId: In(upgrades.map((u) => u.id)), status: 'missed' },
    });
    for (const a of rows) await this.checkConverged(a, rows, cluster);
  }

  /** No upgrade is left running once the world settled, and an automatic one had something to do. */
  private async checkUpgradeEnded(upgrade: Upgrade): Promise<void> {
    if (['running', 'paused', 'scheduled'].includes(upgrade.status)) {
      const steps = await this.t.db.reader.find(UpgradeStep, {
        where: { upgradeId: upgrade.id },
        order: { ordinal: 'ASC' },
      });
      const name = (id: string) => this.agents.find((a) => a.id === id)?.name ?? id;
      const shown = steps
        .map((s) => `${s.kind} ${name(s.agentId)} ${s.status}${s.waitingFor ? `/${s.waitingFor}` : ''}`)
        .join(', ');
      this.violations.push(
        `${upgrade.origin} upgrade ${upgrade.id} (${upgrade.resolvedPolicy}) still ${upgrade.status} after the world settled: ${shown}`,
      );
    }
    if (upgrade.origin === 'request' || upgrade.origin === 'install') return;
    const steps = await this.t.db.reader.findBy(UpgradeStep, { upgradeId: upgrade.id });
    if (!steps.some((s) => s.kind === 'upgrade' && s.status !== 'skipped'))
      this.violations.push(`${upgrade.origin} upgrade ${upgrade.id} had nothing to do`);
  }

  /** An agent off the cluster's targets says why, and one shown failed has a step that records the error. */
  private async checkConverged(a: Agent, rows: Agent[], cluster: Cluster): Promise<void> {
    SimStats.agents++;
    if (behindOn(a, cluster.targetVersion, cluster.webappsTargetVersion) === null) {
      SimStats.onTargets++;
      return;
    }
    const reason = heldBackBy(a) ?? (a.autoUpgradeBlocked ? 'blocked' : null);
    SimStats.heldBack[reason ?? 'none'] = (SimStats.heldBack[reason ?? 'none'] ?? 0) + 1;
    if (!reason) {
      this.violations.push(
        `${a.name} is not on the targets (${a.version}/${a.webappsVersion} vs ${cluster.targetVersion}/${cluster.webappsTargetVersion}) and shows no reason (state ${a.state}, ${a.versionStatus})`,
      );
      return;
    }
    if (reason === 'blocked' && !this.mayStayBlocked(a, rows)) {
      this.violations.push(
        `${a.name} did not converge: still held back after every back-off ran out (${a.autoUpgradeBlocked})`,
      );
    }
    const failedStep = a.lastUpgradeFailed
      ? await this.t.db.reader.findOne(UpgradeStep, {
          where: { agentId: a.id, status: In(['failed', 'rolled-back']) },
        })
      : true;
    if (!failedStep || (failedStep !== true && !failedStep.error))
      this.violations.push(`${a.name} shows failed but no step of it records an error`);
  }

  /**
   * Only a pair member whose peer cannot take over, or a serving member waiting for a peer that is
   * itself stuck, may stay blocked after every back-off ran out.
   */
  private mayStayBlocked(a: Agent, rows: Agent[]): boolean {
    const peer = a.failoverGroup ? rows.find((m) => m.failoverGroup === a.failoverGroup && m.id !== a.id) : undefined;
    if (!peer) return false;
    if (this.agents.find((s) => s.id === peer.id)?.spec.refusesTakeover) return true;
    const peerStuck = heldBackBy(peer) !== null || peer.autoUpgradeBlocked !== null;
    return a.autoUpgradeBlocked!.startsWith('serves failover group') && peerStuck;
  }

  /**
   * Auto-upgrade does not loop: after its attempt at an agent ended without upgrading it, the next
   * attempt at that agent waits at least the shortest back-off (a minute), unless someone acted on
   * the agent in between (an operator's upgrade of it frees it).
   */
  private async checkAutoUpgradeBackOff(upgrades: Upgrade[]): Promise<void> {
    // Upgrades as they were created, and retries as they were made: in the order they happened.
    const happened = [
      ...upgrades.map((u) => ({ at: u.createdAt, upgrade: u, retry: false })),
      ...this.retries.map((r) => ({ at: r.at, upgrade: upgrades.find((u) => u.id === r.upgradeId)!, retry: true })),
    ];
    const ordered = happened.sort(
      (a, b) => a.at.getTime() - b.at.getTime() || (a.upgrade.origin === 'auto-upgrade' && !a.retry ? 1 : -1),
    );
    const steps = upgrades.length
      ? await this.t.db.reader.findBy(UpgradeStep, { upgradeId: In(upgrades.map((u) => u.id)), kind: 'upgrade' })
      : [];
    const lastFailure = new Map<string, Date>();
    for (const { upgrade, retry } of ordered) {
      const own = steps.filter((s) => s.upgradeId === upgrade.id);
      if (upgrade.origin !== 'auto-upgrade' || retry) {
        for (const step of own) if (step.status !== 'skipped') lastFailure.delete(step.agentId);
        continue;
      }
      for (const step of own) {
        const previous = lastFailure.get(step.agentId);
        if (previous && upgrade.createdAt.getTime() - previous.getTime() < 60_000) {
          this.violations.push(
            `auto-upgrade took ${step.agentId} again ${(upgrade.createdAt.getTime() - previous.getTime()) / 1000}s after its last attempt did not bring it up (upgrade ${upgrade.id})`,
          );
        }
        if (step.status !== 'succeeded' && step.status !== 'skipped' && upgrade.finishedAt)
          lastFailure.set(step.agentId, upgrade.finishedAt);
        else lastFailure.delete(step.agentId);
      }
    }
  }

  /** Takes the cluster out of auto-upgrade's and the executor's view, so later cases do not pay for it. */
  private async retire(): Promise<void> {
    await this.t.db.transaction((tx) =>
      tx.em.update(Cluster, { id: this.clusterId }, { targetPackageId: null, webappsTargetPackageId: null }),
    );
  }

  private async upload(kind: 'full' | 'webapps'): Promise<string> {
    const version = kind === 'full' ? `1.${++this.fullVersion}.0` : `5.0.${++this.webappsVersion}`;
    return givenPackage(this.t, this.clusterId, { version, kind, prerequisites: {} });
  }

  /** An operator's call: a refusal (4xx in words) is an answer, anything else is a bug. */
  private async attempt(call: () => Promise<{ id: string }>): Promise<string | null> {
    try {
      return (await call()).id;
    } catch (error) {
      if (error instanceof DomainError) return null;
      throw error;
    }
  }
}

/** Held back for a reason only a person can lift (or that lasts): never expected to converge by itself. */
function heldBackBy(a: Agent): string | null {
  if (!a.remoteUpgrade) return 'legacy';
  if (!a.autoUpgrade) return 'auto-upgrade off';
  if (a.lastUpgradeFailed) return 'failed';
  if (a.autoUpgradeBlocked && a.autoUpgradeRetryAt === null) return 'left behind';
  if (!a.online) return 'offline';
  return null;
}
