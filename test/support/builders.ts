import { packageArchive } from './archives';
import { FakeAgent, HeartbeatBody } from './fake-agent';
import type { TestApp } from './test-app';

let counter = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${++counter}`;

export async function givenCluster(
  t: TestApp,
  body: Record<string, unknown> = {},
): Promise<{ id: string; name: string; product: string }> {
  const res = await t.admin.post('/api/v1/clusters').send({ name: unique('cluster'), product: 'acme-agent', ...body });
  if (res.status !== 201) throw new Error(`cluster: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export interface RegisteredAgent {
  id: string;
  name: string;
  pairingKey: string;
  [field: string]: unknown;
}

export async function givenAgent(
  t: TestApp,
  clusterId: string,
  body: {
    role?: 'standalone' | 'main' | 'backup';
    failoverGroup?: string;
    name?: string;
    address?: string;
    labels?: Record<string, string>;
  } = {},
): Promise<RegisteredAgent> {
  const name = body.name ?? unique('agent');
  const res = await t.admin
    .post(`/api/v1/clusters/${clusterId}/agents`)
    .send({ role: 'standalone', name, address: body.address ?? `${name}.lan`, ...body });
  if (res.status !== 201) throw new Error(`agent: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Registers and pairs an agent, which then reports `state` in a first heartbeat, as real agents do. */
export async function givenPairedAgent(
  t: TestApp,
  clusterId: string,
  body: Parameters<typeof givenAgent>[2] = {},
  state: Partial<HeartbeatBody> = {},
): Promise<{ registered: RegisteredAgent; agent: FakeAgent }> {
  const registered = await givenAgent(t, clusterId, body);
  const agent = await FakeAgent.pair(t, registered.pairingKey, state);
  const first = await agent.heartbeat();
  if (first.status !== 200) throw new Error(`first heartbeat: ${first.status} ${JSON.stringify(first.body)}`);
  return { registered, agent };
}

/** Uploads a package (mode upload-only) built from manifest `fields` with `token` (the admin's by default); returns its id. */
export async function givenPackage(
  t: TestApp,
  clusterId: string,
  fields: Record<string, unknown> = {},
  token?: string,
): Promise<string> {
  const res = await (token ? t.as(token) : t.admin)
    .post(`/api/v1/clusters/${clusterId}/packages`)
    .field('mode', 'upload-only')
    .attach('file', packageArchive(fields), 'p.tar.gz');
  if (res.status !== 201) throw new Error(`upload: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

/**
 * Paired agents named for their place: "g1-main" is the main of failover pair g1, "g1-backup" its
 * backup, any other name a standalone agent; each reports `state[name]` in its first heartbeat.
 */
export async function givenNamedAgents(
  t: TestApp,
  clusterId: string,
  names: string[],
  state: Record<string, Partial<HeartbeatBody>> = {},
): Promise<{ members: Array<{ name: string; agent: FakeAgent }>; ids: Record<string, string> }> {
  const members: Array<{ name: string; agent: FakeAgent }> = [];
  const ids: Record<string, string> = {};
  for (const name of names) {
    const [group, role] = name.split('-');
    const body = role === 'main' || role === 'backup' ? { name, role, failoverGroup: group } : { name };
    const { registered, agent } = await givenPairedAgent(
      t,
      clusterId,
      body as Parameters<typeof givenAgent>[2],
      state[name] ?? {},
    );
    members.push({ name, agent });
    ids[name] = registered.id;
  }
  return { members, ids };
}
