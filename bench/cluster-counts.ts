/**
 * bench/cluster-counts: time to count a cluster's agents by version, web-apps version, state and
 * version status (ClusterRepository.countsFor: what GET /api/v1/clusters and every cluster's page
 * ask, four GROUP BYs), for one cluster of 100,000 agents on SQLite; beside it, in the same run,
 * the same counts once the two indexes of migration ClusterCountIndexes are dropped again (the
 * baseline: what it cost before them).
 *
 *   npm run bench:cluster-counts -- [--agents 100000] [--runs 5]
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ClusterRepository } from '../src/cluster/cluster.repository';
import { loadConfig } from '../src/config/app-config';
import { Database } from '../src/database/database';

const { values } = parseArgs({
  options: { agents: { type: 'string', default: '100000' }, runs: { type: 'string', default: '5' } },
});
const AGENTS = Number(values.agents);
const RUNS = Number(values.runs);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One cluster of `AGENTS` agents: a tenth outdated, a third on a separate web-apps version. */
async function fill(db: Database): Promise<string> {
  const clusterId = randomUUID();
  const now = new Date().toISOString();
  await db.transaction(async (tx) => {
    await tx.em.query(
      `INSERT INTO clusters (id, name, product, defaultPolicy, defaultOptions, createdAt, updatedAt) VALUES (?, 'bench', 'acme-agent', 'default', '{}', ?, ?)`,
      [clusterId, now, now],
    );
    for (let i = 0; i < AGENTS; i++) {
      await tx.em.query(
        `INSERT INTO agents (id, clusterId, name, address, role, active, state, versionStatus, version, webappsVersion, createdAt, updatedAt)
         VALUES (?, ?, ?, ?, 'standalone', 1, ?, ?, ?, ?, ?, ?)`,
        [
          randomUUID(),
          clusterId,
          `agent-${i}`,
          `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`,
          i % 50 ? 'idle' : 'offline',
          i % 10 ? 'latest' : 'outdated',
          i % 10 ? '2.0.0' : '1.0.0',
          i % 3 ? null : '2.0.1',
          now,
          now,
        ],
      );
    }
  });
  return clusterId;
}

async function time(repository: ClusterRepository, clusterId: string): Promise<number> {
  await repository.countsFor([clusterId]); // warm
  const runs: number[] = [];
  for (let k = 0; k < RUNS; k++) {
    const start = process.hrtime.bigint();
    const counts = await repository.countsFor([clusterId]);
    runs.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (counts.get(clusterId)?.agentCount !== AGENTS) throw new Error('the counts are wrong');
  }
  return median(runs);
}

async function main(): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-counts-'));
  const db = await Database.open(loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'error' }));
  try {
    const clusterId = await fill(db);
    const repository = new ClusterRepository(db);
    const withIndexes = await time(repository, clusterId);
    await db.transaction(async (tx) => {
      await tx.em.query(`DROP INDEX "idx_agents_cluster_webapps"`);
      await tx.em.query(`DROP INDEX "idx_agents_cluster_version_status"`);
    });
    const without = await time(repository, clusterId);
    console.log(`a cluster of ${AGENTS} agents counted (4 GROUP BYs), median of ${RUNS} runs, SQLite`);
    console.log(`  with the indexes (figure)        ${withIndexes.toFixed(1)} ms`);
    console.log(
      `  without them (baseline)          ${without.toFixed(1)} ms   (${(without / withIndexes).toFixed(1)}x)`,
    );
  } finally {
    await db.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  console.error(error);
  process.exit(1);
});
