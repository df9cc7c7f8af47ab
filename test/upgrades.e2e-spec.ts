import { AgentCommand } from '../src/cluster/agent-command.entity';
import { ManualClock } from '../src/common/clock';
import { ProgressEvent } from '../src/progress/progress-event.entity';
import { AutoUpgrader } from '../src/upgrades/auto-upgrader';
import { UpgradeStep } from '../src/upgrades/upgrade-step.entity';
import { packageArchive } from './support/archives';
import { givenCluster, givenNamedAgents, givenPackage, givenPairedAgent } from './support/builders';
import { Fleet, obedient } from './support/fleet';
import { StreamClient } from './support/sse-client';
import { describeEachDatabase, TestApp } from './support/test-app';

describeEachDatabase('upgrades', (kind) => {
  let t: TestApp;
  let operator: string;
  const clock = new ManualClock(new Date('2026-06-01T00:00:00.000Z'));
  beforeAll(async () => {
    t = await TestApp.start(kind, { clock });
    operator = await t.tokenFor('operator');
  });
  afterAll(() => t.close());

  const asOperator = () => t.as(operator);

  const uploadPackage = (clusterId: string, fields: Record<string, unknown> = {}) =>
    givenPackage(t, clusterId, fields, operator);

  /** A cluster with the named agents (a name "g1-main" makes a main of pair g1), all on 1.0.0, and a 1.1.0 package. */
  async function setUp(names: string[], state: Record<string, Partial<{ busy: boolean; version: string }>> = {}) {
    const cluster = await givenCluster(t);
    const { members, ids } = await givenNamedAgents(t, cluster.id, names, state);
    const packageId = await uploadPackage(cluster.id);
    return { cluster, members, ids, packageId, fleet: new Fleet(t, members) };
  }

  /** Rounds with their commands in a stable order: commands issued in one pass have no order between them. */
  const sorted = (rounds: string[][]) => rounds.map((r) => [...r].sort());
  const createUpgrade = (clusterId: string, body: Record<string, unknown>) =>
    asOperator().post(`/api/v1/clusters/${clusterId}/upgrades`).send(body);
  const agentOf = async (id: string) => (await t.admin.get(`/api/v1/agents/${id}`)).body;

  describe('failover policies', () => {
    it('backup-first: the main is stopped only after its backup succeeded and took over', async () => {
      const { cluster, ids, packageId, fleet } = await setUp(['g1-main', 'g1-backup']);
      const created = await createUpgrade(cluster.id, {
        packageId,
        target: { all: true },
        policy: 'backup-first',
      }).expect(201);
      expect(created.body).toMatchObject({ status: 'running', resolvedPolicy: 'backup-first', policy: 'backup-first' });
      expect(created.body.steps.map((s: { kind: string }) => s.kind)).toEqual([
        'upgrade',
        'switchover',
        'upgrade',
        'switchback',
      ]);

      const done = await fleet.until(created.body.id, ['succeeded']);
      // The main is told it is standby once the backup took over, and only then upgraded.
      expect(sorted(fleet.rounds)).toEqual([
        ['g1-backup upgrade'],
        ['g1-backup takes over'],
        ['g1-main hands over', 'g1-main upgrade'],
      ]);
      expect(done.steps.map((s: { status: string }) => s.status)).toEqual([
        'succeeded',
        'succeeded',
        'succeeded',
        'skipped',
      ]);
      expect(done.percent).toBe(100);
      expect(await agentOf(ids['g1-backup'])).toMatchObject({
        active: true,
        version: '1.1.0',
        versionStatus: 'latest',
        upgradeId: null,
        hold: false,
      });
      expect(await agentOf(ids['g1-main'])).toMatchObject({ active: false, version: '1.1.0' });
      const cl = (await t.admin.get(`/api/v1/clusters/${cluster.id}`)).body;
      expect(cl).toMatchObject({ targetVersion: '1.1.0', consistent: true });
      const switchovers = await t.db.reader.findBy(ProgressEvent, {
        upgradeId: created.body.id,
        type: 'pair.switchover',
      });
      expect(switchovers.map((e) => e.data)).toEqual([
        expect.objectContaining({
          failoverGroup: 'g1',
          activeAgentId: ids['g1-backup'],
          standbyAgentId: ids['g1-main'],
        }),
      ]);
    });

    it('backup-first: when the backup fails, its main is never touched and stays active', async () => {
      const { cluster, ids, packageId, fleet } = await setUp(['g1-main', 'g1-backup']);
      fleet.behaviour = (name, command) =>
        name === 'g1-backup' ? { status: 'rolled-back', error: 'migration failed' } : obedient(name, command);
      const created = await createUpgrade(cluster.id, {
        packageId,
        target: { all: true },
        policy: 'backup-first',
      }).expect(201);
      const done = await fleet.until(created.body.id, ['failed']);
      expect(fleet.log).toEqual(['g1-backup upgrade']);
      expect(done.steps.map((s: { status: string }) => s.status)).toEqual([
        'rolled-back',
        'cancelled',
        'cancelled',
        'skipped',
      ]);
      expect(done.steps[0].error).toMatch(/rolled back, data intact: migration failed/);
      expect(done.steps[2].error).toMatch(/blocked/);
      expect(await agentOf(ids['g1-main'])).toMatchObject({ active: true, version: '1.0.0', upgradeId: null });
      expect(await agentOf(ids['g1-backup'])).toMatchObject({ active: false, versionStatus: 'failed' });
      expect((await t.admin.get(`/api/v1/clusters/${cluster.id}`)).body.targetVersion).toBeNull();
    });

    it('backup-first-switchback: the main takes back over once upgraded', async () => {
      const { cluster, ids, packageId, fleet } = await setUp(['g1-main', 'g1-backup']);
      const created = await createUpgrade(cluster.id, {
        packageId,
        target: { all: true },
        policy: 'backup-first-switchback',
      }).expect(201);
      await fleet.until(created.body.id, ['succeeded']);
      await fleet.round(); // the backup is told it is standby again
      expect(sorted(fleet.rounds)).toEqual([
        ['g1-backup upgrade'],
        ['g1-backup takes over'],
        ['g1-main hands over', 'g1-main upgrade'],
        ['g1-main takes over'],
        ['g1-backup hands over'],
      ]);
      expect(await agentOf(ids['g1-main'])).toMatchObject({ active: true, version: '1.1.0' });
      expect(await agentOf(ids['g1-backup'])).toMatchObject({ active: false, version: '1.1.0' });
    });

    it('switchBackOnFailure: a main that fails after the switchover takes back over on its old version', async () => {
      const { cluster, ids, packageId, fleet } = await setUp(['g1-main', 'g1-backup']);
      fleet.behaviour = (name, command) =>
        name === 'g1-main' && command.type === 'upgrade' ? { status: 'rolled-back' } : obedient(name, command);
      const created = await createUpgrade(cluster.id, {
        packageId,
        target: { all: true },
        policy: 'backup-first',
        options: { switchBackOnFailure: true },
      }).expect(201);
      const done = await fleet.until(created.body.id, ['completed-with-errors']);
      await fleet.round();
      expect(sorted(fleet.rounds)).toEqual([
        ['g1-backup upgrade'],
        ['g1-backup takes over'],
        ['g1-main hands over', 'g1-main upgrade'],
        ['g1-main takes over'],
        ['g1-backup hands over'],
      ]);
      expect(done.steps.map((s: { status: string }) => s.status)).toEqual([
        'succeeded',
        'succeeded',
        'rolled-back',
        'succeeded',
      ]);
      expect(await agentOf(ids['g1-main'])).toMatchObject({ active: true, version: '1.0.0' });
    });

    it('simultaneous: both members of a pair upgrade together', async () => {
      const { cluster, packageId, fleet } = await setUp(['g1-main', 'g1-backup']);
      const created = await createUpgrade(cluster.id, {
        packageId,
        target: { all: true },
        policy: 'simultaneous',
      }).expect(201);
      await fleet.until(created.body.id, ['succeeded']);
      expect(fleet.rounds.map((r) => [...r].sort())).toEqual([['g1-backup upgrade', 'g1-main upgrade']]);
    });
  });

  describe('batches and failures', () => {
    it('the failure threshold stops new units while running ones finish; retry runs them again', async () => {
      const { cluster, ids, packageId, fleet } = await setUp(['a', 'b', 'c', 'd']);
      let failing = true;
      fleet.behaviour = (name, command) =>
        failing && name !== 'b' ? { status: 'failed', error: 'disk full' } : obedient(name, command);
      const created = await createUpgrade(cluster.id, {
        packageId,
        target: { all: true },
        options: { maxParallel: 2, failureThreshold: 1 },
      }).expect(201);
      const failed = await fleet.until(created.body.id, ['failed']);
      // a and b ran together; a failed, so c and d never started.
      expect(fleet.rounds.map((r) => [...r].sort())).toEqual([['a upgrade', 'b upgrade']]);
      expect(failed.steps.map((s: { status: string }) => s.status)).toEqual([
        'failed',
        'succeeded',
        'cancelled',
        'cancelled',
      ]);
      expect(failed.steps[2].error).toMatch(/failure threshold/);
      expect(failed.reason).toMatch(/failure threshold/);

      failing = false;
      const retried = await asOperator().post(`/api/v1/upgrades/${created.body.id}/retry`).expect(200);
      expect(retried.body.status).toBe('running');
      const done = await fleet.until(created.body.id, ['succeeded']);
      // a ran twice; the others once (the retried units' new steps follow b's, in plan order).
      expect(
        Object.fromEntries(done.steps.map((s: { agentId: string; attempts: number }) => [s.agentId, s.attempts])),
      ).toEqual({ [ids.a]: 2, [ids.b]: 1, [ids.c]: 1, [ids.d]: 1 });
      await asOperator().post(`/api/v1/upgrades/${created.body.id}/retry`).expect(409);
    });

    it("lists the upgrades that touched an agent, newest first (how a failed agent's Retry finds its upgrade)", async () => {
      const { cluster, ids, packageId, fleet } = await setUp(['g1-main', 'g1-backup', 'solo']);
      const first = await createUpgrade(cluster.id, {
        packageId,
        target: { agentIds: [ids['g1-main']] },
        policy: 'backup-first',
      }).expect(201);
      await fleet.until(first.body.id, ['succeeded']);
      clock.advance(1000); // newest first needs the two to be created at different times
      const next = await uploadPackage(cluster.id, { version: '1.2.0', prerequisites: {} });
      const second = await createUpgrade(cluster.id, { packageId: next, target: { agentIds: [ids.solo] } }).expect(201);
      await fleet.until(second.body.id, ['succeeded']);

      const ofAgent = async (agentId: string) =>
        (await t.admin.get(`/api/v1/clusters/${cluster.id}/upgrades`).query({ agentId }).expect(200)).body.items.map(
          (u: { id: string }) => u.id,
        );
      expect(await ofAgent(ids.solo)).toEqual([second.body.id]);
      expect(await ofAgent(ids['g1-main'])).toEqual([first.body.id]);
      // Its backup was not upgraded, but took over while the main upgraded: that upgrade touched it too.
      expect(await ofAgent(ids['g1-backup'])).toEqual([first.body.id]);
      const all = (await t.admin.get(`/api/v1/clusters/${cluster.id}/upgrades`).expect(200)).body;
      expect(all.items.map((u: { id: string }) => u.id)).toEqual([second.body.id, first.body.id]);
      const bad = await t.admin
        .get(`/api/v1/clusters/${cluster.id}/upgrades`)
        .query({ agentId: 'g1-main' })
        .expect(400);
      expect(bad.body.details).toEqual([{ field: 'agentId', problems: ['agentId must be the UUID of an agent'] }]);
    });

    it('pause, resume and cancel', async () => {
      const { cluster, ids, packageId, fleet } = await setUp(['a', 'b', 'c']);
      fleet.behaviour = () => 'later';
      const created = await createUpgrade(cluster.id, {
        packageId,
        target: { all: true },
        options: { maxParallel: 1 },
      }).expect(201);
      const id = created.body.id;
      expect(await fleet.round()).toEqual(['a upgrade']);

      const paused = await asOperator().post(`/api/v1/upgrades/${id}/pause`).expect(200);
      expect(paused.body).toMatchObject({ status: 'paused', reason: 'paused by operator-token' });
      await asOperator().post(`/api/v1/upgrades/${id}/pause`).expect(409);
      await fleet.answerLater();
      expect(await fleet.round()).toEqual([]); // a finished; b does not start while paused
      expect((await t.admin.get(`/api/v1/upgrades/${id}`)).body.steps[0].status).toBe('succeeded');

      await asOperator().post(`/api/v1/upgrades/${id}/resume`).expect(200);
      await asOperator().post(`/api/v1/upgrades/${id}/resume`).expect(409);
      expect(await fleet.round()).toEqual(['b upgrade']);

      const cancelled = await asOperator().post(`/api/v1/upgrades/${id}/cancel`).expect(200);
      expect(cancelled.body).toMatchObject({ status: 'cancelled', finishedAt: null });
      expect(cancelled.body.steps.map((s: { status: string }) => s.status)).toEqual([
        'succeeded',
        'running',
        'cancelled',
      ]);
      expect(await agentOf(ids.c)).toMatchObject({ upgradeId: null });
      await fleet.answerLater(); // b is not interrupted: its outcome is recorded
      await fleet.pass();
      const ended = (await t.admin.get(`/api/v1/upgrades/${id}`)).body;
      expect(ended.status).toBe('cancelled');
      expect(ended.finishedAt).not.toBeNull();
      expect(ended.steps.map((s: { status: string }) => s.status)).toEqual(['succeeded', 'succeeded', 'cancelled']);
      expect(fleet.log).toEqual(['a upgrade', 'b upgrade']);
      await asOperator().post(`/api/v1/upgrades/${id}/cancel`).expect(409);
      expect(await agentOf(ids.b)).toMatchObject({ upgradeId: null, hold: false });
    });

    it('canary units run first, then the upgrade pauses for a resume', async () => {
      const { cluster, packageId, fleet } = await setUp(['a', 'b', 'c']);
      const created = await createUpgrade(cluster.id, {
        packageId,
        target: { all: true },
        options: { canary: 1 },
      }).expect(201);
      const paused = await fleet.until(created.body.id, ['paused']);
      expect(paused.reason).toMatch(/canary/);
      expect(fleet.log).toEqual(['a upgrade']);
      await asOperator().post(`/api/v1/upgrades/${created.body.id}/resume`).expect(200);
      await fleet.until(created.body.id, ['succeeded']);
      expect(fleet.rounds.slice(1).map((r) => [...r].sort())).toEqual([['b upgrade', 'c upgrade']]);
    });
  });

  describe('waiting', () => {
    it('a busy agent is told to hold and is upgraded once idle', async () => {
      const { cluster, members, ids, packageId, fleet } = await setUp(['a'], { a: { busy: true } });
      const created = await createUpgrade(cluster.id, { packageId, target: { all: true } }).expect(201);
      expect(created.body.warnings.map((w: { code: string }) => w.code)).toContain('AGENTS_BUSY');
      await fleet.pass();
      const held = await members[0].agent.heartbeat();
      expect(held.body).toMatchObject({ commands: [], hold: true });
      expect((await t.admin.get(`/api/v1/upgrades/${created.body.id}`)).body.steps[0]).toMatchObject({
        status: 'waiting',
        waitingFor: 'idle',
      });

      members[0].agent.state.busy = false;
      await fleet.until(created.body.id, ['succeeded']);
      expect(fleet.log).toEqual(['a upgrade']);
      expect(await agentOf(ids.a)).toMatchObject({ hold: false, version: '1.1.0' });
    });

    it('a scheduled upgrade holds its package and starts on time', async () => {
      const { cluster, packageId, fleet } = await setUp(['a']);
      const at = new Date(clock.now().getTime() + 3600_000).toISOString();
      const created = await createUpgrade(cluster.id, { packageId, target: { all: true }, scheduledAt: at }).expect(
        201,
      );
      expect(created.body).toMatchObject({ status: 'scheduled', scheduledAt: at, startedAt: null });
      expect((await t.admin.get(`/api/v1/packages/${packageId}`)).body.status).toBe('reserved');
      expect(await fleet.round()).toEqual([]);
      expect((await t.admin.get(`/api/v1/upgrades/${created.body.id}`)).body.status).toBe('scheduled');

      clock.advance(3600_000);
      await fleet.until(created.body.id, ['succeeded']);
      expect(fleet.log).toEqual(['a upgrade']);
      const pkg = (await t.admin.get(`/api/v1/packages/${packageId}`)).body;
      expect(pkg).toMatchObject({ status: 'completed', usedByUpgradeId: created.body.id });
    });

    it('cancelling a scheduled upgrade gives its package back', async () => {
      const { cluster, ids, packageId } = await setUp(['a']);
      const created = await createUpgrade(cluster.id, {
        packageId,
        target: { agentIds: [ids.a] },
        scheduledAt: new Date(clock.now().getTime() + 60_000).toISOString(),
      }).expect(201);
      expect(await agentOf(ids.a)).toMatchObject({ upgradeId: created.body.id, hold: false });
      await asOperator().post(`/api/v1/upgrades/${created.body.id}/cancel`).expect(200);
      expect((await t.admin.get(`/api/v1/packages/${packageId}`)).body.status).toBe('available');
      expect(await agentOf(ids.a)).toMatchObject({ upgradeId: null });
    });
  });

  describe('refusals', () => {
    it('a second upgrade for a busy agent, or with a used package, gets 409', async () => {
      const { cluster, ids, packageId, fleet } = await setUp(['a', 'b']);
      fleet.behaviour = () => 'later';
      const first = await createUpgrade(cluster.id, { packageId, target: { addresses: ['a.lan'] } }).expect(201);
      const other = await uploadPackage(cluster.id, { notes: 'another build' });
      const busy = await createUpgrade(cluster.id, { packageId: other, target: { agentIds: [ids.a, ids.b] } }).expect(
        409,
      );
      expect(busy.body).toMatchObject({ code: 'AGENT_IN_UPGRADE' });
      expect(busy.body.message).toContain(first.body.id);
      const used = await createUpgrade(cluster.id, { packageId, target: { agentIds: [ids.b] } }).expect(409);
      expect(used.body).toMatchObject({ code: 'PACKAGE_USED' });
      expect((await t.admin.get(`/api/v1/clusters/${cluster.id}/upgrades`)).body.total).toBe(1);
      expect((await t.admin.get(`/api/v1/packages/${other}`)).body.status).toBe('available');
    });

    it('exactly one of two upgrades racing for one package is created', async () => {
      const { cluster, ids, packageId } = await setUp(['a', 'b']);
      const both = await Promise.all([
        createUpgrade(cluster.id, { packageId, target: { agentIds: [ids.a] } }),
        createUpgrade(cluster.id, { packageId, target: { agentIds: [ids.b] } }),
      ]);
      expect(both.map((r) => r.status).sort()).toEqual([201, 409]);
    });

    it('names each bad field, each unknown target, and refuses a legacy policy on a major upgrade', async () => {
      const { cluster, ids, packageId } = await setUp(['g1-main', 'g1-backup']);
      const bad = await createUpgrade(cluster.id, {
        packageId: 'x',
        target: { all: false },
        policy: 'fast',
        extra: 1,
      }).expect(400);
      expect(bad.body.details.map((d: { field: string }) => d.field).sort()).toEqual([
        'extra',
        'packageId',
        'policy',
        'target.all',
      ]);
      const empty = await createUpgrade(cluster.id, { packageId, target: {} }).expect(400);
      expect(empty.body.details).toEqual([
        { field: 'target', problems: [expect.stringMatching(/all.*agentIds, addresses or labels/)] },
      ]);
      const unknown = await createUpgrade(cluster.id, {
        packageId,
        target: { agentIds: [ids['g1-main'], '00000000-0000-4000-8000-000000000000'], addresses: ['nowhere.lan'] },
      }).expect(422);
      expect(unknown.body).toMatchObject({
        code: 'UNKNOWN_TARGETS',
        details: { agentIds: ['00000000-0000-4000-8000-000000000000'], addresses: ['nowhere.lan'] },
      });

      const major = await uploadPackage(cluster.id, { version: '2.0.0', prerequisites: {} });
      const refused = await createUpgrade(cluster.id, {
        packageId: major,
        target: { all: true },
        policy: 'backup-first',
      }).expect(422);
      expect(refused.body).toMatchObject({
        code: 'UPGRADE_REFUSED',
        details: { refusals: [expect.objectContaining({ code: 'LEGACY_POLICY_ON_MAJOR' })] },
      });
      const preview = await asOperator()
        .post(`/api/v1/clusters/${cluster.id}/upgrades/preview`)
        .send({ packageId: major, target: { all: true }, policy: 'backup-first' })
        .expect(200);
      expect(preview.body.refusals.map((r: { code: string }) => r.code)).toEqual(['LEGACY_POLICY_ON_MAJOR']);
      expect(preview.body.steps.map((s: { kind: string }) => s.kind)).toEqual([
        'upgrade',
        'switchover',
        'upgrade',
        'switchback',
      ]);
      await createUpgrade(cluster.id, {
        packageId: major,
        target: { all: true },
        policy: 'backup-first',
        options: { allowLegacyPolicyOnMajor: true },
      }).expect(201);
      expect(await t.db.reader.countBy(UpgradeStep, { agentId: ids['g1-main'] })).toBe(2);
    });

    it('names a nested field once in a refusal: target.all, not target.target.all', async () => {
      const { cluster, packageId } = await setUp(['a']);
      const wanted = 'target.all must be true when given; name agents with agentIds, addresses or labels instead';
      for (const res of [
        await createUpgrade(cluster.id, { packageId, target: { all: false } }).expect(400),
        await asOperator()
          .post(`/api/v1/clusters/${cluster.id}/upgrades/preview`)
          .send({ packageId, target: { all: false } })
          .expect(400),
        await asOperator()
          .post(`/api/v1/clusters/${cluster.id}/packages`)
          .field('mode', 'install')
          .field('target', '{"all": false}')
          .attach('file', packageArchive({ notes: 'nested' }), 'p.tar.gz')
          .expect(400),
      ]) {
        expect(res.body.details).toEqual([{ field: 'target.all', problems: [wanted] }]);
        expect(res.body.message).toContain(wanted);
        expect(res.body.message).not.toContain('target.target');
      }
    });

    it('viewers may look but not act', async () => {
      const { cluster, packageId } = await setUp(['a']);
      const viewer = await t.tokenFor('viewer');
      const res = await t
        .as(viewer)
        .post(`/api/v1/clusters/${cluster.id}/upgrades`)
        .send({ packageId, target: { all: true } })
        .expect(403);
      expect(res.body.message).toMatch(/operator/);
      await t.as(viewer).get(`/api/v1/clusters/${cluster.id}/upgrades`).expect(200);
    });
  });

  describe('preview and creation', () => {
    type Step = {
      id: string;
      kind: string;
      agentId: string;
      fromAgentId: string | null;
      dependsOn: string[];
      status: string;
    };
    const shape = (steps: Step[]) =>
      steps.map(({ id, kind, agentId, fromAgentId, dependsOn, status }) => ({
        id,
        kind,
        agentId,
        fromAgentId,
        dependsOn,
        status,
      }));
    const preview = (clusterId: string, body: Record<string, unknown>) =>
      asOperator().post(`/api/v1/clusters/${clusterId}/upgrades/preview`).send(body).expect(200);

    it('names each step alike in the preview and in the upgrade created from the same input', async () => {
      const { cluster, ids, packageId } = await setUp(['g1-main', 'g1-backup', 'solo', 'done'], {
        done: { version: '1.1.0' },
      });
      const body = { packageId, target: { all: true }, policy: 'backup-first-switchback' };
      const planned = await preview(cluster.id, body);
      expect(planned.body.refusals).toEqual([]);
      const created = await createUpgrade(cluster.id, body).expect(201);
      expect(shape(created.body.steps)).toEqual(shape(planned.body.steps));
      // Every id a UUID, dependencies named by those ids, the skipped agent included.
      const steps = shape(created.body.steps);
      expect(
        steps.every((s) => /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(s.id)),
      ).toBe(true);
      const byId = new Map(steps.map((s) => [s.id, s]));
      const switchover = steps.find((s) => s.kind === 'switchover')!;
      expect(switchover.dependsOn.map((d) => byId.get(d)!.agentId)).toEqual([ids['g1-backup']]);
      expect(steps.find((s) => s.agentId === ids.done)).toMatchObject({ status: 'skipped' });
      expect(
        (await t.admin.get(`/api/v1/upgrades/${created.body.id}`).expect(200)).body.steps.map((s: Step) => s.id),
      ).toEqual(steps.map((s) => s.id));
    });

    it('gives a package used again new step ids, alike in its preview and its upgrade', async () => {
      const { cluster, ids, packageId } = await setUp(['a']);
      const later = new Date(clock.now().getTime() + 3600_000).toISOString();
      const first = await createUpgrade(cluster.id, { packageId, target: { all: true }, scheduledAt: later }).expect(
        201,
      );
      await asOperator().post(`/api/v1/upgrades/${first.body.id}/cancel`).expect(200); // the package is given back
      const body = { packageId, target: { agentIds: [ids.a] } };
      const planned = await preview(cluster.id, body);
      const second = await createUpgrade(cluster.id, body).expect(201);
      expect(shape(second.body.steps)).toEqual(shape(planned.body.steps));
      expect(second.body.steps[0].id).not.toBe(first.body.steps[0].id);
    });
  });

  describe('install mode, auto-upgrade, upgrade now, migrate', () => {
    it('an upload with mode=install creates the upgrade; refused, it stores no package', async () => {
      const { cluster, ids, fleet } = await setUp(['a', 'b']);
      const install = (archive: Buffer, target: unknown) =>
        asOperator()
          .post(`/api/v1/clusters/${cluster.id}/packages`)
          .field('mode', 'install')
          .field('target', JSON.stringify(target))
          .field('options', '{"maxParallel": 1}')
          .attach('file', archive, 'p.tar.gz');
      const res = await install(packageArchive({ notes: 'install' }), { agentIds: [ids.a] }).expect(201);
      expect(res.body.package).toMatchObject({ status: 'completed', usedByUpgradeId: res.body.upgrade.id });
      expect(res.body.upgrade).toMatchObject({
        status: 'running',
        origin: 'install',
        options: expect.objectContaining({ maxParallel: 1 }),
      });

      const refused = await install(packageArchive({ notes: 'refused' }), { agentIds: [ids.a] }).expect(409);
      expect(refused.body.code).toBe('AGENT_IN_UPGRADE');
      const listed = (await t.admin.get(`/api/v1/clusters/${cluster.id}/packages`)).body;
      expect(listed.items.map((p: { notes: string }) => p.notes).sort()).toEqual(['install', null].sort());
      await fleet.until(res.body.upgrade.id, ['succeeded']);
    });

    it('auto-upgrade brings a late agent to the target; upgrade-now does it by hand for an opted-out one', async () => {
      const { cluster, packageId, fleet } = await setUp(['a']);
      const created = await createUpgrade(cluster.id, { packageId, target: { all: true } }).expect(201);
      await fleet.until(created.body.id, ['succeeded']);

      const late = await givenPairedAgent(t, cluster.id, { name: 'late' });
      const optedOut = await givenPairedAgent(t, cluster.id, { name: 'opted-out' });
      await t.admin.put(`/api/v1/agents/${optedOut.registered.id}/auto-upgrade`).send({ enabled: false }).expect(200);
      fleet.members.push({ name: 'late', agent: late.agent }, { name: 'opted-out', agent: optedOut.agent });
      expect(await agentOf(late.registered.id)).toMatchObject({ versionStatus: 'outdated' });

      expect(await t.app.get(AutoUpgrader).sweep()).toBe(1);
      for (let i = 0; i < 5; i++) await fleet.round();
      expect(fleet.log).toEqual(['a upgrade', 'late upgrade']);
      expect(await agentOf(late.registered.id)).toMatchObject({
        version: '1.1.0',
        versionStatus: 'latest',
        upgradeId: null,
      });

      const now = await asOperator().post(`/api/v1/agents/${optedOut.registered.id}/upgrade-now`).expect(201);
      expect(now.body).toMatchObject({ origin: 'upgrade-now', packageId });
      await fleet.until(now.body.id, ['succeeded']);
      const again = await asOperator().post(`/api/v1/agents/${optedOut.registered.id}/upgrade-now`).expect(422);
      expect(again.body.code).toBe('NOTHING_TO_UPGRADE');
    });

    it('a serving pair member caught up by hand hands over to its upgraded peer first', async () => {
      const { cluster, ids, packageId, fleet } = await setUp(['g1-main', 'g1-backup']);
      await t.admin.patch(`/api/v1/clusters/${cluster.id}`).send({ defaultPolicy: 'backup-first' }).expect(200);
      // The main's upgrade rolls back: the backup stays on 1.1.0, the main takes back over on 1.0.0.
      let mainFails = true;
      fleet.behaviour = (name, command) =>
        mainFails && name === 'g1-main' && command.type === 'upgrade'
          ? { status: 'rolled-back' }
          : obedient(name, command);
      const created = await createUpgrade(cluster.id, { packageId, target: { all: true } }).expect(201);
      await fleet.until(created.body.id, ['completed-with-errors']);
      await fleet.round();
      expect(await agentOf(ids['g1-main'])).toMatchObject({ active: true, version: '1.0.0', versionStatus: 'failed' });
      fleet.rounds.length = 0;

      mainFails = false;
      const now = await asOperator().post(`/api/v1/agents/${ids['g1-main']}/upgrade-now`).expect(201);
      expect(now.body.steps.map((s: { kind: string; status: string }) => `${s.kind} ${s.status}`)).toEqual([
        'upgrade skipped',
        'switchover pending',
        'upgrade pending',
        'switchback pending',
      ]);
      expect(now.body.warnings.map((w: { code: string }) => w.code)).toEqual([]);
      await fleet.until(now.body.id, ['succeeded']);
      await fleet.round();
      // The main never stopped while it served: the backup took over first.
      expect(sorted(fleet.rounds)).toEqual([['g1-backup takes over'], ['g1-main hands over', 'g1-main upgrade']]);
      expect(await agentOf(ids['g1-main'])).toMatchObject({
        active: false,
        version: '1.1.0',
        versionStatus: 'latest',
        upgradeId: null,
      });
      expect(await agentOf(ids['g1-backup'])).toMatchObject({ active: true, version: '1.1.0', upgradeId: null });
    });

    it('migrate queues one migration of the installed version', async () => {
      const { ids, members } = await setUp(['a']);
      const res = await asOperator().post(`/api/v1/agents/${ids.a}/migrate`).expect(202);
      expect(res.body).toMatchObject({ agentId: ids.a, version: '1.0.0', status: 'pending' });
      await asOperator().post(`/api/v1/agents/${ids.a}/migrate`).expect(409);
      const hb = await members[0].agent.heartbeat();
      expect(hb.body.commands).toEqual([
        expect.objectContaining({ id: res.body.commandId, type: 'migrate', version: '1.0.0' }),
      ]);
    });
  });

  it('streams an upgrade live over SSE, from its start to its end', async () => {
    const { cluster, packageId, fleet } = await setUp(['g1-main', 'g1-backup']);
    const created = await createUpgrade(cluster.id, {
      packageId,
      target: { all: true },
      policy: 'backup-first',
      scheduledAt: new Date(clock.now().getTime() + 1000).toISOString(),
    }).expect(201);
    const stream = new StreamClient(`${t.baseUrl}/api/v1/upgrades/${created.body.id}/events`, {
      token: operator,
      lastEventId: 0,
    });
    try {
      await stream.opened;
      clock.advance(1000);
      await fleet.until(created.body.id, ['succeeded']);
      const payload = (e: { data: Record<string, unknown> }) => e.data.data as Record<string, unknown>;
      const events = await stream.waitFor((all) =>
        all.some((e) => e.type === 'upgrade.status' && payload(e).status === 'succeeded'),
      );
      const statuses = events.filter((e) => e.type === 'upgrade.status').map((e) => payload(e).status);
      expect(statuses[0]).toBe('scheduled');
      expect(statuses).toContain('running');
      expect(statuses.at(-1)).toBe('succeeded');
      expect(events.filter((e) => e.type === 'pair.switchover')).toHaveLength(1);
      const phases = events
        .filter((e) => e.type === 'task.progress' && payload(e).status === 'running' && payload(e).phase)
        .map((e) => payload(e).phase);
      expect(phases).toContain('install');
      expect(events.map((e) => e.id)).toEqual([...events.map((e) => e.id)].sort((a, b) => a - b));
    } finally {
      stream.close();
    }
    // Read as curl or a script would: every event, then `end` with the final status, and the response ends.
    const res = await fetch(`${t.baseUrl}/api/v1/upgrades/${created.body.id}/events?lastEventId=0`, {
      headers: { Authorization: `Bearer ${operator}` },
    });
    const frames = (await res.text()).split('\n\n').filter((f) => f.startsWith('id: '));
    const history = (await t.as(operator).get(`/api/v1/upgrades/${created.body.id}/history?limit=1000`).expect(200))
      .body.items as Array<{ id: number }>;
    const upToEnd = history.slice(0, frames.length - 1).map((e) => e.id);
    expect(frames.slice(0, -1).map((f) => Number(/^id: (\d+)/.exec(f)![1]))).toEqual(upToEnd);
    expect(frames.filter((f) => f.includes('event: upgrade.status')).at(-1)).toMatch(/"status":"succeeded"/);
    expect(frames.at(-1)).toMatch(/^id: \d+\nevent: end\ndata: \{.*"status":"succeeded"/);
  });

  it('a process restarted mid-upgrade finishes it, and no step is issued twice', async () => {
    const { cluster, members, packageId, fleet } = await setUp(['a', 'b']);
    fleet.behaviour = () => 'later';
    const created = await createUpgrade(cluster.id, {
      packageId,
      target: { all: true },
      options: { maxParallel: 1 },
    }).expect(201);
    expect(await fleet.round()).toEqual(['a upgrade']);

    t = await t.restart();
    fleet.t = t;
    for (const m of members) m.agent.moveTo(t);
    operator = await t.tokenFor('operator');
    fleet.behaviour = obedient;
    expect(await fleet.round()).toEqual([]); // the same command rides the heartbeat again, not a new one
    await fleet.answerLater();
    const done = await fleet.until(created.body.id, ['succeeded']);
    expect(fleet.log).toEqual(['a upgrade', 'b upgrade']);
    expect(done.steps.map((s: { attempts: number }) => s.attempts)).toEqual([1, 1]);
    const commands = await t.db.reader.findBy(AgentCommand, { clusterId: cluster.id, type: 'upgrade' });
    expect(commands).toHaveLength(2);
  });
});
