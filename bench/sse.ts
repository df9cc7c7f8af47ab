/**
 * bench/sse: 1,000 and then 5,000 viewers on one stream while events are published at a steady
 * rate. Prints deliveries per second, p99 publish-to-receive latency and RSS per viewer for
 * Lockstep (a cluster stream fed by real agent heartbeats) beside a bare node:http SSE server doing
 * the same, in the same run. Targets: at least 0.5 of the bare deliveries, p99 under 250 ms, RSS per
 * viewer at most 1.5 times the bare one. The viewers and the publisher share one process; when it
 * cannot keep the rate (thousands of viewers on 2 cores), fewer events are published, for both
 * servers alike, and the line says how many.
 *
 *   npm run bench:sse -- [--viewers 1000,5000] [--rate 20] [--duration 10]
 */
import * as http from 'node:http';
import { parseArgs } from 'node:util';
import { rssOf, startBareServer, startLockstep } from './support/processes';

const { values } = parseArgs({
  options: {
    viewers: { type: 'string', default: '1000,5000' },
    rate: { type: 'string', default: '20' },
    duration: { type: 'string', default: '10' },
  },
});
const viewerCounts = values.viewers.split(',').map(Number);
const rate = Number(values.rate);
const duration = Number(values.duration);
const ADMIN = 'lsk_bench-admin-token-000000000000';
/** Latency is sampled on this many viewers; deliveries are counted on all. */
const SAMPLED_VIEWERS = 100;

const BARE_SSE_SERVER = `
const http = require('node:http');
const viewers = new Set();
let id = 0;
http.createServer((req, res) => {
  if (req.url === '/ready') return res.end('ok');
  if (req.url === '/stream') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache, no-transform' });
    res.write('retry: 3000\\n\\n');
    viewers.add(res);
    req.on('close', () => viewers.delete(res));
    return;
  }
  if (req.url === '/publish') {
    id++;
    const frame = 'id: ' + id + '\\nevent: agent.status\\ndata: ' + JSON.stringify({ id, type: 'agent.status', createdAt: new Date().toISOString(), data: { n: id } }) + '\\n\\n';
    for (const v of viewers) v.write(frame);
    return res.end('{}');
  }
  res.statusCode = 404; res.end();
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

interface Viewers {
  deliveries(): number;
  latencies(): number[];
  close(): void;
}

/** Opens `count` SSE connections (in batches, as a fleet of browsers would arrive) and counts what they receive. */
async function openViewers(url: string, count: number, headers: Record<string, string>): Promise<Viewers> {
  let deliveries = 0;
  const latencies: number[] = [];
  const requests: http.ClientRequest[] = [];
  const open = (sampled: boolean) =>
    new Promise<void>((resolve, reject) => {
      const req = http.get(url, { headers, agent: false }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`stream answered ${res.statusCode}`));
        res.setEncoding('utf8');
        let pending = '';
        res.on('data', (chunk: string) => {
          pending += chunk;
          let end: number;
          while ((end = pending.indexOf('\n\n')) >= 0) {
            const frame = pending.slice(0, end);
            pending = pending.slice(end + 2);
            if (!frame.startsWith('id:')) continue; // retry hint, keep-alive comments
            deliveries++;
            if (sampled) {
              const at = /"createdAt":"([^"]+)"/.exec(frame);
              if (at) latencies.push(Date.now() - Date.parse(at[1]));
            }
          }
        });
        resolve();
      });
      req.on('error', reject);
      requests.push(req);
    });
  for (let i = 0; i < count; i += 250) {
    await Promise.all(Array.from({ length: Math.min(250, count - i) }, (_, j) => open(i + j < SAMPLED_VIEWERS)));
  }
  return {
    deliveries: () => deliveries,
    latencies: () => latencies,
    close: () => requests.forEach((r) => r.destroy()),
  };
}

interface Figure {
  deliveriesPerSecond: number;
  p99Ms: number;
  rssPerViewerKb: number;
  published: number;
}

async function measure(
  viewerCount: number,
  streamUrl: string,
  headers: Record<string, string>,
  pid: number,
  publish: () => Promise<void>,
): Promise<Figure> {
  const rssBefore = rssOf(pid);
  const viewers = await openViewers(streamUrl, viewerCount, headers);
  await new Promise((r) => setTimeout(r, 1000));
  // What holding the viewers costs, before publishing adds garbage that a later GC would reclaim.
  const rssWithViewers = rssOf(pid);
  const started = Date.now();
  let published = 0;
  const interval = 1000 / rate;
  while (Date.now() - started < duration * 1000) {
    const due = started + published * interval;
    if (Date.now() < due) await new Promise((r) => setTimeout(r, due - Date.now()));
    await publish();
    published++;
  }
  await new Promise((r) => setTimeout(r, 1000)); // the tail
  const elapsed = (Date.now() - started) / 1000;
  const delivered = viewers.deliveries();
  const latencies = viewers.latencies().sort((a, b) => a - b);
  viewers.close();
  const expected = published * viewerCount;
  if (delivered < expected) console.log(`  (delivered ${delivered} of ${expected} expected)`);
  return {
    deliveriesPerSecond: delivered / elapsed,
    p99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? NaN,
    rssPerViewerKb: (rssWithViewers - rssBefore) / viewerCount / 1024,
    published,
  };
}

async function api(url: string, method: string, path: string, body?: unknown, token = ADMIN): Promise<any> {
  const res = await fetch(url + path, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const fmt = (f: Figure) =>
  `${String(f.published).padStart(4)} events published   ${f.deliveriesPerSecond.toFixed(0).padStart(8)} deliveries/s   p99 ${String(f.p99Ms).padStart(4)} ms   ${f.rssPerViewerKb.toFixed(1).padStart(6)} KiB RSS per viewer`;

async function main(): Promise<void> {
  console.log(
    `bench/sse: ${rate} events/s for ${duration} s to ${viewerCounts.join(' and then ')} viewers of one stream`,
  );
  for (const n of viewerCounts) {
    const bare = await startBareServer(BARE_SSE_SERVER);
    let bareFigure: Figure;
    try {
      bareFigure = await measure(
        n,
        `${bare.url}/stream`,
        {},
        bare.pid,
        async () => void (await fetch(`${bare.url}/publish`, { method: 'POST' })),
      );
    } finally {
      await bare.stop();
    }

    const lockstep = await startLockstep({ LOCKSTEP_ADMIN_TOKEN: ADMIN });
    let lockstepFigure: Figure;
    try {
      const cluster = await api(lockstep.url, 'POST', '/api/v1/clusters', { name: 'bench', product: 'acme-agent' });
      const viewer = (await api(lockstep.url, 'POST', '/api/v1/tokens', { name: 'viewer', role: 'viewer' })).secret;
      const agent = await api(lockstep.url, 'POST', `/api/v1/clusters/${cluster.id}/agents`, {
        name: 'a',
        address: 'a.bench',
        role: 'standalone',
      });
      const { token } = await api(lockstep.url, 'POST', '/api/v1/agent/pair', {
        pairingKey: agent.pairingKey,
        version: '1.0.0',
      });
      let busy = false;
      // Each heartbeat flips busy: one agent.status event, written and committed as in production.
      const publish = async () =>
        void (await api(
          lockstep.url,
          'POST',
          '/api/v1/agent/heartbeat',
          { version: '1.0.0', busy: (busy = !busy) },
          token,
        ));
      lockstepFigure = await measure(
        n,
        `${lockstep.url}/api/v1/clusters/${cluster.id}/events`,
        { Authorization: `Bearer ${viewer}` },
        lockstep.pid,
        publish,
      );
    } finally {
      await lockstep.stop();
    }

    console.log(`\n${n} viewers`);
    console.log(`  bare node:http SSE (baseline) ${fmt(bareFigure)}`);
    console.log(`  lockstep cluster stream       ${fmt(lockstepFigure)}`);
    const deliveries = lockstepFigure.deliveriesPerSecond / bareFigure.deliveriesPerSecond;
    const memory = lockstepFigure.rssPerViewerKb / bareFigure.rssPerViewerKb;
    console.log(
      `  deliveries ${deliveries.toFixed(2)} of bare (target >= 0.5): ${deliveries >= 0.5 ? 'met' : 'NOT met'}`,
    );
    console.log(`  p99 ${lockstepFigure.p99Ms} ms (target < 250): ${lockstepFigure.p99Ms < 250 ? 'met' : 'NOT met'}`);
    console.log(`  RSS per viewer ${memory.toFixed(2)} x bare (target <= 1.5): ${memory <= 1.5 ? 'met' : 'NOT met'}`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
