import { givenCluster, givenNamedAgents, givenPackage } from './support/builders';
import { freePort } from './support/free-port';
import { Fleet } from './support/fleet';
import { describeEachDatabase, TestApp } from './support/test-app';
// The parser Prometheus' own JavaScript tools use for the text format (no types published).
const parsePrometheusTextFormat = require('parse-prometheus-text-format') as (text: string) => MetricFamily[];

interface MetricFamily {
  name: string;
  type: string;
  metrics: Array<{ labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string }>;
}

/** GET /metrics as Prometheus scrapes it, parsed; `value(name, labels)` reads one sample. */
async function scrape(t: TestApp) {
  const res = await t.admin
    .get('/metrics')
    .buffer(true)
    .parse((r, done) => {
      let text = '';
      r.on('data', (c: Buffer) => (text += c.toString()));
      r.on('end', () => done(null, text));
    });
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  const families = parsePrometheusTextFormat(res.body as string);
  const family = (name: string) => families.find((f) => f.name === name);
  const value = (name: string, labels: Record<string, string> = {}) => {
    const sample = family(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    return sample?.value === undefined ? undefined : Number(sample.value);
  };
  /** The sum of the samples whose labels include `labels`. */
  const sum = (name: string, labels: Record<string, string>) =>
    (family(name)?.metrics ?? [])
      .filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
      .reduce((total, m) => total + Number(m.value), 0);
  return { family, value, sum, text: res.body as string };
}

describeEachDatabase('GET /metrics', (kind) => {
  let t: TestApp;

  beforeAll(async () => {
    // Every scrape reads the fleet afresh, so a change shows in the next one.
    t = await TestApp.start(kind, { env: { METRICS_CACHE_S: '0' } });
  }, 60_000);
  afterAll(() => t?.close());

  it('is refused without a token (401) and to a non-admin token (403), in the error shape', async () => {
    const anonymous = await t.http().get('/metrics');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ statusCode: 401, code: expect.any(String) });
    const operator = await t.as(await t.tokenFor('operator', 'metrics-operator')).get('/metrics');
    expect(operator.status).toBe(403);
    expect(operator.body.message).toContain('Metrics need an admin token');
  });

  it('counts agents, upgrades, commands, heartbeats and stored bytes as they change', async () => {
    const cluster = await givenCluster(t);
    const before = await scrape(t);
    expect(before.value('lockstep_agents', { cluster: cluster.name })).toBeUndefined();
    const heartbeatsBefore = before.value('lockstep_heartbeats_total')!;
    const bytesBefore = before.value('lockstep_package_bytes')!;
    expect(before.value('lockstep_leader')).toBe(1);
    // Every upgrade status has its series from the start, so an alert on a change sees the first.
    expect(before.value('lockstep_upgrades', { status: 'failed' })).toBe(0);
    expect(before.value('lockstep_event_log_lag')).toBe(0); // nobody watches
    // The database's connections, busy or idle (PostgreSQL's pool; SQLite's one writer), and waiters.
    expect(before.value('lockstep_db_waiting')).toBeGreaterThanOrEqual(0);
    expect(before.value('lockstep_db_connections', { state: 'busy' })).toBeGreaterThanOrEqual(0);
    expect(before.sum('lockstep_db_connections', {})).toBeGreaterThanOrEqual(1);
    if (kind === 'sqlite') expect(before.sum('lockstep_db_connections', {})).toBe(1);
    expect(before.value('lockstep_cluster_consistent', { cluster: cluster.name })).toBe(1); // no agent disagrees

    // a-3 runs 1.0.1: the cluster is mixed until the upgrade brings all three to 1.1.0.
    const { members } = await givenNamedAgents(t, cluster.id, ['a-1', 'a-2', 'a-3'], { 'a-3': { version: '1.0.1' } });
    const withAgents = await scrape(t);
    expect(withAgents.sum('lockstep_agents', { cluster: cluster.name, state: 'idle' })).toBe(3);
    expect(withAgents.sum('lockstep_agents', { cluster: cluster.name, version_status: 'outdated' })).toBe(2);
    expect(withAgents.value('lockstep_heartbeats_total')).toBe(heartbeatsBefore + 3);
    expect(withAgents.value('lockstep_cluster_consistent', { cluster: cluster.name })).toBe(0);

    const packageId = await givenPackage(t, cluster.id, { version: '1.1.0' });
    const withPackage = await scrape(t);
    expect(withPackage.value('lockstep_package_bytes')!).toBeGreaterThan(bytesBefore);

    const upgrade = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId, target: { all: true }, options: { maxParallel: 3 } });
    expect(upgrade.status).toBe(201);
    const fleet = new Fleet(t, members);
    await fleet.pass();
    const running = await scrape(t);
    expect(running.value('lockstep_upgrades', { status: 'running' })).toBeGreaterThanOrEqual(1);
    expect(running.value('lockstep_commands', { status: 'pending' })).toBe(3);

    await fleet.until(upgrade.body.id, ['succeeded']);
    const after = await scrape(t);
    expect(after.value('lockstep_commands', { status: 'pending' })).toBe(0);
    expect(after.value('lockstep_agents', { cluster: cluster.name, state: 'idle', version_status: 'latest' })).toBe(3);
    expect(after.value('lockstep_upgrades', { status: 'succeeded' })).toBeGreaterThanOrEqual(1);
    expect(after.value('lockstep_cluster_consistent', { cluster: cluster.name })).toBe(1);
    // The parser folds a labelled histogram into one set of buckets: its +Inf bucket counts every
    // step, and the labelled _count line is read from the text itself.
    expect(after.family('lockstep_step_duration_seconds')?.metrics[0].buckets?.['+Inf']).toBe('3');
    expect(after.text).toMatch(/^lockstep_step_duration_seconds_count\{kind="upgrade",outcome="succeeded"\} 3$/m);
  }, 120_000);
});

describe('METRICS_PORT [sqlite]', () => {
  let t: TestApp;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    t = await TestApp.start('sqlite', { env: { METRICS_PORT: String(port), METRICS_CACHE_S: '0' } });
  }, 60_000);
  afterAll(() => t?.close());

  it('serves /metrics without a token on its own port (127.0.0.1 by default), and nothing else there', async () => {
    const scrape = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(scrape.status).toBe(200);
    expect(scrape.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusTextFormat(await scrape.text());
    expect(families.find((f) => f.name === 'lockstep_leader')?.metrics[0].value).toBe('1');
    const other = await fetch(`http://127.0.0.1:${port}/api/v1/clusters`);
    expect(other.status).toBe(404);
    // The API's port still wants its admin token.
    expect((await t.http().get('/metrics')).status).toBe(401);
  });
});
