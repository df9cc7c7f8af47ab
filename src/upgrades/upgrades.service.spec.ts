import { generateKeyPairSync } from 'node:crypto';
import { signPackage } from '../protocol/package-signing';
import { SigningKeysService } from '../cluster/signing-keys.service';
import { AuditTrail } from '../audit/audit-trail.service';
import { RollbackPlanning } from './rollback-planning';
import { Logger } from '@nestjs/common';
import { AgentCommandsService } from '../cluster/agent-commands.service';
import { AgentsService } from '../cluster/agents.service';
import { ClustersService } from '../cluster/clusters.service';
import { ManualClock } from '../common/clock';
import { ConflictError } from '../common/errors';
import { PackagesService, UploadInstaller } from '../packages/packages.service';
import type { ReceivedUpload } from '../packages/upload-receiver';
import { calledMethods, FakeDatabase, FakeTx, mockOf, refusalOf } from '../testing/fakes';
import { aCluster, anAgent, aPackage, anUpgrade, aStep, T0, TEST_ORIGIN } from '../testing/fixtures';
import { CreateUpgradeDto, UpgradeDto } from './dto/upgrade.dto';
import { UpgradeExecutor } from './upgrade-executor';
import { UPGRADE_STATUSES, Upgrade, UpgradeStatus } from './upgrade.entity';
import { UpgradeRepository } from './upgrade.repository';
import { UpgradeStep } from './upgrade-step.entity';
import { UpgradeWriter } from './upgrade-writer';
import { signatureRefusal, UpgradesService } from './upgrades.service';

/**
 * The operator's verbs on an upgrade (issue 17): which status each applies to, what an allowed one
 * writes, and that a refused one is the 409 the API answers and writes nothing. The rules are
 * README's "Upgrade statuses"; the locking and the one transaction, docs/ARCHITECTURE.md section 3
 * ("Everything that changes an upgrade first takes advisoryLock('upgrade:<id>')").
 */

type Verb = 'pause' | 'resume' | 'cancel' | 'retry';

/** Where each verb applies and the status it writes (README, "Upgrade statuses"). */
const VERBS: Record<Verb, { from: UpgradeStatus[]; to: UpgradeStatus }> = {
  pause: { from: ['running'], to: 'paused' },
  resume: { from: ['paused'], to: 'running' },
  cancel: { from: ['scheduled', 'running', 'paused', 'rolling-back'], to: 'cancelled' },
  retry: { from: ['failed', 'completed-with-errors', 'succeeded', 'cancelled'], to: 'running' },
};

const NOW = new Date(T0.getTime() + 3_600_000);

beforeAll(() => Logger.overrideLogger(false));

/** UpgradesService with every collaborator mocked, the upgrade and its steps as the repository answers them. */
function rig(upgrade: Upgrade, steps: UpgradeStep[]) {
  const db = new FakeDatabase();
  const upgrades = mockOf<UpgradeRepository>();
  upgrades.findForUpdate.mockResolvedValue(upgrade);
  upgrades.stepsOf.mockResolvedValue(steps);
  const writer = mockOf<UpgradeWriter>();
  // The writer's contract, not its code: the upgrade it saves has the status and reason given.
  writer.saveUpgrade.mockImplementation((_tx, saved, _steps, status, reason) => {
    if (status) saved.status = status;
    if (reason !== undefined) saved.reason = reason;
    return Promise.resolve();
  });
  const executor = mockOf<UpgradeExecutor>();
  // A pass asked for before the commit would read the old state: record when it was asked.
  const pokedWhen: string[] = [];
  executor.poke.mockImplementation(() => void pokedWhen.push(db.transactions.at(-1)?.state ?? 'none'));
  const clusters = mockOf<ClustersService>();
  const agents = mockOf<AgentsService>();
  agents.lockMany.mockResolvedValue([]);
  const packages = mockOf<PackagesService>();
  const commands = mockOf<AgentCommandsService>();
  const clock = new ManualClock(NOW);
  const signingKeys = mockOf<SigningKeysService>();
  signingKeys.keysOf.mockResolvedValue([]);
  const service = new UpgradesService(
    db.asDatabase(),
    upgrades,
    writer,
    executor,
    mockOf<RollbackPlanning>(),
    clusters,
    agents,
    packages,
    commands,
    clock,
    mockOf<AuditTrail>(),
    signingKeys,
  );
  return { service, db, upgrades, writer, executor, pokedWhen, clusters, agents, packages, commands };
}
type Rig = ReturnType<typeof rig>;

/** An upgrade in `status` with what each verb needs to be allowed from it (a retryable, ended one). */
function upgradeIn(status: UpgradeStatus): { upgrade: Upgrade; steps: UpgradeStep[] } {
  const ended = !['scheduled', 'running', 'paused'].includes(status);
  const upgrade = anUpgrade({
    status,
    startedAt: status === 'scheduled' ? null : T0,
    scheduledAt: status === 'scheduled' ? NOW : null,
    finishedAt: ended ? T0 : null,
  });
  // An ended upgrade that retry applies to has a step that did not succeed: failed, or missed its
  // turn in one that otherwise succeeded, or cancelled.
  const endedAs = status === 'succeeded' ? 'missed' : status === 'cancelled' ? 'cancelled' : 'failed';
  const step = aStep(ended ? { status: endedAs, attempts: 1, endedAt: T0 } : {});
  return { upgrade, steps: [step] };
}

/** The retry's replanning reads the cluster and its agents: agent-a, back on 10.2.0 after its failure. */
function givenAgentsForRetry(r: Rig): void {
  r.clusters.require.mockResolvedValue(aCluster());
  r.agents.inClusterForPlanning.mockResolvedValue([anAgent({ lastUpgradeFailed: true })]);
}

/** What creating an upgrade reads: the cluster, the package, agent-a (10.2.0) and the package's earlier uses. */
function givenPlanning(r: Rig, pkg = aPackage(), agents = [anAgent()]): void {
  r.clusters.require.mockResolvedValue(aCluster());
  r.packages.require.mockResolvedValue(pkg);
  r.agents.inClusterForPlanning.mockResolvedValue(agents);
  r.upgrades.usesOfPackage.mockResolvedValue(0);
}

/** A refused verb: the transaction rolled back with no write of any kind, and no pass asked for. */
function expectNothingWritten(r: Rig): void {
  expect(r.db.only().state).toBe('rolled-back');
  expect(calledMethods(r.writer)).toEqual([]);
  // Only the reads that found the upgrade refused: no step saved, replaced or inserted.
  expect(calledMethods(r.upgrades).filter((m) => m !== 'findForUpdate' && m !== 'stepsOf')).toEqual([]);
  expect(calledMethods(r.commands)).toEqual([]);
  expect(calledMethods(r.packages)).toEqual([]);
  expect(r.executor.poke).not.toHaveBeenCalled();
}

describe('UpgradesService: pause, resume, cancel, retry', () => {
  const allowed = (Object.keys(VERBS) as Verb[]).flatMap((verb) =>
    VERBS[verb].from.map((from) => [verb, from, VERBS[verb].to] as const),
  );
  const refused = (Object.keys(VERBS) as Verb[]).flatMap((verb) =>
    UPGRADE_STATUSES.filter((s) => !VERBS[verb].from.includes(s)).map((from) => [verb, from] as const),
  );

  it.each(allowed)(
    '%s from %s writes %s through UpgradeWriter, in one transaction under the upgrade lock',
    async (verb, from, to) => {
      const { upgrade, steps } = upgradeIn(from);
      const r = rig(upgrade, steps);
      if (verb === 'retry') givenAgentsForRetry(r);

      const answer = await r.service[verb](upgrade.id, TEST_ORIGIN);

      const tx = r.db.only();
      expect(tx.state).toBe('committed');
      const saved = r.writer.saveUpgrade.mock.calls.map(([inTx, which, , status]) => [inTx, which, status]);
      expect(saved).toContainEqual([tx, upgrade, to]);
      // Every write of the verb is in that transaction: a crash leaves all of it or none.
      for (const name of calledMethods(r.writer))
        for (const call of (r.writer[name as keyof UpgradeWriter] as jest.Mock).mock.calls) expect(call[0]).toBe(tx);
      // The lock comes before the upgrade row is read, so a report or a pass cannot interleave.
      expect(tx.advisoryLock).toHaveBeenCalledWith(`upgrade:${upgrade.id}`);
      expect(tx.advisoryLock.mock.invocationCallOrder[0]).toBeLessThan(
        r.upgrades.findForUpdate.mock.invocationCallOrder[0],
      );
      expect(r.pokedWhen).toEqual(['committed']);
      expect(answer.status).toBe(to);
    },
  );

  it.each(refused)('%s from %s is a 409 UPGRADE_STATE naming the status, and writes nothing', async (verb, from) => {
    const { upgrade, steps } = upgradeIn(from);
    const r = rig(upgrade, steps);

    const error = await refusalOf(r.service[verb](upgrade.id, TEST_ORIGIN));

    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({
      status: 409,
      code: 'UPGRADE_STATE',
      message: `Upgrade ${upgrade.id} is ${from}; ${verb} applies to an upgrade that is ${VERBS[verb].from.join(' or ')}.`,
      details: { status: from, allowed: VERBS[verb].from },
    });
    expectNothingWritten(r);
  });

  it('pause leaves running steps alone: they finish (README, "Upgrade statuses")', async () => {
    const running = aStep({ status: 'running', commandId: 'command-1', startedAt: T0 });
    const r = rig(anUpgrade(), [running]);

    await r.service.pause('upgrade-1', TEST_ORIGIN);

    expect(r.writer.saveUpgrade).toHaveBeenCalledWith(
      r.db.only(),
      expect.objectContaining({ status: 'paused' }),
      [running],
      'paused',
      'paused by test operator',
    );
    expect(running.status).toBe('running');
    expect(r.commands.cancel).not.toHaveBeenCalled();
    expect(r.writer.saveSteps).not.toHaveBeenCalled();
  });

  it('resume restarts the waits from now and ends the canary pause', async () => {
    const waiting = aStep({ status: 'waiting', waitingFor: 'idle', waitingSince: T0 });
    const done = aStep({ id: 'step-b', agentId: 'agent-b', status: 'succeeded', endedAt: T0 });
    const upgrade = anUpgrade({ status: 'paused', canaryPending: true, reason: 'canary units ended' });
    const r = rig(upgrade, [waiting, done]);

    await r.service.resume('upgrade-1', TEST_ORIGIN);

    // idleTimeoutS counts from the resume, not from before the pause.
    expect(waiting.waitingSince).toEqual(NOW);
    expect(r.upgrades.saveSteps).toHaveBeenCalledWith(r.db.only().em, [waiting]);
    expect(upgrade).toMatchObject({ status: 'running', reason: null, canaryPending: false });
  });

  describe('cancel', () => {
    it('stops the steps not started, withdraws a command not fetched yet, and lets a running step finish', async () => {
      const running = aStep({ id: 'step-run', agentId: 'agent-r', status: 'running', commandId: 'command-r' });
      const queued = aStep({
        id: 'step-q',
        agentId: 'agent-q',
        status: 'waiting',
        waitingFor: 'pickup',
        commandId: 'command-q',
      });
      const offline = aStep({ id: 'step-o', agentId: 'agent-o', status: 'waiting', waitingFor: 'online' });
      const pending = aStep({ id: 'step-p', agentId: 'agent-p', status: 'pending' });
      const done = aStep({ id: 'step-d', agentId: 'agent-d', status: 'succeeded', endedAt: T0 });
      const upgrade = anUpgrade();
      const r = rig(upgrade, [running, queued, offline, pending, done]);

      await r.service.cancel('upgrade-1', TEST_ORIGIN);

      const tx = r.db.only();
      for (const step of [queued, offline, pending]) expect(step).toMatchObject({ status: 'cancelled', endedAt: NOW });
      expect(running.status).toBe('running');
      expect(done.status).toBe('succeeded');
      // Only the command the agent has not seen is withdrawn; the running one is never interrupted.
      expect(r.commands.cancel).toHaveBeenCalledTimes(1);
      expect(r.commands.cancel).toHaveBeenCalledWith(tx, 'command-q', 'the upgrade was cancelled');
      expect(r.writer.saveSteps).toHaveBeenCalledWith(tx, upgrade, expect.any(Array), [queued, offline, pending]);
      // Finished only once the running step ended (the executor's pass records that).
      expect(upgrade.finishedAt).toBeNull();
      expect(upgrade).toMatchObject({ status: 'cancelled', reason: 'cancelled by test operator' });
    });

    it('leaves the agents of a started upgrade behind: auto-upgrade does not undo a cancel', async () => {
      const pending = aStep({ status: 'pending' });
      const upgrade = anUpgrade();
      const r = rig(upgrade, [pending]);

      await r.service.cancel('upgrade-1', TEST_ORIGIN);

      expect(upgrade.finishedAt).toEqual(NOW);
      const [, , , , extra] = r.writer.syncAgents.mock.calls[0];
      expect(extra?.get('agent-a')).toMatchObject({
        autoUpgradeBlocked: expect.stringContaining('cancelled'),
        autoUpgradeRetryAt: null,
      });
    });

    it('gives a scheduled upgrade’s package back, and leaves no agent behind', async () => {
      const upgrade = anUpgrade({ status: 'scheduled', startedAt: null, scheduledAt: NOW });
      const r = rig(upgrade, [aStep()]);

      await r.service.cancel('upgrade-1', TEST_ORIGIN);

      expect(r.packages.release).toHaveBeenCalledWith(r.db.only(), 'package-1', 'upgrade-1');
      expect(r.writer.syncAgents.mock.calls[0][4]?.size).toBe(0);
    });
  });

  describe('retry', () => {
    const failed = () =>
      aStep({ status: 'failed', attempts: 1, commandId: 'command-old', error: 'install failed', endedAt: T0 });
    const succeeded = () =>
      aStep({ id: 'step-b', agentId: 'agent-b', unit: 1, ordinal: 1, status: 'succeeded', endedAt: T0 });

    it('replaces the failed unit’s steps with a new plan, keeps what succeeded, and runs again', async () => {
      const [old, kept] = [failed(), succeeded()];
      const upgrade = anUpgrade({ status: 'completed-with-errors', finishedAt: T0 });
      const r = rig(upgrade, [old, kept]);
      givenAgentsForRetry(r);

      const answer = await r.service.retry('upgrade-1', TEST_ORIGIN);

      const tx = r.db.only();
      const [, replaced, fresh] = r.upgrades.replaceSteps.mock.calls[0];
      expect(replaced).toEqual([old]);
      expect(fresh).toEqual([
        expect.objectContaining({ agentId: 'agent-a', kind: 'upgrade', status: 'pending', attempts: 1 }),
      ]);
      expect(fresh[0].id).not.toBe(old.id);
      expect(answer.steps?.map((s) => s.id)).toEqual([kept.id, fresh[0].id]);
      expect(upgrade).toMatchObject({ status: 'running', finishedAt: null, reason: null });
      // The agent runs again and is no longer shown failed unless this attempt fails.
      expect(r.agents.lockMany).toHaveBeenCalledWith(tx, ['agent-a']);
      const [, , , , extra] = r.writer.syncAgents.mock.calls[0];
      expect(extra?.get('agent-a')).toMatchObject({ lastUpgradeFailed: false, autoUpgradeBlocked: null });
    });

    it('is a 409 AGENT_IN_UPGRADE when another upgrade holds the agent, and writes nothing', async () => {
      const r = rig(anUpgrade({ status: 'failed', finishedAt: T0 }), [failed()]);
      givenAgentsForRetry(r);
      r.agents.lockMany.mockResolvedValue([anAgent({ upgradeId: 'upgrade-2' })]);

      const error = await refusalOf(r.service.retry('upgrade-1', TEST_ORIGIN));

      expect(error).toMatchObject({
        status: 409,
        code: 'AGENT_IN_UPGRADE',
        message: expect.stringContaining('alpha is in upgrade upgrade-2'),
        details: { agents: [{ agentId: 'agent-a', name: 'alpha', upgradeId: 'upgrade-2' }] },
      });
      expectNothingWritten(r);
    });

    it.each([
      [
        'still finishing its running steps (cancelled, not finished)',
        anUpgrade({ status: 'cancelled', finishedAt: null }),
        'UPGRADE_STATE',
        'Upgrade upgrade-1 is still finishing its running steps; retry once it ended.',
      ],
      [
        'cancelled before it started',
        anUpgrade({ status: 'cancelled', startedAt: null, finishedAt: T0 }),
        'UPGRADE_NEVER_STARTED',
        'Upgrade upgrade-1 was cancelled before it started and gave its package back: create a new upgrade with package package-1 instead.',
      ],
    ])('is a 409 when the upgrade is %s, and writes nothing', async (_case, upgrade, code, message) => {
      const r = rig(upgrade, [failed()]);

      const error = await refusalOf(r.service.retry('upgrade-1', TEST_ORIGIN));

      expect(error).toMatchObject({ status: 409, code, message, details: { status: 'cancelled' } });
      expectNothingWritten(r);
    });

    it('is a 409 NOTHING_TO_RETRY when no step failed, missed its turn or was cancelled', async () => {
      const r = rig(anUpgrade({ status: 'succeeded', finishedAt: T0 }), [aStep({ status: 'succeeded' })]);

      const error = await refusalOf(r.service.retry('upgrade-1', TEST_ORIGIN));

      expect(error).toMatchObject({ status: 409, code: 'NOTHING_TO_RETRY', details: { status: 'succeeded' } });
      expectNothingWritten(r);
    });
  });

  it('an unknown upgrade is a 404 and writes nothing', async () => {
    const r = rig(anUpgrade(), []);
    r.upgrades.findForUpdate.mockResolvedValue(null);

    await expect(r.service.pause('nope', TEST_ORIGIN)).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' });
    expectNothingWritten(r);
  });
});

describe('UpgradesService.acceptUpload: the upgrade of an upload with mode=install', () => {
  // docs/ARCHITECTURE.md, "Ports" (1): the packages module stores the upload and calls back the
  // installer given here in the transaction that inserts the package (packages.service.spec.ts).
  const upload: ReceivedUpload = {
    fields: { mode: 'install' },
    archive: { sha256: 'a'.repeat(64), size: 1024, entries: new Set(['manifest.json']), manifestText: '{}' },
    tempPath: '/data/tmp/upload-1',
  };
  const caller = {
    actor: { kind: 'user', tokenId: 'token-1', name: 'ops', role: 'operator' },
    requestId: 'req-1',
  } as const;

  /** The installer UpgradesService hands PackagesService.accept. */
  async function installerOf(r: Rig): Promise<UploadInstaller<Omit<CreateUpgradeDto, 'packageId'>, UpgradeDto>> {
    await r.service.acceptUpload('cluster-1', upload, caller);
    expect(r.packages.accept).toHaveBeenCalledWith('cluster-1', upload, caller, expect.anything());
    return r.packages.accept.mock.calls[0][3] as UploadInstaller<Omit<CreateUpgradeDto, 'packageId'>, UpgradeDto>;
  }

  it('creates the upgrade (origin install) in the transaction it is given, the package moved first', async () => {
    const r = rig(anUpgrade(), []);
    const installer = await installerOf(r);
    const pkg = aPackage();
    givenPlanning(r, pkg);
    const tx = new FakeTx(7);

    const request = await installer.parse({ mode: 'install', target: '{"all": true}' });
    const created = await installer.install(tx, pkg, request);

    expect(r.db.transactions).toEqual([]);
    const [em, upgrade, steps] = r.upgrades.insert.mock.calls[0];
    expect(em).toBe(tx.em);
    expect(upgrade).toMatchObject({ id: created.id, origin: 'install', packageId: 'package-1', status: 'running' });
    expect(steps).toEqual([expect.objectContaining({ agentId: 'agent-a', kind: 'upgrade', status: 'pending' })]);
    // Of two requests racing for the package, the second is refused before it inserts anything.
    expect(r.packages.complete).toHaveBeenCalledWith(tx, 'package-1', created.id);
    expect(r.packages.complete.mock.invocationCallOrder[0]).toBeLessThan(r.upgrades.insert.mock.invocationCallOrder[0]);
    expect(r.writer.saveUpgrade).toHaveBeenCalledWith(tx, upgrade, steps);
    expect(r.agents.lockMany).toHaveBeenCalledWith(tx, ['agent-a']);
    // The executor hears of it only once the package's transaction committed.
    expect(r.executor.poke).not.toHaveBeenCalled();
    await tx.commit();
    expect(r.executor.poke).toHaveBeenCalledTimes(1);
  });

  it('parse refuses upgrade fields that are not JSON with a 400 naming the field', async () => {
    const r = rig(anUpgrade(), []);
    const installer = await installerOf(r);

    const error = await refusalOf(installer.parse({ mode: 'install', target: 'all' }));

    expect(error).toMatchObject({
      status: 400,
      message: 'target must be JSON text, such as {"all": true}.',
      details: [{ field: 'target', problems: ['target must be JSON'] }],
    });
  });
});

describe('UpgradesService.create: the status an upgrade starts in', () => {
  // README, "Upgrades": scheduledAt starts it later, and until then the package is reserved; a
  // package starts one upgrade; prerequisites are checked against the targeted agents.
  const request: CreateUpgradeDto = { packageId: 'package-1', target: { all: true } };
  const insertsNothing = (r: Rig) => {
    expect(r.db.only().state).toBe('rolled-back');
    expect(r.upgrades.insert).not.toHaveBeenCalled();
    expect(calledMethods(r.writer)).toEqual([]);
    expect(r.executor.poke).not.toHaveBeenCalled();
  };

  it('a scheduledAt later makes it scheduled, with its package reserved rather than used', async () => {
    const r = rig(anUpgrade(), []);
    givenPlanning(r);
    const later = new Date(NOW.getTime() + 86_400_000);

    const created = await r.service.create('cluster-1', { ...request, scheduledAt: later.toISOString() }, TEST_ORIGIN);

    expect(created).toMatchObject({ status: 'scheduled', startedAt: null });
    expect(r.packages.reserve).toHaveBeenCalledWith(r.db.only(), 'package-1', created.id);
    expect(r.packages.complete).not.toHaveBeenCalled();
  });

  it('a package that started an upgrade already is a 409 PACKAGE_USED naming it, and nothing is inserted', async () => {
    const r = rig(anUpgrade(), []);
    givenPlanning(r, aPackage({ status: 'completed', usedByUpgradeId: 'upgrade-0' }));

    const error = await refusalOf(r.service.create('cluster-1', request, TEST_ORIGIN));

    expect(error).toMatchObject({
      status: 409,
      code: 'PACKAGE_USED',
      message: expect.stringContaining('Package package-1 is completed by upgrade upgrade-0'),
      details: { status: 'completed', upgradeId: 'upgrade-0' },
    });
    insertsNothing(r);
  });

  it('targeted agents failing the prerequisites are a 422 PREREQUISITES_UNMET with each check, and nothing is inserted', async () => {
    const r = rig(anUpgrade(), []);
    givenPlanning(r, aPackage({ prerequisites: { minFreeDiskMb: 50_000 } }), [
      anAgent(),
      anAgent({ id: 'agent-b', name: 'bravo', address: 'bravo.example', facts: { freeDiskMb: 100 } }),
    ]);

    const error = await refusalOf(r.service.create('cluster-1', request, TEST_ORIGIN));

    expect(error).toMatchObject({
      status: 422,
      code: 'PREREQUISITES_UNMET',
      message: "2 targeted agents fail the package's prerequisites; see details for each check.",
      details: {
        failures: [
          { agentId: 'agent-a', check: 'minFreeDiskMb', required: '50000 MB free', actual: '10000 MB free' },
          { agentId: 'agent-b', check: 'minFreeDiskMb', required: '50000 MB free', actual: '100 MB free' },
        ],
      },
    });
    insertsNothing(r);
  });
});

describe('signatureRefusal: what agents would refuse to install', () => {
  const cluster = (requireSignedPackages: boolean) => ({ name: 'prod', requireSignedPackages });
  const pair = () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    return {
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
  };
  const release = pair();
  const other = pair();
  const sha256 = 'a'.repeat(64);
  const signed = { id: 'package-1', sha256, signature: signPackage(sha256, release.privateKey), signingKeyName: 'ci' };
  const unsigned = { ...signed, signature: null, signingKeyName: null };

  it.each([
    ['unsigned where signatures are required', true, unsigned, [release], 'PACKAGE_UNSIGNED'],
    ['unsigned where they are not', false, unsigned, [], null],
    ['signed by a registered key', true, signed, [other, release], null],
    ['signed by a key since deleted, required', true, signed, [other], 'PACKAGE_KEY_REMOVED'],
    [
      'signed by a key since deleted, not required (agents check every signature)',
      false,
      signed,
      [],
      'PACKAGE_KEY_REMOVED',
    ],
  ] as const)('%s', (_why, required, pkg, keys, code) => {
    expect(signatureRefusal(cluster(required), pkg, [...keys])?.code ?? null).toBe(code);
  });
});
