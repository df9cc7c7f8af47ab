import { createHash, randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConflictError } from '../src/common/errors';
import { Package } from '../src/packages/package.entity';
import { PackagesService } from '../src/packages/packages.service';
import { ProgressEvent } from '../src/progress/progress-event.entity';
import { packageArchive, tarGz } from './support/archives';
import { givenAgent, givenCluster, givenPairedAgent } from './support/builders';
import { describeEachDatabase, TestApp } from './support/test-app';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describeEachDatabase('packages', (kind) => {
  let t: TestApp;
  let operator: string;
  beforeAll(async () => {
    t = await TestApp.start(kind, { env: { MAX_PACKAGE_BYTES: String(256 * 1024), PACKAGE_MAX_ENTRIES: '50' } });
    operator = await t.tokenFor('operator');
  });
  afterAll(() => t.close());

  const upload = (clusterId: string, archive: Buffer, mode = 'upload-only') =>
    t
      .as(operator)
      .post(`/api/v1/clusters/${clusterId}/packages`)
      .field('mode', mode)
      .attach('file', archive, 'package.tar.gz');
  const storeDir = () => path.join(t.dataDir, 'packages', 'store');
  const tmpDir = () => path.join(t.dataDir, 'packages', 'tmp');

  /** A refusal must leave no row, no stored file and no temporary file. */
  async function expectNothingStored(clusterId: string) {
    expect(await t.db.reader.countBy(Package, { clusterId })).toBe(0);
    expect(fs.readdirSync(tmpDir())).toEqual([]);
  }

  it('stores a valid upload under its sha256, as history, with an event', async () => {
    const c = await givenCluster(t);
    await givenPairedAgent(t, c.id, {}, { version: '1.0.0', facts: { os: 'linux', freeDiskMb: 5000 } });
    const archive = packageArchive();
    const res = await upload(c.id, archive).expect(201);
    expect(res.body).toMatchObject({
      clusterId: c.id,
      product: 'acme-agent',
      version: '1.1.0',
      kind: 'full',
      status: 'available',
      sha256: sha256(archive),
      size: archive.length,
      migration: 'migrate.js',
      completedAt: null,
      usedByUpgradeId: null,
      warnings: [],
    });
    expect(fs.readFileSync(path.join(storeDir(), `${sha256(archive)}.tar.gz`)).equals(archive)).toBe(true);
    expect(fs.readdirSync(tmpDir())).toEqual([]);
    const events = await t.db.reader.findBy(ProgressEvent, { clusterId: c.id, type: 'package.status' });
    expect(events.map((e) => e.data)).toEqual([
      expect.objectContaining({ packageId: res.body.id, status: 'available' }),
    ]);
    await t.as(operator).get(`/api/v1/packages/${res.body.id}`).expect(200);
  });

  it('answers the same bytes again with the existing package, and makes one of two at once', async () => {
    const c = await givenCluster(t);
    const archive = packageArchive({ notes: 'again' });
    const first = await upload(c.id, archive).expect(201);
    const again = await upload(c.id, archive).expect(200);
    expect(again.body.id).toBe(first.body.id);

    const twin = packageArchive({ notes: 'twins' });
    const both = await Promise.all([upload(c.id, twin), upload(c.id, twin)]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 201]);
    expect(both[0].body.id).toBe(both[1].body.id);
    expect(await t.db.reader.countBy(Package, { clusterId: c.id, sha256: sha256(twin) })).toBe(1);
  });

  it.each([
    ['not gzip', () => Buffer.from('just some text, not an archive'), 400, 'NOT_GZIP'],
    ['gzip but not tar', () => require('node:zlib').gzipSync(Buffer.from('x'.repeat(2000))), 400, 'NOT_TAR'],
    [
      'no manifest.json at the root',
      () =>
        tarGz([
          { path: './bin/app.js', body: 'x' },
          { path: './sub/manifest.json', body: '{}' },
        ]),
      400,
      'NO_MANIFEST',
    ],
    ['an absolute entry', () => packageArchive({}, [{ path: '/etc/cron.d/evil', body: 'x' }]), 400, 'UNSAFE_ENTRY'],
    ['an entry that climbs out', () => packageArchive({}, [{ path: './../../evil', body: 'x' }]), 400, 'UNSAFE_ENTRY'],
    [
      'a link pointing out',
      () => packageArchive({}, [{ path: './bin/evil', type: 'SymbolicLink', linkpath: '../../etc/shadow' }]),
      400,
      'UNSAFE_ENTRY',
    ],
    ['a device', () => packageArchive({}, [{ path: './dev-null', type: 'CharacterDevice' }]), 400, 'UNSAFE_ENTRY'],
    [
      'too many entries (an archive bomb)',
      () =>
        packageArchive(
          {},
          Array.from({ length: 60 }, (_, i) => ({ path: `./f${i}`, body: 'x' })),
        ),
      400,
      'ARCHIVE_TOO_LARGE',
    ],
    ['a product other than the cluster’s', () => packageArchive({ product: 'other-product' }), 422, 'PRODUCT_MISMATCH'],
  ])('refuses %s, storing nothing', async (_case, archive, status, code) => {
    const c = await givenCluster(t);
    const res = await upload(c.id, archive()).expect(status);
    expect(res.body.code).toBe(code);
    expect(res.body.message).toEqual(expect.any(String));
    await expectNothingStored(c.id);
  });

  it('names every invalid manifest field', async () => {
    const c = await givenCluster(t);
    const archive = tarGz([
      {
        path: 'manifest.json',
        body: JSON.stringify({
          product: 'acme-agent',
          version: '1.1',
          kind: 'partial',
          prerequisites: { fromVersion: 'soon' },
          migration: 'missing.js',
        }),
      },
    ]);
    const res = await upload(c.id, archive).expect(400);
    expect(res.body.code).toBe('MANIFEST_INVALID');
    expect(res.body.details.map((d: { field: string }) => d.field).sort()).toEqual([
      'manifest.kind',
      'manifest.migration',
      'manifest.prerequisites.fromVersion',
      'manifest.version',
    ]);
    await expectNothingStored(c.id);
  });

  it('refuses a package above MAX_PACKAGE_BYTES with 413, stopping the upload', async () => {
    const c = await givenCluster(t);
    const big = tarGz([
      { path: 'manifest.json', body: '{}' },
      { path: 'noise.bin', body: randomBytes(400 * 1024) },
    ]);
    const res = await upload(c.id, big).expect(413);
    expect(res.body).toMatchObject({ code: 'PACKAGE_TOO_LARGE', message: expect.stringMatching(/262144 bytes/) });
    await expectNothingStored(c.id);
  });

  it('lists each agent that fails a prerequisite, with what was required and what it has', async () => {
    const c = await givenCluster(t);
    const { registered: old } = await givenPairedAgent(
      t,
      c.id,
      {},
      { version: '0.9.0', facts: { os: 'linux', freeDiskMb: 5000 } },
    );
    const { registered: small } = await givenPairedAgent(
      t,
      c.id,
      {},
      { version: '1.0.0', facts: { os: 'windows', freeDiskMb: 10 } },
    );
    const res = await upload(
      c.id,
      packageArchive({ prerequisites: { fromVersion: '>=1.0.0 <1.1.0', minFreeDiskMb: 512, os: ['linux'] } }),
    ).expect(422);
    expect(res.body.code).toBe('PREREQUISITES_UNMET');
    expect(res.body.details.failures).toEqual([
      { agentId: old.id, agentName: old.name, check: 'fromVersion', required: '>=1.0.0 <1.1.0', actual: '0.9.0' },
      {
        agentId: small.id,
        agentName: small.name,
        check: 'minFreeDiskMb',
        required: '512 MB free',
        actual: '10 MB free',
      },
      { agentId: small.id, agentName: small.name, check: 'os', required: 'linux', actual: 'windows' },
    ]);
    await expectNothingStored(c.id);
  });

  it('accepts a package with warnings for agents whose version or facts are unknown', async () => {
    const c = await givenCluster(t);
    const unpaired = await givenAgent(t, c.id);
    const res = await upload(
      c.id,
      packageArchive({ prerequisites: { fromVersion: '>=1.0.0 <1.1.0', minFreeDiskMb: 512 } }),
    ).expect(201);
    expect(res.body.warnings).toEqual([
      { agentId: unpaired.id, agentName: unpaired.name, check: 'fromVersion', reason: 'version unknown' },
      { agentId: unpaired.id, agentName: unpaired.name, check: 'minFreeDiskMb', reason: 'free disk space unknown' },
    ]);
  });

  it('checks a webapps package’s fromVersion against the core version', async () => {
    const c = await givenCluster(t);
    await givenPairedAgent(t, c.id, {}, { version: '1.1.0', webappsVersion: '1.0.0' });
    const webapps = (fromVersion: string) =>
      packageArchive({ kind: 'webapps', version: '1.1.5', prerequisites: { fromVersion }, notes: fromVersion });
    const ok = await upload(c.id, webapps('>=1.1.0 <1.2.0')).expect(201);
    expect(ok.body.kind).toBe('webapps');
    const refused = await upload(c.id, webapps('>=1.0.0 <1.1.0')).expect(422);
    expect(refused.body.details.failures[0]).toMatchObject({ check: 'fromVersion', actual: '1.1.0' });
  });

  it('refuses a bad or missing mode, bad upgrade fields, and an upload without a file', async () => {
    const c = await givenCluster(t);
    const badMode = await upload(c.id, packageArchive(), 'later').expect(400);
    expect(badMode.body.details).toEqual([{ field: 'mode', problems: ['mode must be one of: upload-only, install'] }]);
    const badOptions = await t
      .as(operator)
      .post(`/api/v1/clusters/${c.id}/packages`)
      .field('mode', 'install')
      .field('options', '{"maxParallel": -1}')
      .attach('file', packageArchive(), 'p.tar.gz')
      .expect(400);
    expect(badOptions.body.details.map((d: { field: string }) => d.field)).toEqual(['options.maxParallel']);
    const notJson = await t
      .as(operator)
      .post(`/api/v1/clusters/${c.id}/packages`)
      .field('mode', 'install')
      .field('target', 'all')
      .attach('file', packageArchive(), 'p.tar.gz')
      .expect(400);
    expect(notJson.body.details).toEqual([{ field: 'target', problems: ['target must be JSON'] }]);
    const upgradeFieldWithoutInstall = await t
      .as(operator)
      .post(`/api/v1/clusters/${c.id}/packages`)
      .field('mode', 'upload-only')
      .field('policy', 'simultaneous')
      .attach('file', packageArchive(), 'p.tar.gz')
      .expect(400);
    expect(upgradeFieldWithoutInstall.body.message).toMatch(/go with mode=install/);
    const noFile = await t
      .as(operator)
      .post(`/api/v1/clusters/${c.id}/packages`)
      .field('mode', 'upload-only')
      .expect(400);
    expect(noFile.body.details[0].field).toBe('file');
    const json = await t
      .as(operator)
      .post(`/api/v1/clusters/${c.id}/packages`)
      .send({ mode: 'upload-only' })
      .expect(400);
    expect(json.body.details[0].field).toBe('file');
    await expectNothingStored(c.id);
  });

  it('keeps history newest first, filters it, and deletes only available packages', async () => {
    const c = await givenCluster(t);
    const a = (await upload(c.id, packageArchive({ version: '1.1.0', notes: 'a' })).expect(201)).body;
    const b = (await upload(c.id, packageArchive({ version: '1.1.1', kind: 'webapps', notes: 'b' })).expect(201)).body;
    const list = await t.as(operator).get(`/api/v1/clusters/${c.id}/packages`).expect(200);
    expect(list.body.items.map((p: { id: string }) => p.id)).toEqual([b.id, a.id]);
    const webapps = await t.as(operator).get(`/api/v1/clusters/${c.id}/packages?kind=webapps`).expect(200);
    expect(webapps.body.items.map((p: { id: string }) => p.id)).toEqual([b.id]);
    await t.as(operator).delete(`/api/v1/packages/${a.id}`).expect(204);
    await t.as(operator).get(`/api/v1/packages/${a.id}`).expect(404);
    expect(fs.existsSync(path.join(storeDir(), `${a.sha256}.tar.gz`))).toBe(false);
    // Completed packages stay as history: the status check is the one an upgrade makes (issue 5).
    await t.db.transaction((tx) => tx.em.update(Package, { id: b.id }, { status: 'completed' }));
    const refused = await t.as(operator).delete(`/api/v1/packages/${b.id}`).expect(409);
    expect(refused.body.code).toBe('PACKAGE_NOT_AVAILABLE');
  });

  it('lets exactly one of two upgrades racing for a package use it; the other gets 409 naming the winner', async () => {
    const c = await givenCluster(t);
    const pkg = (await upload(c.id, packageArchive({ notes: 'race' })).expect(201)).body;
    const service = t.app.get(PackagesService);
    const upgrades = [randomUUID(), randomUUID(), randomUUID()];
    const outcomes = await Promise.allSettled(
      upgrades.map((u) => t.db.transaction((tx) => service.complete(tx, pkg.id, u))),
    );
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(won).toHaveLength(1);
    const row = await t.db.reader.findOneByOrFail(Package, { id: pkg.id });
    expect(row).toMatchObject({ status: 'completed', usedByUpgradeId: expect.any(String) });
    for (const refusal of lost) {
      expect(refusal.reason).toBeInstanceOf(ConflictError);
      expect(refusal.reason).toMatchObject({ code: 'PACKAGE_USED', details: { upgradeId: row.usedByUpgradeId } });
    }
    const shown = await t.as(operator).get(`/api/v1/packages/${pkg.id}`).expect(200);
    expect(shown.body).toMatchObject({
      status: 'completed',
      usedByUpgradeId: row.usedByUpgradeId,
      completedAt: expect.any(String),
    });
  });

  it('reserves for a scheduled upgrade, releases on cancel, and completes only for the holder', async () => {
    const c = await givenCluster(t);
    const pkg = (await upload(c.id, packageArchive({ notes: 'reserve' })).expect(201)).body;
    const service = t.app.get(PackagesService);
    const [holder, other] = [randomUUID(), randomUUID()];
    await t.db.transaction((tx) => service.reserve(tx, pkg.id, holder));
    await expect(t.db.transaction((tx) => service.reserve(tx, pkg.id, other))).rejects.toMatchObject({
      code: 'PACKAGE_RESERVED',
      details: { upgradeId: holder },
    });
    await expect(t.db.transaction((tx) => service.complete(tx, pkg.id, other))).rejects.toMatchObject({
      code: 'PACKAGE_RESERVED',
    });
    await t.as(operator).delete(`/api/v1/packages/${pkg.id}`).expect(409);
    await t.db.transaction((tx) => service.release(tx, pkg.id, holder));
    expect((await t.db.reader.findOneByOrFail(Package, { id: pkg.id })).status).toBe('available');
    await t.db.transaction((tx) => service.reserve(tx, pkg.id, holder));
    await t.db.transaction((tx) => service.complete(tx, pkg.id, holder));
    const events = await t.db.reader.find(ProgressEvent, {
      where: { clusterId: c.id, type: 'package.status' },
      order: { id: 'ASC' },
    });
    expect(events.map((e) => e.data.status)).toEqual(['available', 'reserved', 'available', 'reserved', 'completed']);
  });

  it('serves the file to agents of its cluster, in byte ranges that resume to the right sha256', async () => {
    const c = await givenCluster(t);
    const { agent } = await givenPairedAgent(t, c.id);
    const archive = packageArchive({ notes: 'download' }, [{ path: './payload.bin', body: randomBytes(40 * 1024) }]);
    const pkg = (await upload(c.id, archive).expect(201)).body;
    const url = `/api/v1/agent/packages/${pkg.id}/content`;

    const auth = { Authorization: `Bearer ${agent.token}` };
    const whole = await fetch(t.baseUrl + url, { headers: auth });
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-length')).toBe(String(archive.length));
    expect(whole.headers.get('etag')).toBe(`"${pkg.sha256}"`);
    expect(whole.headers.get('x-content-sha256')).toBe(pkg.sha256);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(sha256(Buffer.from(await whole.arrayBuffer()))).toBe(pkg.sha256);

    // A download cut at 10,000 bytes resumes from there.
    const first = await fetch(t.baseUrl + url, { headers: { ...auth, Range: 'bytes=0-9999' } });
    expect(first.status).toBe(206);
    const head = Buffer.from(await first.arrayBuffer());
    expect(head.length).toBe(10000);
    const rest = await fetch(t.baseUrl + url, {
      headers: { ...auth, Range: 'bytes=10000-', 'If-Range': `"${pkg.sha256}"` },
    });
    expect(rest.status).toBe(206);
    expect(rest.headers.get('content-range')).toBe(`bytes 10000-${archive.length - 1}/${archive.length}`);
    expect(sha256(Buffer.concat([head, Buffer.from(await rest.arrayBuffer())]))).toBe(pkg.sha256);
    const beyond = await fetch(t.baseUrl + url, { headers: { ...auth, Range: `bytes=${archive.length + 10}-` } });
    expect(beyond.status).toBe(416);
    // A range asked for under an If-Range that no longer matches is ignored: the whole package, even when the range is beyond it.
    const stale = await fetch(t.baseUrl + url, {
      headers: { ...auth, Range: `bytes=${archive.length + 10}-`, 'If-Range': '"an-older-package"' },
    });
    expect(stale.status).toBe(200);
    expect(sha256(Buffer.from(await stale.arrayBuffer()))).toBe(pkg.sha256);

    const other = await givenCluster(t);
    const { agent: stranger } = await givenPairedAgent(t, other.id);
    const refused = await t.as(stranger.token).get(url).expect(403);
    expect(refused.body.code).toBe('OTHER_CLUSTER');
    await t.as(operator).get(url).expect(403);
  });
});
