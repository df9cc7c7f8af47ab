import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { AgentProtocolService } from '../cluster/agent-protocol.service';
import { Database } from '../database/database';
import { Leadership } from '../database/leadership';
import { EventFeed } from '../progress/event-feed';
// The one list metrics takes from above (docs/ARCHITECTURE.md, "Who imports whom"): a constant.
import { UPGRADE_STATUSES } from '../upgrades/upgrade.entity';
import { FleetFactsReader } from './fleet-facts';

/** What a step duration needs of an upgrade step. */
export interface EndedStep {
  id: string;
  kind: string;
  status: string;
  startedAt: Date | null;
  endedAt: Date | null;
}

/** Far more than the steps that end between two saves of one: enough to never count one twice. */
const OBSERVED_STEPS_KEPT = 100_000;

/**
 * Lockstep's Prometheus metrics (docs/metrics.md). Counts that are facts of the
 * fleet (agents, upgrades, commands, stored bytes) are read from the database at scrape time, so
 * every replica reports the same and a restart loses nothing; what belongs to this process
 * (heartbeats it served, step durations it saw end, SSE viewers, whether it leads) is its own.
 * Its own registry, not prom-client's global one: two apps in one process (tests) stay apart.
 */
@Injectable()
export class Metrics {
  readonly registry = new Registry();

  /** How long steps took from start to end, by kind and how they ended. */
  readonly stepDuration = new Histogram({
    name: 'lockstep_step_duration_seconds',
    help: 'Upgrade steps from start to end, by kind and outcome (observed by the replica that recorded the end).',
    labelNames: ['kind', 'outcome'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600],
    registers: [this.registry],
  });

  constructor(
    private readonly leadership: Leadership,
    private readonly feed: EventFeed,
    private readonly fleet: FleetFactsReader,
    private readonly db: Database,
    private readonly protocol: AgentProtocolService,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'lockstep_process_' });
    this.fleetGauges();
    this.processGauges();
  }

  /** Step ids already observed, oldest first: a step saved again after its end counts once. */
  private readonly observedSteps = new Set<string>();

  /**
   * Observes the duration of each step that has ended (call it after the commit that ended them).
   * Structural, so this module needs nothing from the upgrades module that calls it.
   */
  stepsEnded(steps: Iterable<EndedStep>): void {
    for (const step of steps) {
      if (!step.startedAt || !step.endedAt || this.observedSteps.has(step.id)) continue;
      this.observedSteps.add(step.id);
      if (this.observedSteps.size > OBSERVED_STEPS_KEPT) {
        this.observedSteps.delete(this.observedSteps.values().next().value as string);
      }
      const seconds = Math.max(0, (step.endedAt.getTime() - step.startedAt.getTime()) / 1000);
      this.stepDuration.observe({ kind: step.kind, outcome: step.status }, seconds);
    }
  }

  /** The exposition text, in Prometheus' format. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private fleetGauges(): void {
    const facts = () => this.fleet.read();
    this.gauge(
      'lockstep_agents',
      'Agents by cluster, state and version status.',
      ['cluster', 'state', 'version_status'],
      async (set) => {
        for (const a of (await facts()).agents)
          set({ cluster: a.cluster, state: a.state, version_status: a.versionStatus }, a.count);
      },
    );
    this.gauge(
      'lockstep_cluster_consistent',
      '1 when every agent of the cluster reports the same version and web apps (as GET /api/v1/clusters/{id} says), else 0.',
      ['cluster'],
      async (set) => {
        for (const c of (await facts()).consistent) set({ cluster: c.cluster }, c.consistent ? 1 : 0);
      },
    );
    // Every status has a series from the start, at 0: an alert on a change sees the first one.
    this.gauge('lockstep_upgrades', 'Upgrades by status.', ['status'], async (set) => {
      const counts = (await facts()).upgrades;
      for (const status of UPGRADE_STATUSES) set({ status }, counts.get(status) ?? 0);
    });
    this.gauge(
      'lockstep_commands',
      'Commands not ended yet: pending (not fetched) and running.',
      ['status'],
      async (set) => {
        const counts = (await facts()).commands;
        for (const status of ['pending', 'running']) set({ status }, counts.get(status) ?? 0);
      },
    );
    this.gauge('lockstep_package_bytes', 'Bytes of package archives stored (each archive once).', [], async (set) =>
      set({}, (await facts()).packageBytes),
    );
    this.gauge('lockstep_event_log_newest_id', 'The newest event id written to the log.', [], async (set) =>
      set({}, (await facts()).newestEventId),
    );
    this.gauge(
      'lockstep_event_log_lag',
      'Events written that this replica has not yet streamed to its viewers; 0 when none watches.',
      [],
      async (set) => {
        const newest = (await facts()).newestEventId;
        set({}, this.feed.subscriberCount > 0 ? Math.max(0, newest - this.feed.highWaterMark) : 0);
      },
    );
  }

  private processGauges(): void {
    // The count lives where heartbeats are answered; the counter shows it at each scrape.
    const served = () => this.protocol.heartbeatsServed;
    new Counter({
      name: 'lockstep_heartbeats_total',
      help: 'Agent heartbeats served by this replica; rate() of it is heartbeats per second.',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(served());
      },
    });
    this.gauge(
      'lockstep_event_log_streamed_id',
      'The newest event id this replica has streamed to viewers.',
      [],
      (set) => set({}, this.feed.highWaterMark),
    );
    this.gauge('lockstep_sse_viewers', 'Event streams open on this replica.', [], (set) =>
      set({}, this.feed.subscriberCount),
    );
    this.gauge(
      'lockstep_db_connections',
      "This replica's database connections by use: PostgreSQL's pool, or SQLite's one writer.",
      ['state'],
      (set) => {
        const use = this.db.connectionUse();
        set({ state: 'busy' }, use.busy);
        set({ state: 'idle' }, use.idle);
      },
    );
    this.gauge(
      'lockstep_db_waiting',
      "Queries waiting for a pooled connection (PostgreSQL), or transactions waiting for SQLite's writer.",
      [],
      (set) => set({}, this.db.connectionUse().waiting),
    );
    this.gauge('lockstep_leader', '1 on the replica that runs the executor and the schedules, else 0.', [], (set) =>
      set({}, this.leadership.isLeader ? 1 : 0),
    );
  }

  /** A gauge whose values are set afresh at each scrape (labels gone since are dropped). */
  private gauge<L extends string>(
    name: string,
    help: string,
    labelNames: L[],
    fill: (set: (labels: Partial<Record<L, string>>, value: string | number | null) => void) => Promise<void> | void,
  ): void {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        this.reset();
        await fill((labels, value) => this.set(labels, Number(value ?? 0)));
      },
    });
  }
}
