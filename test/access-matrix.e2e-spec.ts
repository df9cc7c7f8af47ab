import { randomUUID } from 'node:crypto';
import { givenCluster, givenPairedAgent } from './support/builders';
import { describeEachDatabase, TEST_ADMIN_TOKEN, TestApp } from './support/test-app';

type Rule =
  | { kind: 'public' }
  | { kind: 'role'; role: 'viewer' | 'operator' | 'admin' }
  | { kind: 'agent' }
  | { kind: 'stream'; scope: string; param: string };
type Identity =
  'none' | 'malformed' | 'unknown' | 'revoked' | 'viewer' | 'operator' | 'admin' | 'agent' | 'removed-agent';
type Verdict = 'in' | 401 | 403;
type Audit = { action: string; target: string } | false | undefined;
type Operation = { 'x-access'?: Rule; 'x-audit'?: Audit; operationId?: string };
/** The actor an audit record names, as the matrix expects it. */
type ExpectedActor = { kind: 'anonymous' } | { kind: 'user'; tokenId: string } | { kind: 'agent'; agentId: string };

const RANK = { viewer: 1, operator: 2, admin: 3 } as const;

/** What the published rule says an identity gets: through the guard ('in'), 401 or 403. */
function expected(rule: Rule, who: Identity): Verdict {
  if (rule.kind === 'public') return 'in';
  if (who === 'none' || who === 'malformed' || who === 'unknown' || who === 'revoked' || who === 'removed-agent')
    return 401;
  if (rule.kind === 'agent') return who === 'agent' ? 'in' : 403;
  if (who === 'agent') return 403;
  const needed = rule.kind === 'stream' ? 'viewer' : rule.role;
  return RANK[who] >= RANK[needed] ? 'in' : 403;
}

/**
 * The access matrix (issue 20): every route of the OpenAPI document x every kind of caller, checked
 * against the rule the route publishes as `x-access`. Generated from the document, so a new route
 * is in the matrix the day it is added, and a route without a rule fails here. Path parameters are
 * fresh UUIDs: a caller who gets through the guard meets a 404 or a 400, never a 401/403, and
 * nothing ever answers 5xx.
 */
describeEachDatabase('access matrix from the OpenAPI document', (kind) => {
  let t: TestApp;
  let tokens: Record<Identity, string | undefined>;
  let document: { paths: Record<string, Record<string, Operation>> };
  /** What each identity is once the guard has checked it (unknown ones are anonymous). */
  let actors: Record<Identity, ExpectedActor>;
  /** Every secret the matrix holds: no audit record may contain one. */
  let secrets: string[];

  beforeAll(async () => {
    t = await TestApp.start(kind);
    const cluster = await givenCluster(t);
    const { agent, registered: matrixAgent } = await givenPairedAgent(t, cluster.id, { name: 'matrix-agent' });
    const { agent: removed, registered } = await givenPairedAgent(t, cluster.id, { name: 'removed-agent' });
    await t.admin.delete(`/api/v1/agents/${registered.id}`).expect((res) => expect([200, 204]).toContain(res.status));
    const revoked = await t.admin.post('/api/v1/tokens').send({ name: 'revoked', role: 'admin' }).expect(201);
    await t.admin.delete(`/api/v1/tokens/${revoked.body.id}`).expect(200);
    tokens = {
      none: undefined,
      malformed: 'Token abc',
      unknown: 'Bearer lsk_never-issued-0123456789abcdef012345',
      revoked: `Bearer ${revoked.body.secret}`,
      viewer: `Bearer ${await t.tokenFor('viewer')}`,
      operator: `Bearer ${await t.tokenFor('operator')}`,
      admin: `Bearer ${TEST_ADMIN_TOKEN}`,
      agent: `Bearer ${agent.token}`,
      'removed-agent': `Bearer ${removed.token}`,
    };
    const userOf = async (who: 'viewer' | 'operator' | 'admin'): Promise<ExpectedActor> => ({
      kind: 'user',
      tokenId: (await t.http().get('/api/v1/session').set('Authorization', tokens[who]!).expect(200)).body.tokenId,
    });
    const anonymous = { kind: 'anonymous' } as const;
    actors = {
      none: anonymous,
      malformed: anonymous,
      unknown: anonymous,
      revoked: anonymous,
      'removed-agent': anonymous,
      viewer: await userOf('viewer'),
      operator: await userOf('operator'),
      admin: await userOf('admin'),
      agent: { kind: 'agent', agentId: agent.agentId },
    };
    secrets = [
      // Every real secret ("Token abc", the malformed header, holds none).
      ...(['unknown', 'revoked', 'viewer', 'operator', 'admin', 'agent', 'removed-agent'] as const).map((who) =>
        tokens[who]!.replace(/^Bearer /, ''),
      ),
      registered.pairingKey,
      matrixAgent.pairingKey,
    ];
    document = (await t.http().get('/api/docs-json').expect(200)).body;
  });
  afterAll(() => t.close());

  it('every route publishes its access rule', () => {
    const routes = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({
        route: `${method.toUpperCase()} ${path}`,
        rule: op['x-access'],
      })),
    );
    expect(routes.length).toBeGreaterThan(40);
    expect(routes.filter((r) => !r.rule).map((r) => r.route)).toEqual([]);
  });

  it('every state-changing route says whether it is audited (x-audit), and GETs are not', () => {
    const routes = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, method, op })),
    );
    expect(routes.filter((r) => r.method !== 'get' && r.op['x-audit'] === undefined).map((r) => r.route)).toEqual([]);
    expect(routes.filter((r) => r.method === 'get' && r.op['x-audit'] !== undefined).map((r) => r.route)).toEqual([]);
    expect(routes.filter((r) => r.op['x-audit']).length).toBeGreaterThan(20);
  });

  it('every route x every caller gets what its rule says, never a 5xx, and each audited call leaves its record', async () => {
    const mismatches: string[] = [];
    const audited: AuditedCall[] = [];
    let checked = 0;
    for (const [template, methods] of Object.entries(document.paths)) {
      const path = template.replace(/\{[^}]+\}/g, () => randomUUID());
      for (const [method, op] of Object.entries(methods)) {
        const rule = op['x-access']!;
        for (const who of Object.keys(tokens) as Identity[]) {
          const requestId = `matrix-${randomUUID()}`;
          const status = await call(t.baseUrl + path, method, tokens[who], requestId);
          const want = expected(rule, who);
          const got: Verdict | number = status === 401 || status === 403 ? status : status >= 500 ? status : 'in';
          if (got !== want)
            mismatches.push(`${method.toUpperCase()} ${template} as ${who}: expected ${want}, got ${status}`);
          const audit = op['x-audit'];
          if (audit)
            audited.push({
              requestId,
              route: `${method.toUpperCase()} ${template}`,
              action: audit.action,
              who,
              status,
            });
          checked++;
        }
      }
    }
    expect(mismatches).toEqual([]);
    expect(checked).toBeGreaterThan(40 * 9);

    // Read back through the audit route itself, newest first, page by page.
    const records = await everyAuditRecord(t);
    const missing = auditMismatches(records, audited, actors);
    expect(missing).toEqual([]);
    expect(audited.length).toBeGreaterThan(20 * 9);

    // No record holds a token, an agent token or a pairing key.
    const text = JSON.stringify(records);
    expect(secrets.filter((secret) => text.includes(secret))).toEqual([]);
  });
});

type AuditedCall = { requestId: string; route: string; action: string; who: Identity; status: number };

/** Each audited call's record against what it should say: its action, outcome, status and actor. */
function auditMismatches(records: any[], audited: AuditedCall[], actors: Record<Identity, ExpectedActor>): string[] {
  const byRequest = new Map(records.map((r) => [r.requestId, r]));
  const missing: string[] = [];
  for (const call of audited) {
    const record = byRequest.get(call.requestId);
    const where = `${call.route} as ${call.who} (${call.status})`;
    if (!record) {
      missing.push(`${where}: no audit record`);
      continue;
    }
    // A public route (pairing) takes no token: its caller is anonymous whatever it sends.
    const actor = call.route === 'POST /api/v1/agent/pair' ? { kind: 'anonymous' as const } : actors[call.who];
    const outcome = call.status >= 500 ? 'failed' : call.status >= 400 ? 'refused' : 'ok';
    const got = {
      action: record.action,
      outcome: record.outcome,
      status: record.status,
      actor: pick(record.actor, actor),
    };
    const want = { action: call.action, outcome, status: outcome === 'ok' ? null : call.status, actor };
    if (JSON.stringify(got) !== JSON.stringify(want))
      missing.push(`${where}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
  }
  return missing;
}

/** The record's actor, only the fields the expectation names (kind, and tokenId or agentId). */
function pick(actor: Record<string, unknown>, like: ExpectedActor): Record<string, unknown> {
  return Object.fromEntries(Object.keys(like).map((key) => [key, actor[key]]));
}

/** Every audit record, through GET /api/v1/audit, following nextBeforeId. */
async function everyAuditRecord(t: TestApp): Promise<any[]> {
  const records: any[] = [];
  let beforeId: number | null | undefined;
  do {
    const page = await t.admin
      .get('/api/v1/audit')
      .query({ limit: 500, ...(beforeId ? { beforeId } : {}) })
      .expect(200);
    records.push(...page.body.items);
    beforeId = page.body.nextBeforeId;
  } while (beforeId);
  return records;
}

/** One call; a stream that opens is closed as soon as its status is known. */
async function call(
  url: string,
  method: string,
  authorization: string | undefined,
  requestId: string,
): Promise<number> {
  const controller = new AbortController();
  const hasBody = ['post', 'put', 'patch'].includes(method);
  const res = await fetch(url, {
    method: method.toUpperCase(),
    headers: {
      'X-Request-Id': requestId,
      ...(authorization ? { Authorization: authorization } : {}),
      ...(hasBody ? { 'Content-Type': 'application/json' } : {}),
    },
    body: hasBody ? '{}' : undefined,
    signal: controller.signal,
  });
  controller.abort();
  return res.status;
}
