import { AuditTrail } from '../audit/audit-trail.service';
import type { Origin } from '../audit/origin';
import { Logger } from '@nestjs/common';
import { generateKeyPairSync } from 'node:crypto';
import { AgentsService } from '../cluster/agents.service';
import { ClustersService } from '../cluster/clusters.service';
import { SigningKey } from '../cluster/signing-key.entity';
import { SigningKeysService } from '../cluster/signing-keys.service';
import { ManualClock } from '../common/clock';
import { BadInputError, UnprocessableError } from '../common/errors';
import { EventLog } from '../progress/event-log.service';
import { signPackage } from '../protocol/package-signing';
import { calledMethods, FakeDatabase, mockOf, refusalOf } from '../testing/fakes';
import { aCluster, anAgent, aPackage, T0 } from '../testing/fixtures';
import { Package } from './package.entity';
import { PackageRepository } from './package.repository';
import { PackageStore } from './package-store';
import { PackagesService, UploadInstaller } from './packages.service';
import type { ReceivedUpload } from './upload-receiver';

/**
 * The upload's acceptance, PackagesService.accept (issue 17): the checks that refuse an upload
 * before anything is stored, the same bytes answered with the package they made, and mode=install
 * creating its upgrade in the transaction that stores the package. The rules are docs/uploads.md
 * and docs/packages.md ("Prerequisites"); the install callback, docs/ARCHITECTURE.md, "Ports" (1).
 * The archive's own checks (inspector, manifest) have their specs beside them.
 */

beforeAll(() => Logger.overrideLogger(false));

const SHA = 'b'.repeat(64);
const uploader: Origin = {
  actor: { kind: 'user', tokenId: 'token-1', name: 'ops', role: 'operator' },
  requestId: null,
};
const manifest = {
  product: 'acme-agent',
  version: '10.3.0',
  kind: 'full',
  prerequisites: { fromVersion: '>=10.1.0 <10.3.0', minFreeDiskMb: 512 },
};

function anUpload(
  fields: Record<string, string> = { mode: 'upload-only' },
  product = manifest.product,
): ReceivedUpload {
  return {
    fields,
    archive: {
      sha256: SHA,
      size: 2048,
      entries: new Set(['manifest.json', 'bin/app']),
      manifestText: JSON.stringify({ ...manifest, product }),
    },
    tempPath: '/data/tmp/upload-1',
  };
}

/** What the upgrades module gives accept: the upgrade request it parsed, and the upgrade made. */
interface InstallRequest {
  target: { all: true };
}
interface Installed {
  upgradeId: string;
}

function rig() {
  const db = new FakeDatabase();
  const packages = mockOf<PackageRepository>();
  packages.findBySha256.mockResolvedValue(null);
  // After an insert the row reads back as inserted (storeNew answers the row once installed).
  const rows = new Map<string, Package>();
  packages.insert.mockImplementation((_em, pkg) => {
    rows.set(pkg.id, pkg);
    return Promise.resolve();
  });
  packages.findById.mockImplementation((id) => Promise.resolve(rows.get(id) ?? null));
  packages.sha256InUse.mockResolvedValue(false);
  const store = mockOf<PackageStore>();
  store.exists.mockResolvedValue(false);
  const clusters = mockOf<ClustersService>();
  clusters.require.mockResolvedValue(aCluster());
  const agents = mockOf<AgentsService>();
  // Two agents the manifest's fromVersion (>=10.1.0 <10.3.0) and disk space accept.
  agents.inventory.mockResolvedValue([
    anAgent(),
    anAgent({ id: 'agent-b', name: 'bravo', version: '10.2.1', facts: { freeDiskMb: 4096 } }),
  ]);
  const events = mockOf<EventLog>();
  const installer = mockOf<UploadInstaller<InstallRequest, Installed>>();
  installer.parse.mockResolvedValue({ target: { all: true } });
  installer.install.mockResolvedValue({ upgradeId: 'upgrade-1' });
  const signingKeys = mockOf<SigningKeysService>();
  signingKeys.keysOf.mockResolvedValue([]);
  // The last check, in the storing transaction, reads the cluster as the first one did.
  signingKeys.lockCluster.mockImplementation(() => clusters.require('cluster-1'));
  const service = new PackagesService(
    db.asDatabase(),
    packages,
    store,
    clusters,
    agents,
    events,
    new ManualClock(T0),
    signingKeys,
    mockOf<AuditTrail>(),
  );
  const accept = (upload: ReceivedUpload) => service.accept('cluster-1', upload, uploader, installer);
  return { service, accept, db, packages, rows, store, clusters, agents, events, installer, signingKeys };
}
type Rig = ReturnType<typeof rig>;

/** "Whatever is refused leaves no row and no file": no transaction, no store, and the temporary file removed. */
function expectNothingStored(r: Rig): void {
  expect(r.db.transactions).toEqual([]);
  expect(r.packages.insert).not.toHaveBeenCalled();
  expect(r.events.append).not.toHaveBeenCalled();
  expect(r.store.commit).not.toHaveBeenCalled();
  expect(r.installer.install).not.toHaveBeenCalled();
  expect(r.store.removeTemp).toHaveBeenCalledWith('/data/tmp/upload-1');
}

describe('PackagesService.accept', () => {
  it('stores a new package: the file under its hash, then the row and package.status in one transaction', async () => {
    const r = rig();

    const accepted = await r.accept(anUpload());

    const tx = r.db.only();
    expect(tx.state).toBe('committed');
    expect(r.store.commit).toHaveBeenCalledWith('/data/tmp/upload-1', SHA);
    const [em, row] = r.packages.insert.mock.calls[0];
    expect(em).toBe(tx.em);
    expect(row).toMatchObject({
      clusterId: 'cluster-1',
      product: 'acme-agent',
      version: '10.3.0',
      status: 'available',
      sha256: SHA,
      uploadedByTokenId: 'token-1',
    });
    expect(r.events.append).toHaveBeenCalledWith(tx, [
      expect.objectContaining({ type: 'package.status', data: expect.objectContaining({ status: 'available' }) }),
    ]);
    expect(accepted).toEqual({ created: true, pkg: expect.objectContaining({ id: row.id, version: '10.3.0' }) });
    expect(r.installer.parse).not.toHaveBeenCalled();
  });

  it.each([
    ['no mode', {}],
    ['an unknown mode', { mode: 'deploy' }],
  ])('refuses %s with a 400 naming the field, before reading the manifest', async (_case, fields) => {
    const r = rig();

    const error = await refusalOf(r.accept(anUpload(fields)));

    expect(error).toBeInstanceOf(BadInputError);
    expect(error).toMatchObject({
      status: 400,
      code: 'VALIDATION_FAILED',
      message: 'mode must be one of: upload-only, install.',
      details: [{ field: 'mode', problems: ['mode must be one of: upload-only, install'] }],
    });
    expect(r.clusters.require).not.toHaveBeenCalled();
    expectNothingStored(r);
  });

  it('refuses upgrade fields without mode=install, saying where they go', async () => {
    const r = rig();

    const error = await refusalOf(r.accept(anUpload({ mode: 'upload-only', target: '{"all": true}' })));

    expect(error).toMatchObject({
      status: 400,
      message: 'Unknown form fields: target; remove them (target, policy, options, scheduledAt go with mode=install).',
      details: [{ field: 'target', problems: ['target is not a known field; remove it'] }],
    });
    expectNothingStored(r);
  });

  it('refuses a manifest for another product with 422 PRODUCT_MISMATCH naming both', async () => {
    const r = rig();

    const error = await refusalOf(r.accept(anUpload(undefined, 'other-product')));

    expect(error).toBeInstanceOf(UnprocessableError);
    expect(error).toMatchObject({
      status: 422,
      code: 'PRODUCT_MISMATCH',
      message: 'The package is for product other-product, but cluster prod runs acme-agent.',
      details: { packageProduct: 'other-product', clusterProduct: 'acme-agent' },
    });
    expectNothingStored(r);
  });

  it('answers the same bytes again with the package they made: created false, no new row, no file stored', async () => {
    const r = rig();
    const existing = aPackage({ id: 'package-1', sha256: SHA });
    r.packages.findBySha256.mockResolvedValue(existing);

    const accepted = await r.accept(anUpload());

    expect(r.packages.findBySha256).toHaveBeenCalledWith('cluster-1', SHA);
    expect(accepted).toEqual({ created: false, pkg: expect.objectContaining({ id: 'package-1' }) });
    expect(accepted).not.toHaveProperty('installed');
    // Not even the prerequisites: the package exists already, whatever the agents are now.
    expect(r.agents.inventory).not.toHaveBeenCalled();
    // One transaction, for the call's audit record only: no row, no event, no file.
    expect(r.db.transactions.map((tx) => tx.state)).toEqual(['committed']);
    expect(r.packages.insert).not.toHaveBeenCalled();
    expect(r.events.append).not.toHaveBeenCalled();
    expect(r.store.commit).not.toHaveBeenCalled();
  });

  it('refuses a package its cluster’s agents fail with 422 PREREQUISITES_UNMET, per agent and check, storing nothing', async () => {
    const r = rig();
    r.agents.inventory.mockResolvedValue([
      anAgent({ version: '10.0.5' }),
      anAgent({ id: 'agent-b', name: 'bravo', version: '10.2.1', facts: { freeDiskMb: 100 } }),
      anAgent({ id: 'agent-c', name: 'charlie', version: '10.2.1', facts: {} }),
    ]);

    const error = await refusalOf(r.accept(anUpload()));

    expect(error).toMatchObject({
      status: 422,
      code: 'PREREQUISITES_UNMET',
      message: "2 agents of the cluster fail the package's prerequisites; see details for each check.",
      details: {
        failures: [
          {
            agentId: 'agent-a',
            agentName: 'alpha',
            check: 'fromVersion',
            required: '>=10.1.0 <10.3.0',
            actual: '10.0.5',
          },
          {
            agentId: 'agent-b',
            agentName: 'bravo',
            check: 'minFreeDiskMb',
            required: '512 MB free',
            actual: '100 MB free',
          },
        ],
        // An agent whose disk space is unknown is not a refusal (docs/packages.md).
        warnings: [expect.objectContaining({ agentId: 'agent-c', check: 'minFreeDiskMb' })],
      },
    });
    expectNothingStored(r);
  });

  describe('mode=install', () => {
    const install = () => anUpload({ mode: 'install', target: '{"all": true}' });

    it('creates the upgrade in the transaction that inserts the package, and answers both', async () => {
      const r = rig();

      const accepted = await r.accept(install());

      const tx = r.db.only();
      expect(tx.state).toBe('committed');
      const [em, row] = r.packages.insert.mock.calls[0];
      expect(em).toBe(tx.em);
      expect(r.installer.install).toHaveBeenCalledWith(tx, row, { target: { all: true } });
      expect(accepted).toEqual({
        created: true,
        pkg: expect.objectContaining({ id: row.id }),
        installed: { upgradeId: 'upgrade-1' },
      });
    });

    it('checks the upgrade fields before the archive is stored; refused, nothing is', async () => {
      const r = rig();
      r.installer.parse.mockRejectedValue(new BadInputError('Invalid upgrade fields: target must name agents.'));

      await expect(r.accept(install())).rejects.toMatchObject({ status: 400 });

      expect(r.installer.parse).toHaveBeenCalledWith({ mode: 'install', target: '{"all": true}' });
      expectNothingStored(r);
    });

    it('a refused upgrade leaves no package: the transaction rolls back and the stored file is removed', async () => {
      const r = rig();
      r.installer.install.mockRejectedValue(new UnprocessableError('UPGRADE_REFUSED', 'the plan refuses it'));

      await expect(r.accept(install())).rejects.toMatchObject({ code: 'UPGRADE_REFUSED' });

      expect(r.db.only().state).toBe('rolled-back');
      expect(r.store.removeStored).toHaveBeenCalledWith(SHA);
      expect(r.store.removeTemp).toHaveBeenCalledWith('/data/tmp/upload-1');
    });

    it('keeps the stored file another package already had when the upgrade is refused', async () => {
      const r = rig();
      r.store.exists.mockResolvedValue(true);
      r.installer.install.mockRejectedValue(new UnprocessableError('UPGRADE_REFUSED', 'the plan refuses it'));

      await expect(r.accept(install())).rejects.toMatchObject({ code: 'UPGRADE_REFUSED' });

      expect(r.store.removeStored).not.toHaveBeenCalled();
    });

    it('the same bytes again install on the existing package, in a transaction of their own, with no new row', async () => {
      const r = rig();
      const existing = aPackage({ id: 'package-1', sha256: SHA });
      r.rows.set(existing.id, existing);
      r.packages.findBySha256.mockResolvedValue(existing);

      const accepted = await r.accept(install());

      const tx = r.db.only();
      expect(r.installer.install).toHaveBeenCalledWith(tx, existing, { target: { all: true } });
      expect(accepted).toMatchObject({
        created: false,
        pkg: { id: 'package-1' },
        installed: { upgradeId: 'upgrade-1' },
      });
      expect(r.packages.insert).not.toHaveBeenCalled();
      expect(calledMethods(r.store)).toEqual(['removeTemp']);
    });
  });
});

describe('PackagesService.accept: signatures (docs/packages.md, "Signing")', () => {
  const pair = () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    return {
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
  };
  const registered = pair();
  const key = Object.assign(new SigningKey(), {
    id: 'key-1',
    clusterId: 'cluster-1',
    name: 'release',
    publicKey: registered.publicKey,
    fingerprint: 'f'.repeat(64),
    createdAt: T0,
    createdByTokenId: 'token-1',
  });
  const signedRig = (requireSignedPackages: boolean) => {
    const r = rig();
    r.clusters.require.mockResolvedValue(aCluster({ requireSignedPackages }));
    r.signingKeys.keysOf.mockResolvedValue([key]);
    return r;
  };

  it('stores a package whose signature a key of the cluster verifies, with that key', async () => {
    const r = signedRig(true);
    const signature = signPackage(SHA, registered.privateKey);

    const accepted = await r.accept(anUpload({ mode: 'upload-only', signature }));

    expect(r.packages.insert.mock.calls[0][1]).toMatchObject({
      signature,
      signingKeyId: 'key-1',
      signingKeyName: 'release',
    });
    expect(accepted.pkg).toMatchObject({ signed: true, signingKey: { id: 'key-1', name: 'release' } });
  });

  it('refuses an unsigned package with 422 SIGNATURE_REQUIRED where signatures are required', async () => {
    const r = signedRig(true);

    const error = await refusalOf(r.accept(anUpload()));

    expect(error).toMatchObject({ status: 422, code: 'SIGNATURE_REQUIRED', details: { field: 'signature' } });
    expect(error.message).toContain('form field "signature"');
    expectNothingStored(r);
  });

  it('checks again where it stores: signatures required meanwhile refuse the unsigned upload, and nothing is left', async () => {
    const r = signedRig(false);
    // An admin turned the requirement on between the first check and the storing transaction.
    r.signingKeys.lockCluster.mockResolvedValue(aCluster({ requireSignedPackages: true }));

    const error = await refusalOf(r.accept(anUpload()));

    expect(error).toMatchObject({ status: 422, code: 'SIGNATURE_REQUIRED' });
    expect(r.db.only().state).toBe('rolled-back');
    expect(r.store.removeStored).toHaveBeenCalledWith(SHA);
  });

  it('stores an unsigned package where signatures are not required, as unsigned', async () => {
    const r = signedRig(false);

    const accepted = await r.accept(anUpload());

    expect(accepted.pkg).toMatchObject({ signed: false, signingKey: null });
  });

  it.each([
    ['an unknown key', () => signPackage(SHA, pair().privateKey)],
    ['a changed package', () => signPackage('c'.repeat(64), registered.privateKey)],
  ])('refuses a signature by %s with 422 SIGNATURE_INVALID, required or not', async (_case, signature) => {
    for (const required of [true, false]) {
      const r = signedRig(required);

      const error = await refusalOf(r.accept(anUpload({ mode: 'upload-only', signature: signature() })));

      expect(error).toMatchObject({ status: 422, code: 'SIGNATURE_INVALID', details: { field: 'signature' } });
      expect(error.message).toMatch(/not registered in this cluster.*changed after it was signed/);
      expectNothingStored(r);
    }
  });

  it('refuses a malformed signature with 400 naming the field', async () => {
    const r = signedRig(true);

    const error = await refusalOf(r.accept(anUpload({ mode: 'upload-only', signature: 'not base64!' })));

    expect(error).toMatchObject({ status: 400, code: 'SIGNATURE_MALFORMED', details: [{ field: 'signature' }] });
    expectNothingStored(r);
  });
});
