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
  let document: { paths: Record<string, Record<string, { 'x-access'?: Rule; operationId?: string }>> };

  beforeAll(async () => {
    t = await TestApp.start(kind);
    const cluster = await givenCluster(t);
    const { agent } = await givenPairedAgent(t, cluster.id, { name: 'matrix-agent' });
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

  it('every route x every caller gets what its rule says, and never a 5xx', async () => {
    const mismatches: string[] = [];
    let checked = 0;
    for (const [template, methods] of Object.entries(document.paths)) {
      const path = template.replace(/\{[^}]+\}/g, () => randomUUID());
      for (const [method, op] of Object.entries(methods)) {
        const rule = op['x-access']!;
        for (const who of Object.keys(tokens) as Identity[]) {
          const status = await call(t.baseUrl + path, method, tokens[who]);
          const want = expected(rule, who);
          const got: Verdict | number = status === 401 || status === 403 ? status : status >= 500 ? status : 'in';
          if (got !== want)
            mismatches.push(`${method.toUpperCase()} ${template} as ${who}: expected ${want}, got ${status}`);
          checked++;
        }
      }
    }
    expect(mismatches).toEqual([]);
    expect(checked).toBeGreaterThan(40 * 9);
  });
});

/** One call; a stream that opens is closed as soon as its status is known. */
async function call(url: string, method: string, authorization: string | undefined): Promise<number> {
  const controller = new AbortController();
  const hasBody = ['post', 'put', 'patch'].includes(method);
  const res = await fetch(url, {
    method: method.toUpperCase(),
    headers: {
      ...(authorization ? { Authorization: authorization } : {}),
      ...(hasBody ? { 'Content-Type': 'application/json' } : {}),
    },
    body: hasBody ? '{}' : undefined,
    signal: controller.signal,
  });
  controller.abort();
  return res.status;
}
