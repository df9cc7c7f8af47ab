import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { AgentProtocolService } from '../cluster/agent-protocol.service';
import { ClustersService } from '../cluster/clusters.service';
import { Database } from '../database/database';
import { Leadership } from '../database/leadership';
import { EventFeed } from '../progress/event-feed';

/** A grouped count as both databases answer it (PostgreSQL's COUNT is a string). */
type Row = Record<string, string | number | null>;

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
 * Lockstep's Prometheus metrics (docs/operations.md, "Metrics"). Counts that are facts of the
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
    private readonly db: Database,
    private readonly leadership: Leadership,
    private readonly feed: EventFeed,
    private readonly clusters: ClustersService,
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
    const query = (sql: string) => this.db.reader.query<Row[]>(sql);
    this.gauge(
      'lockstep_agents',
      'Agents by cluster, state and version status.',
      ['cluster', 'state', 'version_status'],
      async (set) => {
        const rows = await query(
          `SELECT c."name" AS cluster, a."state" AS state, a."versionStatus" AS status, COUNT(*) AS n
             FROM agents a JOIN clusters c ON c."id" = a."clusterId"
            GROUP BY c."name", a."state", a."versionStatus"`,
        );
        for (const r of rows)
          set({ cluster: text(r.cluster), state: text(r.state), version_status: text(r.status) }, r.n);
      },
    );
    this.gauge(
      'lockstep_cluster_consistent',
      '1 when every agent of the cluster reports the same version and web apps (as GET /api/v1/clusters/{id} says), else 0.',
      ['cluster'],
      async (set) => {
        for (const c of await this.clusters.list()) set({ cluster: c.name }, c.consistent ? 1 : 0);
      },
    );
    this.gauge('lockstep_upgrades', 'Upgrades by status.', ['status'], async (set) => {
      for (const r of await query(`SELECT "status" AS status, COUNT(*) AS n FROM upgrades GROUP BY "status"`))
        set({ status: text(r.status) }, r.n);
    });
    this.gauge(
      'lockstep_commands',
      'Commands not ended yet: pending (not fetched) and running.',
      ['status'],
      async (set) => {
        set({ status: 'pending' }, 0);
        set({ status: 'running' }, 0);
        const rows = await query(
          `SELECT "status" AS status, COUNT(*) AS n FROM agent_commands WHERE "status" IN ('pending', 'running') GROUP BY "status"`,
        );
        for (const r of rows) set({ status: text(r.status) }, r.n);
      },
    );
    this.gauge('lockstep_package_bytes', 'Bytes of package archives stored (each archive once).', [], async (set) => {
      const [r] = await query(
        `SELECT COALESCE(SUM(size), 0) AS n FROM (SELECT DISTINCT "sha256", "size" FROM packages) s`,
      );
      set({}, r?.n ?? 0);
    });
    this.gauge('lockstep_event_log_newest_id', 'The newest event id written to the log.', [], async (set) => {
      const [r] = await query(`SELECT COALESCE(MAX("id"), 0) AS n FROM events`);
      set({}, r?.n ?? 0);
    });
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

const text = (value: string | number | null) => (value === null ? 'none' : String(value));
