/**
 * bench/plan: time to plan 1,000, 10,000 and 100,000 agents (half of them in failover pairs, under
 * backup-first), beside the time to load the same agent rows from SQLite and sort them, measured
 * in the same run. Target: 10,000 agents under 100 ms, growth close to linear.
 *
 *   npm run bench:plan -- [--sizes 1000,10000,100000] [--runs 5]
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Agent } from '../src/cluster/agent.entity';
import { loadConfig } from '../src/config/app-config';
import { Database } from '../src/database/database';
import { plan } from '../src/policies/planner';
import { DEFAULT_UPGRADE_OPTIONS } from '../src/policies/upgrade-options';
import { toPlanAgent } from '../src/upgrades/upgrades.service';

const { values } = parseArgs({
  options: { sizes: { type: 'string', default: '1000,10000,100000' }, runs: { type: 'string', default: '5' } },
});
const sizes = values.sizes.split(',').map(Number);
const runs = Number(values.runs);

function agentRow(clusterId: string, i: number, now: Date): Agent {
  const paired = i % 2 === 0; // every other agent is in a pair: 0/1 -> pair 0, ...
  const inPair = i < 0 ? false : i % 4 < 2;
  const group = inPair ? `pair-${Math.floor(i / 2)}` : null;
  return Object.assign(new Agent(), {
    id: randomUUID(),
    clusterId,
    name: `agent-${String(i).padStart(6, '0')}`,
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    role: inPair ? (paired ? 'main' : 'backup') : 'standalone',
    failoverGroup: group,
    active: !inPair || paired,
    version: i % 50 === 0 ? '1.1.0' : '1.0.0',
    webappsVersion: null,
    busy: i % 97 === 0,
    facts: { os: 'linux', arch: 'x64', freeDiskMb: 5000, memoryMb: 4096 },
    remoteUpgrade: i % 211 !== 0,
    autoUpgrade: true,
    pairingKeyHash: null,
    pairingKeyExpiresAt: null,
    pairingKeyUsedAt: now,
    pairedAt: now,
    lastSeenAt: now,
    online: i % 101 !== 0,
    removalRequestedAt: null,
    upgradeId: null,
    hold: false,
    upgrading: false,
    lastUpgradeFailed: false,
    state: 'idle',
    versionStatus: 'outdated',
    createdAt: now,
    updatedAt: now,
  });
}

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-plan-'));
  const config = loadConfig({
    DATA_DIR: dataDir,
    LOCKSTEP_ADMIN_TOKEN: 'lsk_bench-admin-token-000000000000',
    LOG_LEVEL: 'error',
  });
  const db = await Database.open(config);
  const now = new Date();
  console.log(`planning under backup-first, half of the agents in pairs; median of ${runs} runs; SQLite at ${dataDir}`);
  console.log('agents      load+sort (baseline)   plan        plan/agent   plan/baseline');
  let previous: { n: number; planMs: number } | null = null;
  try {
    for (const n of sizes) {
      const clusterId = randomUUID();
      await db.transaction(async (tx) => {
        for (let i = 0; i < n; i += 500)
          await tx.em.insert(
            Agent,
            Array.from({ length: Math.min(500, n - i) }, (_, j) => agentRow(clusterId, i + j, now)),
          );
      });
      const loads: number[] = [];
      const plans: number[] = [];
      let steps = 0;
      for (let r = 0; r < runs; r++) {
        let start = process.hrtime.bigint();
        const rows = await db.reader.find(Agent, { where: { clusterId } });
        rows.sort(
          (a, b) => (a.failoverGroup ?? '').localeCompare(b.failoverGroup ?? '') || a.name.localeCompare(b.name),
        );
        loads.push(ms(start));

        const agents = rows.map(toPlanAgent);
        start = process.hrtime.bigint();
        const result = plan({
          targets: agents,
          cluster: agents,
          pkg: { version: '1.1.0', kind: 'full' },
          policy: 'backup-first',
          clusterDefaultPolicy: 'simultaneous',
          options: { ...DEFAULT_UPGRADE_OPTIONS, maxParallel: '10%' },
        });
        plans.push(ms(start));
        steps = result.steps.length;
      }
      const load = median(loads);
      const planMs = median(plans);
      const growth = previous ? `  (x${(planMs / previous.planMs).toFixed(1)} for x${n / previous.n} agents)` : '';
      console.log(
        `${String(n).padEnd(11)} ${load.toFixed(1).padStart(8)} ms            ${planMs.toFixed(1).padStart(7)} ms  ${((planMs * 1000) / n).toFixed(2).padStart(6)} µs    ${(planMs / load).toFixed(2)}${growth}   [${steps} steps]`,
      );
      previous = { n, planMs };
    }
  } finally {
    await db.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  console.log('target: 10,000 agents planned under 100 ms, growth close to linear');
}

void main();
