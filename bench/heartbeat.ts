/**
 * bench/heartbeat: heartbeat calls per second and p99 latency with 100 concurrent connections,
 * Lockstep (SQLite, N paired agents heartbeating in turn) beside, in the same run on the same
 * machine: a bare node:http server answering the same JSON (the baseline), plain Fastify with a
 * JSON schema on the body and a bearer check in a hook (the limit for a validated, authenticated
 * JSON POST in Node), and the frameworks' floors: one empty Nest route parsing the same body, on
 * Express and on Fastify. Targets: at least 0.25 of the bare server's throughput, p99 under 50 ms.
 *
 *   npm run bench:heartbeat -- [--connections 100] [--duration 10] [--agents 1000]
 *   npm run bench:heartbeat -- --replicas 2 --database-url postgres://postgres@127.0.0.1:5432/postgres
 *   npm run bench:heartbeat -- --cpu-prof /tmp/prof   (a V8 CPU profile of the Lockstep process)
 *
 * With --replicas N (PostgreSQL), it measures one replica on a fresh database, then N replicas on
 * another, the connections spread over them as a load balancer would, and prints both.
 */
import autocannon from 'autocannon';
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { bareJsonServer, startBareServer, startLockstep } from './support/processes';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '100' },
    duration: { type: 'string', default: '10' },
    agents: { type: 'string', default: '1000' },
    replicas: { type: 'string', default: '1' },
    'database-url': { type: 'string' },
    'cpu-prof': { type: 'string' },
  },
});
const replicaCount = Number(values.replicas);
const serverUrl = values['database-url'] ?? process.env.DATABASE_URL;
const connections = Number(values.connections);
const duration = Number(values.duration);
const agentCount = Number(values.agents);
const ADMIN = 'lsk_bench-admin-token-000000000000';

const heartbeatBody = JSON.stringify({
  version: '1.0.0',
  busy: false,
  facts: { os: 'linux', arch: 'x64', freeDiskMb: 51200, memoryMb: 8192 },
});
const answer = JSON.stringify({ commands: [], hold: false, pollAfterMs: 10000 });

const BARE_SERVER = bareJsonServer(JSON.stringify(answer));

// Plain Fastify as Lockstep's native agent routes use it: a JSON schema compiled once for the body
// and a bearer check before the handler; no database.
const PLAIN_FASTIFY_SERVER = `
const fastify = require('fastify')({ logger: false });
const body = { type: 'object', additionalProperties: false, required: ['version', 'busy'], properties: {
  version: { type: ['string', 'null'] }, busy: { type: 'boolean' },
  facts: { type: 'object', additionalProperties: false, properties: { os: { type: 'string' }, arch: { type: 'string' }, freeDiskMb: { type: 'integer' }, memoryMb: { type: 'integer' } } } } };
fastify.addHook('onRequest', (req, reply, done) => {
  if (req.url !== '/ready' && !/^Bearer \\S+$/.test(req.headers.authorization || '')) { reply.code(401).send({ code: 'TOKEN_MISSING' }); return; }
  done();
});
fastify.post('/api/v1/agent/heartbeat', { schema: { body } }, async () => (${answer}));
fastify.get('/ready', async () => 'ok');
fastify.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
`;

// The frameworks' own floor: Nest 11 with one POST route that parses the same JSON and answers the
// same body, and nothing else (no auth, validation or database), on each HTTP adapter.
const nestFloorServer = (adapter: 'express' | 'fastify') => `
require('reflect-metadata');
const { NestFactory } = require('@nestjs/core');
const { Module, Controller, Post, Get, HttpCode, Body } = require('@nestjs/common');
${adapter === 'fastify' ? "const { FastifyAdapter } = require('@nestjs/platform-fastify');" : ''}
class Heartbeat {
  heartbeat(body) { return ${answer}; }
  ready() { return 'ok'; }
}
Reflect.decorate([Post('api/v1/agent/heartbeat'), HttpCode(200), Reflect.metadata('design:paramtypes', [Object])], Heartbeat.prototype, 'heartbeat', Object.getOwnPropertyDescriptor(Heartbeat.prototype, 'heartbeat'));
Reflect.decorate([Get('ready')], Heartbeat.prototype, 'ready', Object.getOwnPropertyDescriptor(Heartbeat.prototype, 'ready'));
Body()(Heartbeat.prototype, 'heartbeat', 0);
Reflect.decorate([Controller()], Heartbeat);
class Floor {}
Reflect.decorate([Module({ controllers: [Heartbeat] })], Floor);
NestFactory.create(Floor, ${adapter === 'fastify' ? 'new FastifyAdapter(), ' : ''}{ logger: false }).then((app) => app.listen(Number(process.env.PORT), '127.0.0.1'));
`;
interface Figure {
  requestsPerSecond: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

async function load(url: string, tokens: string[], conns = connections): Promise<Figure> {
  let next = 0;
  const run = (seconds: number) =>
    autocannon({
      url,
      connections: conns,
      duration: seconds,
      requests: [
        {
          method: 'POST',
          path: '/api/v1/agent/heartbeat',
          headers: { 'content-type': 'application/json' },
          body: heartbeatBody,
          setupRequest: (req) => ({
            ...req,
            headers: { ...req.headers, authorization: `Bearer ${tokens[next++ % tokens.length]}` },
          }),
        },
      ],
    });
  await run(2); // warm-up: JIT, caches, connection setup
  const result = await run(duration);
  return {
    requestsPerSecond: result.requests.average,
    p99Ms: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
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

/** Registers and pairs `count` agents; returns their tokens. */
async function pairAgents(url: string, count: number): Promise<string[]> {
  const cluster: { id: string } = await api(url, 'POST', '/api/v1/clusters', { name: 'bench', product: 'acme-agent' });
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const agent: { pairingKey: string } = await api(url, 'POST', `/api/v1/clusters/${cluster.id}/agents`, {
      name: `agent-${i}`,
      address: `agent-${i}.bench`,
      role: 'standalone',
    });
    const paired: { token: string } = await api(url, 'POST', '/api/v1/agent/pair', {
      pairingKey: agent.pairingKey,
      version: '1.0.0',
    });
    tokens.push(paired.token);
  }
  return tokens;
}

const fmt = (f: Figure) =>
  `${f.requestsPerSecond.toFixed(0).padStart(7)} req/s   p99 ${String(f.p99Ms).padStart(4)} ms   errors ${f.errors}   non-2xx ${f.non2xx}`;

/** Starts a baseline server from its script, loads it, stops it. */
async function loadScript(script: string): Promise<Figure> {
  const server = await startBareServer(script);
  try {
    return await load(server.url, ['unused']);
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  console.log(`bench/heartbeat: ${connections} connections, ${duration} s per run, ${agentCount} paired agents`);
  const bareFigure = await loadScript(BARE_SERVER);
  const fastifyFigure = await loadScript(PLAIN_FASTIFY_SERVER);
  const expressFloor = await loadScript(nestFloorServer('express'));
  const fastifyFloor = await loadScript(nestFloorServer('fastify'));

  const profileDir = values['cpu-prof'];
  const lockstep = await startLockstep(
    { LOCKSTEP_ADMIN_TOKEN: ADMIN },
    profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
  );
  let lockstepFigure: Figure;
  try {
    const tokens = await pairAgents(lockstep.url, agentCount);
    lockstepFigure = await load(lockstep.url, tokens);
  } finally {
    await lockstep.stop();
  }

  const of = (f: Figure) => (f.requestsPerSecond / bareFigure.requestsPerSecond).toFixed(2);
  console.log(`bare node:http (baseline)       ${fmt(bareFigure)}   1.00`);
  console.log(`plain fastify, schema + auth    ${fmt(fastifyFigure)}   ${of(fastifyFigure)}`);
  console.log(`nest+express, empty route       ${fmt(expressFloor)}   ${of(expressFloor)}`);
  console.log(`nest+fastify, empty route       ${fmt(fastifyFloor)}   ${of(fastifyFloor)}`);
  console.log(`lockstep heartbeat (SQLite)     ${fmt(lockstepFigure)}   ${of(lockstepFigure)}`);
  const ratio = lockstepFigure.requestsPerSecond / bareFigure.requestsPerSecond;
  const met = ratio >= 0.25 && lockstepFigure.p99Ms < 50;
  console.log(
    `Lockstep: ${ratio.toFixed(2)} of the bare server (target >= 0.25), p99 ${lockstepFigure.p99Ms} ms (target < 50): ${met ? 'met' : 'NOT met'}`,
  );
  console.log(
    `(${(lockstepFigure.requestsPerSecond / fastifyFigure.requestsPerSecond).toFixed(2)} of plain Fastify with a schema and an auth hook, the limit for such a call)`,
  );
  if (replicaCount > 1) await compareReplicas();
}

/** One replica, then N, each set on a fresh PostgreSQL database; connections spread evenly over the N. */
async function compareReplicas(): Promise<void> {
  if (!serverUrl)
    throw new Error(
      '--replicas needs PostgreSQL: pass --database-url postgres://... (a database the bench may create databases from)',
    );
  const run = async (count: number): Promise<Figure> => {
    const name = `lockstep_bench_${randomBytes(4).toString('hex')}`;
    const admin = new Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    const replicas = [];
    try {
      for (let i = 0; i < count; i++)
        replicas.push(await startLockstep({ LOCKSTEP_ADMIN_TOKEN: ADMIN, DATABASE_URL: url.toString() }));
      const tokens = await pairAgents(replicas[0].url, agentCount);
      const figures = await Promise.all(
        replicas.map((r) => load(r.url, tokens, Math.max(1, Math.floor(connections / count)))),
      );
      return {
        requestsPerSecond: figures.reduce((sum, f) => sum + f.requestsPerSecond, 0),
        p99Ms: Math.max(...figures.map((f) => f.p99Ms)),
        errors: figures.reduce((sum, f) => sum + f.errors, 0),
        non2xx: figures.reduce((sum, f) => sum + f.non2xx, 0),
      };
    } finally {
      await Promise.all(replicas.map((r) => r.stop()));
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  };
  const one = await run(1);
  const many = await run(replicaCount);
  console.log(`one replica (PostgreSQL)         ${fmt(one)}`);
  console.log(
    `${replicaCount} replicas (PostgreSQL)        ${fmt(many)}   (${(many.requestsPerSecond / one.requestsPerSecond).toFixed(2)} of one; all processes share this machine's ${cpus().length} cores)`,
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
