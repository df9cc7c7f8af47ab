import { Injectable } from '@nestjs/common';
import { isConsistent } from '../cluster/dto/cluster.dto';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { Database } from '../database/database';

/** A row as both databases answer it (PostgreSQL's COUNT and SUM are strings). */
type Row = Record<string, string | number | null>;

export interface FleetFacts {
  agents: Array<{ cluster: string; state: string; versionStatus: string; count: number }>;
  consistent: Array<{ cluster: string; consistent: boolean }>;
  upgrades: Map<string, number>;
  commands: Map<string, number>;
  packageBytes: number;
  newestEventId: number;
}

/**
 * The fleet's facts for the metrics, read in one go from the database and kept METRICS_CACHE_S
 * (10 s): every Prometheus server scrapes every replica, and the agent counts read every agent row
 * (two passes over the table; some tens of ms at 100,000 agents on SQLite, on the event loop), so a
 * burst of scrapes reads once, and one read is in flight at a time.
 */
@Injectable()
export class FleetFactsReader {
  private cached?: { at: number; facts: Promise<FleetFacts>; settled: boolean };

  constructor(
    private readonly db: Database,
    @InjectAppConfig() private readonly config: AppConfig,
  ) {}

  /** The facts of a read in flight, or of one younger than METRICS_CACHE_S, else a new read. */
  read(): Promise<FleetFacts> {
    const now = Date.now();
    const cached = this.cached;
    if (cached && (!cached.settled || now - cached.at < this.config.metricsCacheS * 1000)) return cached.facts;
    const entry = { at: now, facts: this.readNow(), settled: false };
    this.cached = entry;
    entry.facts.then(
      () => (entry.settled = true),
      // A failed read is not kept: the next scrape tries again.
      () => {
        if (this.cached === entry) this.cached = undefined;
      },
    );
    return entry.facts;
  }

  private async readNow(): Promise<FleetFacts> {
    const query = (sql: string) => this.db.reader.query<Row[]>(sql);
    // One after another: a scrape holds at most one pooled connection.
    const agents = await query(
      `SELECT c."name" AS cluster, a."state" AS state, a."versionStatus" AS status, COUNT(*) AS n
           FROM agents a JOIN clusters c ON c."id" = a."clusterId"
          GROUP BY c."name", a."state", a."versionStatus"`,
    );
    const clusters = await query(
      `SELECT c."name" AS cluster,
                COUNT(DISTINCT a."version") AS versions,
                COALESCE(SUM(CASE WHEN a."versionStatus" = 'unknown' THEN 1 ELSE 0 END), 0) AS unknown,
                COUNT(DISTINCT a."webappsVersion") AS webapps,
                COALESCE(SUM(CASE WHEN a."id" IS NOT NULL AND a."webappsVersion" IS NULL THEN 1 ELSE 0 END), 0) AS without
           FROM clusters c LEFT JOIN agents a ON a."clusterId" = c."id"
          GROUP BY c."id", c."name"`,
    );
    const upgrades = await query(`SELECT "status" AS status, COUNT(*) AS n FROM upgrades GROUP BY "status"`);
    const commands = await query(
      `SELECT "status" AS status, COUNT(*) AS n FROM agent_commands WHERE "status" IN ('pending', 'running') GROUP BY "status"`,
    );
    const [bytes] = await query(
      `SELECT COALESCE(SUM("size"), 0) AS n FROM (SELECT DISTINCT "sha256", "size" FROM packages) s`,
    );
    const [newest] = await query(`SELECT COALESCE(MAX("id"), 0) AS n FROM events`);
    return {
      agents: agents.map((r) => ({
        cluster: String(r.cluster),
        state: String(r.state),
        versionStatus: String(r.status),
        count: Number(r.n),
      })),
      consistent: clusters.map((r) => ({
        cluster: String(r.cluster),
        consistent: isConsistent({
          versions: Number(r.versions),
          unknown: Number(r.unknown),
          webappsVersions: Number(r.webapps),
          withoutWebapps: Number(r.without),
        }),
      })),
      upgrades: new Map(upgrades.map((r) => [String(r.status), Number(r.n)])),
      commands: new Map(commands.map((r) => [String(r.status), Number(r.n)])),
      packageBytes: Number(bytes?.n ?? 0),
      newestEventId: Number(newest?.n ?? 0),
    };
  }
}
