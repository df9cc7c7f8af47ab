import { ProgressEvent } from '../src/progress/progress-event.entity';
import { packageArchive } from './support/archives';
import { givenAgent, givenCluster, givenPackage, givenPairedAgent } from './support/builders';
import { describeEachDatabase, TestApp } from './support/test-app';

type Labels = Record<string, string>;

describeEachDatabase('agent labels', (kind) => {
  let t: TestApp;
  let operator: string;
  beforeAll(async () => {
    t = await TestApp.start(kind);
    operator = await t.tokenFor('operator');
  });
  afterAll(() => t.close());

  const asOperator = () => t.as(operator);
  const agentOf = async (id: string) => (await t.admin.get(`/api/v1/agents/${id}`).expect(200)).body;
  const register = (clusterId: string, body: Record<string, unknown>) =>
    asOperator()
      .post(`/api/v1/clusters/${clusterId}/agents`)
      .send({ role: 'standalone', ...body });
  const list = (clusterId: string, query: string) => t.admin.get(`/api/v1/clusters/${clusterId}/agents?${query}`);
  const names = (body: { items: Array<{ name: string }> }) => body.items.map((a) => a.name).sort();

  describe('set and changed', () => {
    it('are set at registration, shown on the agent and in its list, and are {} when none were given', async () => {
      const cluster = await givenCluster(t);
      const labelled = await register(cluster.id, {
        name: 'db1',
        address: 'db1.lan',
        labels: { site: 'eu-1', tier: 'db', 'acme.com/rack': 'R_12.b' },
      }).expect(201);
      expect(labelled.body.labels).toEqual({ site: 'eu-1', tier: 'db', 'acme.com/rack': 'R_12.b' });
      const plain = await register(cluster.id, { name: 'web1', address: 'web1.lan' }).expect(201);
      expect(plain.body.labels).toEqual({});

      expect((await agentOf(labelled.body.id)).labels).toEqual({ site: 'eu-1', tier: 'db', 'acme.com/rack': 'R_12.b' });
      const all = (await list(cluster.id, '').expect(200)).body;
      expect(Object.fromEntries(all.items.map((a: { name: string; labels: Labels }) => [a.name, a.labels]))).toEqual({
        db1: { site: 'eu-1', tier: 'db', 'acme.com/rack': 'R_12.b' },
        web1: {},
      });
    });

    it('PATCH replaces the whole map, {} removes them all, leaving labels out keeps them; each change is an agent.status event', async () => {
      const cluster = await givenCluster(t);
      const agent = await givenAgent(t, cluster.id, { labels: { site: 'eu-1', tier: 'db' } });
      const events = async () =>
        (await t.db.reader.findBy(ProgressEvent, { type: 'agent.status', agentId: agent.id }))
          .sort((a, b) => Number(a.id) - Number(b.id))
          .map((e) => (e.data as { labels: Labels }).labels);
      expect(await events()).toEqual([{ site: 'eu-1', tier: 'db' }]); // the registration's

      const replaced = await asOperator()
        .patch(`/api/v1/agents/${agent.id}`)
        .send({ labels: { site: 'us-2', rack: '7' } })
        .expect(200);
      expect(replaced.body.labels).toEqual({ site: 'us-2', rack: '7' }); // tier is gone: the map is replaced
      expect((await agentOf(agent.id)).labels).toEqual({ site: 'us-2', rack: '7' });

      // Another field only: the labels stay.
      await asOperator().patch(`/api/v1/agents/${agent.id}`).send({ name: 'renamed' }).expect(200);
      expect((await agentOf(agent.id)).labels).toEqual({ site: 'us-2', rack: '7' });

      // The same labels again (in another order): nothing changes, so no event.
      await asOperator()
        .patch(`/api/v1/agents/${agent.id}`)
        .send({ labels: { rack: '7', site: 'us-2' } })
        .expect(200);

      const cleared = await asOperator().patch(`/api/v1/agents/${agent.id}`).send({ labels: {} }).expect(200);
      expect(cleared.body.labels).toEqual({});
      expect((await agentOf(agent.id)).labels).toEqual({});

      expect(await events()).toEqual([{ site: 'eu-1', tier: 'db' }, { site: 'us-2', rack: '7' }, {}]);
    });

    it.each<[string, unknown, string, RegExp]>([
      ['an upper-case key', { Site: 'eu-1' }, 'labels', /labels has keys that are not label keys: "Site"/],
      ['a key ending in "-"', { 'site-': 'eu-1' }, 'labels', /"site-"/],
      ['a key of 64 characters', { ['k'.repeat(64)]: 'x' }, 'labels', /not label keys/],
      ['a value with a space', { site: 'eu 1' }, 'labels', /labels\.site must be 1-63 letters, digits/],
      ['an empty value', { site: '' }, 'labels', /labels\.site must be 1-63/],
      ['a value of 64 characters', { site: 'v'.repeat(64) }, 'labels', /labels\.site must be 1-63/],
      ['a number for a value', { site: 1 }, 'labels', /labels\.site must be a string/],
      ['null for a value', { site: null }, 'labels', /labels\.site must be a string/],
      [
        '33 labels',
        Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])),
        'labels',
        /at most 32 labels/,
      ],
      ['an array', ['site=eu-1'], 'labels', /labels must be an object/],
      ['a string', 'site=eu-1', 'labels', /labels must be an object/],
      ['null', null, 'labels', /labels must be an object/],
    ])('refuses %s with a 400 naming the field, and stores nothing', async (_case, labels, field, message) => {
      const cluster = await givenCluster(t);
      const refused = await register(cluster.id, { name: 'x', address: 'x.lan', labels }).expect(400);
      expect(refused.body.code).toBe('VALIDATION_FAILED');
      expect(refused.body.details).toEqual([{ field, problems: [expect.stringMatching(message)] }]);
      expect(refused.body.message).toMatch(message);
      expect((await list(cluster.id, '').expect(200)).body.total).toBe(0);

      const agent = await givenAgent(t, cluster.id, { labels: { site: 'eu-1' } });
      const patched = await asOperator()
        .patch(`/api/v1/agents/${agent.id}`)
        .send({ name: 'changed', labels })
        .expect(400);
      expect(patched.body.details).toEqual([{ field, problems: [expect.stringMatching(message)] }]);
      const after = await agentOf(agent.id);
      expect(after).toMatchObject({ name: agent.name, labels: { site: 'eu-1' } });
    });

    it('names every bad label of a map at once', async () => {
      const cluster = await givenCluster(t);
      const refused = await register(cluster.id, {
        name: 'x',
        address: 'x.lan',
        labels: { site: 'eu 1', Tier: 'db', rack: 'r/1', ok: 'fine' },
      }).expect(400);
      expect(refused.body.details).toHaveLength(1);
      const [problem] = refused.body.details[0].problems as string[];
      expect(problem).toContain('"Tier"');
      expect(problem).toContain('labels.site must be');
      expect(problem).toContain('labels.rack must be');
      expect(problem).not.toContain('labels.ok');
    });
  });

  describe('the list filter ?label=key=value', () => {
    let clusterId: string;
    beforeAll(async () => {
      clusterId = (await givenCluster(t)).id;
      await givenAgent(t, clusterId, { name: 'eu-db', labels: { site: 'eu-1', tier: 'db' } });
      await givenAgent(t, clusterId, { name: 'eu-web', labels: { site: 'eu-1', tier: 'web' } });
      await givenAgent(t, clusterId, { name: 'us-db', labels: { site: 'us-2', tier: 'db' } });
      await givenAgent(t, clusterId, { name: 'bare' });
      // Another cluster's agent with the same labels is never listed here.
      await givenAgent(t, (await givenCluster(t)).id, { name: 'elsewhere', labels: { site: 'eu-1', tier: 'db' } });
    });

    it('keeps the agents with that label', async () => {
      const res = await list(clusterId, 'label=site=eu-1').expect(200);
      expect(names(res.body)).toEqual(['eu-db', 'eu-web']);
      expect(res.body.total).toBe(2);
    });

    it('keeps, when repeated, the agents with every one of them', async () => {
      const res = await list(clusterId, 'label=site=eu-1&label=tier=db').expect(200);
      expect(names(res.body)).toEqual(['eu-db']);
      expect(res.body.total).toBe(1);
      // The same label twice is the same filter.
      expect(names((await list(clusterId, 'label=tier=db&label=tier=db').expect(200)).body)).toEqual([
        'eu-db',
        'us-db',
      ]);
    });

    it('is an empty page when no agent matches', async () => {
      for (const query of ['label=site=eu-9', 'label=site=us-2&label=tier=web', 'label=zone=eu-1']) {
        const res = await list(clusterId, query).expect(200);
        expect(res.body).toMatchObject({ items: [], total: 0 });
      }
    });

    it('counts the total of all matching agents, not of the page, and combines with the other filters', async () => {
      const page = await list(clusterId, 'label=tier=db&limit=1').expect(200);
      expect(page.body.items).toHaveLength(1);
      expect(page.body.total).toBe(2);
      const next = await list(clusterId, 'label=tier=db&limit=1&offset=1').expect(200);
      expect([...names(page.body), ...names(next.body)].sort()).toEqual(['eu-db', 'us-db']);
      expect((await list(clusterId, 'label=tier=db&role=main').expect(200)).body.total).toBe(0);
      expect(names((await list(clusterId, 'label=tier=db&role=standalone').expect(200)).body)).toEqual([
        'eu-db',
        'us-db',
      ]);
    });

    it('matches values exactly: a value is not a prefix, and case counts', async () => {
      expect((await list(clusterId, 'label=site=eu').expect(200)).body.total).toBe(0);
      expect((await list(clusterId, 'label=site=EU-1').expect(200)).body.total).toBe(0);
    });

    it.each([
      ['no "="', 'label=site', /label must be key=value/],
      ['an empty value', 'label=site=', /label must be key=value/],
      ['a bad key', 'label=Site=eu-1', /label must be key=value/],
      ['a bad value', `label=site=${encodeURIComponent('eu 1')}`, /label must be key=value/],
      ['one key with two values', 'label=site=eu-1&label=site=us-2', /site to be both eu-1 and us-2/],
      ['33 selectors', Array.from({ length: 33 }, (_, i) => `label=k${i}=v`).join('&'), /at most 32 label/],
    ])('refuses %s with a 400 naming label', async (_case, query, message) => {
      const res = await list(clusterId, query).expect(400);
      expect(res.body.details).toEqual([{ field: 'label', problems: [expect.stringMatching(message)] }]);
    });
  });

  describe('upgrade targets by labels', () => {
    let cluster: { id: string };
    let ids: Record<string, string>;
    let packageId: string;
    beforeAll(async () => {
      cluster = await givenCluster(t);
      ids = {};
      const agents: Array<[string, Labels]> = [
        ['eu-db', { site: 'eu-1', tier: 'db' }],
        ['eu-web', { site: 'eu-1', tier: 'web' }],
        ['us-db', { site: 'us-2', tier: 'db' }],
        ['bare', {}],
      ];
      for (const [name, labels] of agents) {
        const { registered } = await givenPairedAgent(t, cluster.id, { name, labels }, { version: '1.0.0' });
        ids[name] = registered.id;
      }
      packageId = await givenPackage(t, cluster.id, {}, operator);
    });

    const nameOf = (id: string) => Object.entries(ids).find(([, v]) => v === id)![0];
    const upgraded = (steps: Array<{ kind: string; agentId: string }>) =>
      steps
        .filter((s) => s.kind === 'upgrade')
        .map((s) => nameOf(s.agentId))
        .sort();
    const preview = (target: unknown) =>
      asOperator().post(`/api/v1/clusters/${cluster.id}/upgrades/preview`).send({ packageId, target });
    const create = (target: unknown) =>
      asOperator().post(`/api/v1/clusters/${cluster.id}/upgrades`).send({ packageId, target });

    it('previews exactly the agents carrying every label asked for', async () => {
      expect(upgraded((await preview({ labels: { site: 'eu-1' } }).expect(200)).body.steps)).toEqual([
        'eu-db',
        'eu-web',
      ]);
      expect(upgraded((await preview({ labels: { tier: 'db' } }).expect(200)).body.steps)).toEqual(['eu-db', 'us-db']);
      expect(upgraded((await preview({ labels: { site: 'eu-1', tier: 'db' } }).expect(200)).body.steps)).toEqual([
        'eu-db',
      ]);
    });

    it('adds the agents named by id or address to those labels take (a union, each once)', async () => {
      const res = await preview({ labels: { site: 'us-2' }, agentIds: [ids.bare, ids['us-db']] }).expect(200);
      expect(upgraded(res.body.steps)).toEqual(['bare', 'us-db']);
      const byAddress = await preview({ labels: { tier: 'web' }, addresses: ['bare.lan'] }).expect(200);
      expect(upgraded(byAddress.body.steps)).toEqual(['bare', 'eu-web']);
    });

    it('refuses labels no agent carries, all together, with a 422 naming them', async () => {
      for (const [labels, named] of [
        [{ site: 'eu-9' }, 'site=eu-9'],
        [{ site: 'us-2', tier: 'web' }, 'site=us-2, tier=web'],
      ] as Array<[Labels, string]>) {
        for (const res of [await preview({ labels }).expect(422), await create({ labels }).expect(422)]) {
          expect(res.body).toMatchObject({
            code: 'NO_AGENT_MATCHES_LABELS',
            message: expect.stringContaining(`No agent of this cluster has labels ${named}`),
            details: { labels },
          });
        }
      }
      // Even beside agents named by id: a selector that matches nothing is a mistake.
      const mixed = await create({ labels: { site: 'eu-9' }, agentIds: [ids.bare] }).expect(422);
      expect(mixed.body.code).toBe('NO_AGENT_MATCHES_LABELS');
      expect((await t.admin.get(`/api/v1/clusters/${cluster.id}/upgrades`).expect(200)).body.total).toBe(0);
    });

    it('refuses all with labels, an empty selector and bad labels with a 400', async () => {
      const withAll = await create({ all: true, labels: { site: 'eu-1' } }).expect(400);
      expect(withAll.body.message).toMatch(/either \{"all": true\} or agentIds, addresses and\/or labels/);
      expect(withAll.body.details).toEqual([{ field: 'target', problems: [expect.stringContaining('not both')] }]);
      const empty = await preview({ labels: {} }).expect(400);
      expect(empty.body.details).toEqual([
        { field: 'target.labels', problems: [expect.stringMatching(/at least one/)] },
      ]);
      const bad = await create({ labels: { site: 'eu 1' } }).expect(400);
      expect(bad.body.details).toEqual([
        { field: 'target.labels', problems: [expect.stringMatching(/^target\.labels\.site must be 1-63/)] },
      ]);
      expect(bad.body.message).not.toContain('target.target');
    });

    it('creates an upgrade of exactly the matching agents, its target stored with the labels', async () => {
      const created = await create({ labels: { tier: 'db' } }).expect(201);
      expect(upgraded(created.body.steps)).toEqual(['eu-db', 'us-db']);
      expect(created.body.target).toEqual({ labels: { tier: 'db' } });
      const read = await t.admin.get(`/api/v1/upgrades/${created.body.id}`).expect(200);
      expect(read.body.target).toEqual({ labels: { tier: 'db' } });
      // The agents it holds are those, and no others.
      for (const [name, id] of Object.entries(ids)) {
        expect((await agentOf(id)).upgradeId).toBe(name === 'eu-db' || name === 'us-db' ? created.body.id : null);
      }
      // A target by labels does not make the package the cluster's target version (only {"all": true} does).
      expect((await t.admin.get(`/api/v1/clusters/${cluster.id}`).expect(200)).body.targetVersion).toBeNull();
      await asOperator().post(`/api/v1/upgrades/${created.body.id}/cancel`).expect(200);
    });

    it('targets by labels in an upload with mode=install, and refuses there too when nothing matches', async () => {
      const refused = await asOperator()
        .post(`/api/v1/clusters/${cluster.id}/packages`)
        .field('mode', 'install')
        .field('target', JSON.stringify({ labels: { site: 'nowhere' } }))
        .attach('file', packageArchive({ version: '1.2.0' }), 'p.tar.gz')
        .expect(422);
      expect(refused.body).toMatchObject({ code: 'NO_AGENT_MATCHES_LABELS', details: { labels: { site: 'nowhere' } } });
      const badField = await asOperator()
        .post(`/api/v1/clusters/${cluster.id}/packages`)
        .field('mode', 'install')
        .field('target', JSON.stringify({ labels: { Site: 'eu-1' } }))
        .attach('file', packageArchive({ version: '1.2.0' }), 'p.tar.gz')
        .expect(400);
      expect(badField.body.details).toEqual([
        {
          field: 'target.labels',
          problems: [expect.stringMatching(/^target\.labels has keys that are not label keys/)],
        },
      ]);

      const installed = await asOperator()
        .post(`/api/v1/clusters/${cluster.id}/packages`)
        .field('mode', 'install')
        .field('target', JSON.stringify({ labels: { site: 'eu-1', tier: 'web' } }))
        .attach('file', packageArchive({ version: '1.2.0' }), 'p.tar.gz')
        .expect(201);
      expect(upgraded(installed.body.upgrade.steps)).toEqual(['eu-web']);
      expect(installed.body.upgrade.target).toEqual({ labels: { site: 'eu-1', tier: 'web' } });
      await asOperator().post(`/api/v1/upgrades/${installed.body.upgrade.id}/cancel`).expect(200);
    });
  });
});
