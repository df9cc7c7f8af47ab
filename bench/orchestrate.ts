/**
 * bench/orchestrate: an upgrade of N agents (default 1,000; half of them in failover pairs under
 * simultaneous) driven to its end by in-process fake agents that answer every command at once.
 * Prints the server time per step transition (each task.progress event is one transition: start,
 * progress, end), as CPU time of the process and as wall time, beside a baseline measured in the
 * same run: one durable transaction that updates one row, the floor of any recorded transition.
 * The agents call the services the HTTP controllers call, so the HTTP stack (measured by
 * bench/heartbeat) is left out. Target: under 1 ms per transition.
 *
 *   npm run bench:orchestrate -- [--agents 1000] [--db sqlite|postgres-url]
 */
import { TEST_ORIGIN } from '../src/testing/fixtures';
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { createApp } from '../src/app.factory';
import { AgentProtocolService } from '../src/cluster/agent-protocol.service';
import { loadConfig } from '../src/config/app-config';
import { Database } from '../src/database/database';
import { ProgressEvent } from '../src/progress/progress-event.entity';
import { Upgrade } from '../src/upgrades/upgrade.entity';
import { UpgradesService } from '../src/upgrades/upgrades.service';
import { driveUpgrade, setUpFleet } from './support/fleet';

const { values } = parseArgs({
  options: { agents: { type: 'string', default: '1000' }, db: { type: 'string', default: 'sqlite' } },
});
const N = Number(values.agents);
const ADMIN = 'lsk_bench-admin-token-000000000000';

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-orchestrate-'));
  const config = loadConfig({
    DATA_DIR: dataDir,
    DATABASE_URL: values.db === 'sqlite' ? undefined : values.db,
    LOCKSTEP_ADMIN_TOKEN: ADMIN,
    LOG_LEVEL: 'error',
    PAIRING_RATE_LIMIT: '1000000',
  });
  const app = await createApp(config);
  await app.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
  try {
    const protocol = app.get(AgentProtocolService);
    const upgrades = app.get(UpgradesService);
    const db = app.get(Database);
    const { clusterId, packageId, agents } = await setUpFleet(app, base, ADMIN, N);
    console.log(`${N} agents (${N / 2} in pairs) registered and paired on ${db.type}`);

    // Baseline: durable one-row updates, one transaction each.
    const baselineRuns = 500;
    let start = process.hrtime.bigint();
    for (let i = 0; i < baselineRuns; i++) {
      await db.transaction((tx) =>
        tx.em.query(db.sql('UPDATE "clusters" SET "updatedAt" = $1 WHERE "id" = $2'), [
          new Date().toISOString(),
          clusterId,
        ]),
      );
    }
    const baselineMs = Number(process.hrtime.bigint() - start) / 1e6 / baselineRuns;

    // Agents poll whether or not anything happens: the CPU of a heartbeat that brings nothing is
    // measured here and taken out of the per-transition figure below.
    const idleRounds = 3;
    const cpuMark = process.cpuUsage();
    for (let r = 0; r < idleRounds; r++)
      await Promise.all(agents.map((a) => protocol.heartbeat(a.id, { version: a.version, busy: false })));
    const idle = process.cpuUsage(cpuMark);
    const cpuPerHeartbeatMs = (idle.user + idle.system) / 1000 / (idleRounds * N);

    const cpuBefore = process.cpuUsage();
    start = process.hrtime.bigint();
    const upgrade = await upgrades.create(
      clusterId,
      { packageId, target: { all: true }, policy: 'simultaneous' },
      TEST_ORIGIN,
    );
    const heartbeats = await driveUpgrade(app, upgrade.id, agents, [['install', 50]]);
    const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
    const cpu = process.cpuUsage(cpuBefore);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const final = await db.reader.findOneByOrFail(Upgrade, { id: upgrade.id });
    const transitions = await db.reader.countBy(ProgressEvent, { upgradeId: upgrade.id, type: 'task.progress' });
    if (process.env.DEBUG_BENCH) console.log(JSON.stringify(await upgrades.get(upgrade.id)).slice(0, 1500));

    console.log(`upgrade ${final.status} in ${(wallMs / 1000).toFixed(1)} s: ${transitions} step transitions`);
    console.log(
      `server CPU per transition   ${((cpuMs - heartbeats * cpuPerHeartbeatMs) / transitions).toFixed(3)} ms   (${heartbeats} heartbeats at ${cpuPerHeartbeatMs.toFixed(3)} ms CPU taken out; with them ${(cpuMs / transitions).toFixed(3)} ms)`,
    );
    console.log(`wall time per transition    ${(wallMs / transitions).toFixed(3)} ms`);
    console.log(
      `baseline: durable one-row transaction  ${baselineMs.toFixed(3)} ms   (per transition / baseline: ${(wallMs / transitions / baselineMs).toFixed(2)})`,
    );
    console.log('target: under 1 ms per step transition');
  } finally {
    await app.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

void main();
