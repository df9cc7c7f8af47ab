/**
 * bench/heartbeat: heartbeat calls per second and p99 latency with 100 concurrent connections,
 * Lockstep (SQLite, N paired agents heartbeating in turn) beside a bare node:http server answering
 * the same JSON, measured in the same run on the same machine. Target: at least 0.35 of the bare
 * server's throughput.
 *
 *   npm run bench:heartbeat -- [--connections 100] [--duration 10] [--agents 1000]
 */
import autocannon from 'autocannon';
import { parseArgs } from 'node:util';
import { startBareServer, startLockstep } from './support/processes';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '100' },
    duration: { type: 'string', default: '10' },
    agents: { type: 'string', default: '1000' },
  },
});
const connections = Number(values.connections);
const duration = Number(values.duration);
const agentCount = Number(values.agents);
const ADMIN = 'lsk_bench-admin-token-000000000000';

const heartbeatBody = JSON.stringify({ version: '1.0.0', busy: false, facts: { os: 'linux', arch: 'x64', freeDiskMb: 51200, memoryMb: 8192 } });
const answer = JSON.stringify({ commands: [], hold: false, pollAfterMs: 10000 });

const BARE_SERVER = `
const http = require('node:http');
http.createServer((req, res) => {
  if (req.url === '/ready') { res.end('ok'); return; }
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    JSON.parse(body);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(${JSON.stringify(answer)});
  });
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

interface Figure {
  requestsPerSecond: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

async function load(url: string, tokens: string[]): Promise<Figure> {
  let next = 0;
  const run = (seconds: number) =>
    autocannon({
      url,
      connections,
      duration: seconds,
      requests: [
        {
          method: 'POST',
          path: '/api/v1/agent/heartbeat',
          headers: { 'content-type': 'application/json' },
          body: heartbeatBody,
          setupRequest: (req) => ({ ...req, headers: { ...req.headers, authorization: `Bearer ${tokens[next++ % tokens.length]}` } }),
        },
      ],
    });
  await run(2); // warm-up: JIT, caches, connection setup
  const result = await run(duration);
  return { requestsPerSecond: result.requests.average, p99Ms: result.latency.p99, errors: result.errors, non2xx: result.non2xx };
}

async function api(url: string, method: string, path: string, body?: unknown, token = ADMIN): Promise<any> {
  const res = await fetch(url + path, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: body ? JSON.stringify(body) : undefined });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Registers and pairs `count` agents; returns their tokens. */
async function pairAgents(url: string, count: number): Promise<string[]> {
  const cluster: { id: string } = await api(url, 'POST', '/api/v1/clusters', { name: 'bench', product: 'acme-agent' });
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const agent: { pairingKey: string } = await api(url, 'POST', `/api/v1/clusters/${cluster.id}/agents`, { name: `agent-${i}`, address: `agent-${i}.bench`, role: 'standalone' });
    const paired: { token: string } = await api(url, 'POST', '/api/v1/agent/pair', { pairingKey: agent.pairingKey, version: '1.0.0' });
    tokens.push(paired.token);
  }
  return tokens;
}

const fmt = (f: Figure) => `${f.requestsPerSecond.toFixed(0).padStart(7)} req/s   p99 ${String(f.p99Ms).padStart(4)} ms   errors ${f.errors}   non-2xx ${f.non2xx}`;

async function main(): Promise<void> {
  console.log(`bench/heartbeat: ${connections} connections, ${duration} s per run, ${agentCount} paired agents`);
  const bare = await startBareServer(BARE_SERVER);
  let bareFigure: Figure;
  try {
    bareFigure = await load(bare.url, ['unused']);
  } finally {
    await bare.stop();
  }

  const lockstep = await startLockstep({ LOCKSTEP_ADMIN_TOKEN: ADMIN });
  let lockstepFigure: Figure;
  try {
    const tokens = await pairAgents(lockstep.url, agentCount);
    lockstepFigure = await load(lockstep.url, tokens);
  } finally {
    await lockstep.stop();
  }

  console.log(`bare node:http (baseline)  ${fmt(bareFigure)}`);
  console.log(`lockstep heartbeat (SQLite) ${fmt(lockstepFigure)}`);
  const ratio = lockstepFigure.requestsPerSecond / bareFigure.requestsPerSecond;
  console.log(`ratio ${ratio.toFixed(2)} of the bare server (target >= 0.35): ${ratio >= 0.35 ? 'met' : 'NOT met'}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
