import { TEST_ORIGIN } from '../../src/testing/fixtures';
import type { INestApplication } from '@nestjs/common';
import { AgentCommandsService } from '../../src/cluster/agent-commands.service';
import { AgentProtocolService } from '../../src/cluster/agent-protocol.service';
import { AgentsService } from '../../src/cluster/agents.service';
import { ClustersService } from '../../src/cluster/clusters.service';
import { Database } from '../../src/database/database';
import { Upgrade } from '../../src/upgrades/upgrade.entity';
import { packageArchive } from '../../test/support/archives';

export interface BenchAgent {
  id: string;
  version: string;
}

/**
 * A cluster of `count` agents on 1.0.0 (the first half in failover pairs), each registered, paired
 * and heartbeating through the services the HTTP controllers call, and a 1.1.0 package uploaded
 * over HTTP (`baseUrl`, as `adminToken`).
 */
export async function setUpFleet(
  app: INestApplication,
  baseUrl: string,
  adminToken: string,
  count: number,
): Promise<{ clusterId: string; packageId: string; agents: BenchAgent[] }> {
  const protocol = app.get(AgentProtocolService);
  const cluster = await app
    .get(ClustersService)
    .create({ name: `bench-${Date.now()}`, product: 'acme-agent' }, TEST_ORIGIN);
  const agents: BenchAgent[] = [];
  for (let i = 0; i < count; i++) {
    const inPair = i < count / 2;
    const registered = await app.get(AgentsService).register(
      cluster.id,
      {
        name: `agent-${String(i).padStart(4, '0')}`,
        address: `agent-${i}.lan`,
        role: inPair ? (i % 2 === 0 ? 'main' : 'backup') : 'standalone',
        ...(inPair ? { failoverGroup: `pair-${Math.floor(i / 2)}` } : {}),
      },
      TEST_ORIGIN,
    );
    const paired = await protocol.pair({
      pairingKey: registered.pairingKey,
      version: '1.0.0',
      facts: { os: 'linux', freeDiskMb: 5000 },
    });
    agents.push({ id: paired.agentId, version: '1.0.0' });
    await protocol.heartbeat(paired.agentId, { version: '1.0.0', busy: false });
  }
  const form = new FormData();
  form.set('mode', 'upload-only');
  form.set('file', new Blob([packageArchive()]), 'package.tar.gz');
  const uploaded = await fetch(`${baseUrl}/api/v1/clusters/${cluster.id}/packages`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${adminToken}` },
    body: form,
  });
  if (!uploaded.ok) throw new Error(`upload: ${uploaded.status} ${await uploaded.text()}`);
  const pkg = (await uploaded.json()) as { id: string };
  return { clusterId: cluster.id, packageId: pkg.id, agents };
}

/**
 * Plays every agent until the upgrade ends: each polls, and answers each new command at once with
 * a progress report per phase in `phases`, then success. Returns how many heartbeats it sent.
 */
export async function driveUpgrade(
  app: INestApplication,
  upgradeId: string,
  agents: BenchAgent[],
  phases: Array<[string, number]>,
): Promise<number> {
  const protocol = app.get(AgentProtocolService);
  const commands = app.get(AgentCommandsService);
  const db = app.get(Database);
  const seen = new Set<string>();
  let heartbeats = 0;
  const deadline = Date.now() + 600_000;
  while (Date.now() < deadline) {
    const before = seen.size;
    await Promise.all(
      agents.map(async (agent) => {
        heartbeats++;
        const answer = await protocol.heartbeat(agent.id, { version: agent.version, busy: false });
        for (const command of answer.commands) {
          if (seen.has(command.id)) continue;
          seen.add(command.id);
          for (const [phase, percent] of phases)
            await commands.reportProgress(agent.id, command.id, { phase, percent });
          await commands.reportComplete(agent.id, command.id, {
            status: 'succeeded',
            version: command.toVersion as string,
          });
          agent.version = command.toVersion as string;
        }
      }),
    );
    const current = await db.reader.findOneByOrFail(Upgrade, { id: upgradeId });
    if (current.finishedAt) return heartbeats;
    // Agents poll: a round that brought no command waits a little, as pollAfterMs would.
    if (seen.size === before) await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`upgrade ${upgradeId} did not end in 10 minutes`);
}
