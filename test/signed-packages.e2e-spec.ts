import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildPackage, signArchive } from '../src/agent/build-package';
import { Package } from '../src/packages/package.entity';
import { SigningKey } from '../src/cluster/signing-key.entity';
import { parsePublicKey, signPackage } from '../src/protocol/package-signing';
import { AgentProcess } from './support/agent-process';
import { packageArchive } from './support/archives';
import { givenAgent, givenCluster } from './support/builders';
import { eventually } from './support/sse-client';
import { describeEachDatabase, TestApp } from './support/test-app';

const SAMPLE = path.resolve(__dirname, '..', 'src', 'agent', 'sample-product');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function keyPair() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** Issue 16, signed packages: the server refuses what does not verify, and so does a real agent. */
describeEachDatabase('signed packages', (kind) => {
  let t: TestApp;
  let operator: string;
  let work: string;
  const agents: AgentProcess[] = [];
  beforeAll(async () => {
    t = await TestApp.start(kind, { env: { HEARTBEAT_TIMEOUT_S: '5' } });
    operator = await t.tokenFor('operator');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-signed-'));
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await t.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const upload = (clusterId: string, archive: Buffer, signature?: string, signatureFirst = false) => {
    let req = t.as(operator).post(`/api/v1/clusters/${clusterId}/packages`);
    if (signature !== undefined && signatureFirst) req = req.field('signature', signature);
    req = req.field('mode', 'upload-only').attach('file', archive, 'package.tar.gz');
    if (signature !== undefined && !signatureFirst) req = req.field('signature', signature);
    return req;
  };
  const storeDir = () => path.join(t.dataDir, 'packages', 'store');
  const stored = (archive: Buffer) => fs.existsSync(path.join(storeDir(), `${sha256(archive)}.tar.gz`));
  const register = (clusterId: string, name: string, publicKey: string) =>
    t.admin.post(`/api/v1/clusters/${clusterId}/signing-keys`).send({ name, publicKey });

  async function signedCluster() {
    const c = await givenCluster(t);
    const release = keyPair();
    const key = (await register(c.id, 'release', release.publicKey).expect(201)).body;
    await t.admin.patch(`/api/v1/clusters/${c.id}`).send({ requireSignedPackages: true }).expect(200);
    return { c, release, key };
  }

  async function expectNothingStored(clusterId: string, archive: Buffer) {
    expect(await t.db.reader.countBy(Package, { clusterId })).toBe(0);
    expect(stored(archive)).toBe(false);
    expect(fs.readdirSync(path.join(t.dataDir, 'packages', 'tmp'))).toEqual([]);
  }

  it('registers, lists and deletes Ed25519 keys; refuses other keys, and a requirement without a key', async () => {
    const c = await givenCluster(t);
    expect((await t.admin.get(`/api/v1/clusters/${c.id}`).expect(200)).body.requireSignedPackages).toBe(false);
    const none = await t.admin.patch(`/api/v1/clusters/${c.id}`).send({ requireSignedPackages: true }).expect(409);
    expect(none.body).toMatchObject({ code: 'NO_SIGNING_KEY' });
    expect(none.body.message).toContain('register one first');

    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' });
    const refused = await register(c.id, 'rsa', rsa.toString()).expect(400);
    expect(refused.body.details).toEqual([
      { field: 'publicKey', problems: ['publicKey must be an Ed25519 key, not rsa'] },
    ]);
    await register(c.id, 'garbage', 'hello').expect(400);

    const pair = keyPair();
    const created = await register(c.id, 'release', pair.publicKey).expect(201);
    expect(created.body).toMatchObject({ name: 'release', publicKey: pair.publicKey, clusterId: c.id });
    expect(created.body.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect((await register(c.id, 'release', keyPair().publicKey).expect(409)).body.code).toBe('SIGNING_KEY_NAME_TAKEN');
    expect((await register(c.id, 'again', pair.publicKey).expect(409)).body.code).toBe('SIGNING_KEY_EXISTS');
    expect((await t.as(operator).get(`/api/v1/clusters/${c.id}/signing-keys`).expect(200)).body).toEqual([
      created.body,
    ]);
    await t
      .as(operator)
      .post(`/api/v1/clusters/${c.id}/signing-keys`)
      .send({ name: 'x', publicKey: pair.publicKey })
      .expect(403);

    const on = await t.admin.patch(`/api/v1/clusters/${c.id}`).send({ requireSignedPackages: true }).expect(200);
    expect(on.body.requireSignedPackages).toBe(true);
    const last = await t.admin.delete(`/api/v1/clusters/${c.id}/signing-keys/${created.body.id}`).expect(409);
    expect(last.body.code).toBe('LAST_SIGNING_KEY');
    await t.admin.patch(`/api/v1/clusters/${c.id}`).send({ requireSignedPackages: false }).expect(200);
    await t.admin.delete(`/api/v1/clusters/${c.id}/signing-keys/${created.body.id}`).expect(204);
    expect((await t.admin.get(`/api/v1/clusters/${c.id}/signing-keys`).expect(200)).body).toEqual([]);
  });

  it('refuses an unsigned package where signatures are required: 422 SIGNATURE_REQUIRED, nothing stored', async () => {
    const { c } = await signedCluster();
    const archive = packageArchive({ notes: 'unsigned' });
    const res = await upload(c.id, archive).expect(422);
    expect(res.body).toMatchObject({ code: 'SIGNATURE_REQUIRED', details: { field: 'signature' } });
    expect(res.body.message).toMatch(/requires signed packages.*form field "signature"/);
    await expectNothingStored(c.id, archive);
  });

  it('refuses a package signed by a key the cluster does not know: 422 SIGNATURE_INVALID, nothing stored', async () => {
    const { c } = await signedCluster();
    const archive = packageArchive({ notes: 'unknown key' });
    const res = await upload(c.id, archive, signPackage(sha256(archive), keyPair().privateKey)).expect(422);
    expect(res.body).toMatchObject({ code: 'SIGNATURE_INVALID', details: { field: 'signature', keys: ['release'] } });
    expect(res.body.message).toMatch(/not registered in this cluster.*changed after it was signed/);
    await expectNothingStored(c.id, archive);
  });

  it('refuses a package changed after it was signed: 422 SIGNATURE_INVALID, nothing stored', async () => {
    const { c, release } = await signedCluster();
    const original = packageArchive({ notes: 'original' });
    const tampered = packageArchive({ notes: 'tampered' });
    const res = await upload(c.id, tampered, signPackage(sha256(original), release.privateKey), true).expect(422);
    expect(res.body.code).toBe('SIGNATURE_INVALID');
    await expectNothingStored(c.id, tampered);
  });

  it('refuses a malformed signature with 400 naming the field, and a bad signature even where none is required', async () => {
    const c = await givenCluster(t);
    await register(c.id, 'release', keyPair().publicKey).expect(201);
    const archive = packageArchive({ notes: 'malformed' });
    const malformed = await upload(c.id, archive, 'not-a-signature').expect(400);
    expect(malformed.body).toMatchObject({ code: 'SIGNATURE_MALFORMED', details: [{ field: 'signature' }] });
    await upload(c.id, archive, signPackage(sha256(archive), keyPair().privateKey)).expect(422);
    await expectNothingStored(c.id, archive);
    // Unsigned is fine here, and shown as such.
    const unsigned = await upload(c.id, archive).expect(201);
    expect(unsigned.body).toMatchObject({ signed: false, signingKey: null });
  });

  it('accepts a properly signed package (signature before or after the file) and shows the key', async () => {
    const { c, release, key } = await signedCluster();
    const archive = packageArchive({ notes: 'signed' });
    const signature = signPackage(sha256(archive), release.privateKey);
    const res = await upload(c.id, archive, signature).expect(201);
    expect(res.body).toMatchObject({ signed: true, signingKey: { id: key.id, name: 'release' } });
    expect(stored(archive)).toBe(true);
    const again = await upload(c.id, archive, signature, true).expect(200);
    expect(again.body.id).toBe(res.body.id);
    expect((await t.admin.get(`/api/v1/packages/${res.body.id}`).expect(200)).body.signingKey.name).toBe('release');
    expect(await t.db.reader.findOneBy(Package, { id: res.body.id })).toMatchObject({ signature });
  });

  it('refuses an upgrade of a package its agents would refuse: unsigned where now required, or signed by a deleted key', async () => {
    const c = await givenCluster(t);
    const release = keyPair();
    const old = (await upload(c.id, packageArchive({ version: '1.1.0' })).expect(201)).body;
    const key = (await register(c.id, 'release', release.publicKey).expect(201)).body;
    const archive = packageArchive({ version: '1.2.0' });
    const signed = (await upload(c.id, archive, signPackage(sha256(archive), release.privateKey)).expect(201)).body;
    await t.admin.patch(`/api/v1/clusters/${c.id}`).send({ requireSignedPackages: true }).expect(200);
    const create = (packageId: string) =>
      t
        .as(operator)
        .post(`/api/v1/clusters/${c.id}/upgrades`)
        .send({ packageId, target: { all: true } });

    const unsigned = await create(old.id).expect(422);
    expect(unsigned.body).toMatchObject({ code: 'PACKAGE_UNSIGNED', message: expect.stringContaining('unsigned') });
    await t.admin.patch(`/api/v1/clusters/${c.id}`).send({ requireSignedPackages: false }).expect(200);
    await t.admin.delete(`/api/v1/clusters/${c.id}/signing-keys/${key.id}`).expect(204);
    const removed = await create(signed.id).expect(422);
    expect(removed.body).toMatchObject({ code: 'PACKAGE_KEY_REMOVED', message: expect.stringContaining('"release"') });
    expect((await t.admin.get(`/api/v1/clusters/${c.id}/upgrades`).expect(200)).body.total).toBe(0);
  });

  it('sends agents the policy on pairing, and on heartbeats only when their revision is out of date', async () => {
    const { c, key } = await signedCluster();
    const registered = await givenAgent(t, c.id);
    const paired = await t.admin.post('/api/v1/agent/pair').send({ pairingKey: registered.pairingKey }).expect(201);
    const signing = paired.body.signing;
    expect(signing).toMatchObject({
      requireSignedPackages: true,
      keys: [{ id: key.id, name: 'release', publicKey: key.publicKey }],
    });
    const beat = (signingRevision?: number) =>
      t
        .as(paired.body.token)
        .post('/api/v1/agent/heartbeat')
        .send({ version: '1.0.0', busy: false, ...(signingRevision === undefined ? {} : { signingRevision }) })
        .expect(200);
    expect((await beat(signing.revision)).body.signing).toBeUndefined();
    expect((await beat()).body.signing).toBeUndefined();
    expect((await beat(0)).body.signing).toEqual(signing);
    await register(c.id, 'second', keyPair().publicKey).expect(201);
    const changed = (await beat(signing.revision)).body.signing;
    expect(changed.revision).toBeGreaterThan(signing.revision);
    expect(changed.keys.map((k: { name: string }) => k.name)).toEqual(['release', 'second']);
  });

  it('a real reference agent installs a signed package with a key it got on a heartbeat, and refuses one whose signature does not verify, even served by the server', async () => {
    const { c } = await signedCluster();
    const registered = await givenAgent(t, c.id, { name: 'signed-agent' });
    const seed = await buildPackage({
      dir: SAMPLE,
      product: 'acme-agent',
      version: '1.0.0',
      migration: 'migrate.js',
      out: path.join(work, `seed-${kind}.tar.gz`),
    });
    const home = path.join(work, `home-${kind}`);
    fs.mkdirSync(path.join(home, 'data'), { recursive: true });
    fs.writeFileSync(path.join(home, 'data', 'records.json'), JSON.stringify({ schema: '1.0.0', records: [] }));
    const agent = new AgentProcess({ server: t.baseUrl, pairingKey: registered.pairingKey, home, seed });
    agents.push(agent);
    await eventually(
      async () => (await t.admin.get(`/api/v1/agents/${registered.id}`)).body.version === '1.0.0',
      'the agent paired and reporting 1.0.0',
      30_000,
    );

    // A key registered after pairing reaches the agent on a heartbeat.
    const later = keyPair();
    await register(c.id, 'later', later.publicKey).expect(201);
    await eventually(
      () =>
        fs.existsSync(path.join(home, 'signing.json')) &&
        JSON.parse(fs.readFileSync(path.join(home, 'signing.json'), 'utf8')).keys.length === 2,
      'the agent to hold both keys',
      15_000,
    );
    const uploadSigned = async (version: string, key: string) => {
      const file = await buildPackage({
        dir: SAMPLE,
        product: 'acme-agent',
        version,
        migration: 'migrate.js',
        out: path.join(work, `acme-${version}-${kind}.tar.gz`),
      });
      const keyFile = path.join(work, `key-${version}-${kind}.pem`);
      fs.writeFileSync(keyFile, key);
      const { signature } = await signArchive(file, keyFile);
      expect(fs.readFileSync(`${file}.sig`, 'utf8').trim()).toBe(signature);
      const res = await upload(c.id, fs.readFileSync(file), signature).expect(201);
      expect(res.body.signed).toBe(true);
      return res.body as { id: string; sha256: string };
    };
    const upgrade = async (packageId: string, statuses: string[]) => {
      const created = await t.admin
        .post(`/api/v1/clusters/${c.id}/upgrades`)
        .send({ packageId, target: { all: true } })
        .expect(201);
      let last: Record<string, any> = {};
      await eventually(
        async () => {
          last = (await t.admin.get(`/api/v1/upgrades/${created.body.id}`)).body;
          return statuses.includes(last.status);
        },
        `upgrade to reach ${statuses.join('/')}`,
        60_000,
      );
      return last;
    };

    const good = await uploadSigned('1.1.0', later.privateKey);
    expect((await upgrade(good.id, ['succeeded', 'failed'])).status).toBe('succeeded');
    expect(fs.readlinkSync(path.join(home, 'current'))).toBe(path.join('versions', '1.1.0'));

    // A compromised server: whoever holds its database adds a key of their own straight into the
    // table (no revision bump, so agents are never sent it), uploads other bytes signed with it,
    // and the server, trusting its own table, accepts them and serves them consistently.
    const evilKey = keyPair();
    const parsed = parsePublicKey(evilKey.publicKey);
    await t.db.transaction((tx) =>
      tx.em.insert(SigningKey, {
        id: randomUUID(),
        clusterId: c.id,
        name: 'intruder',
        publicKey: parsed.pem,
        fingerprint: parsed.fingerprint,
        createdAt: new Date(),
        createdByTokenId: null,
      }),
    );
    const evil = packageArchive(
      { version: '1.2.0', prerequisites: { fromVersion: '>=1.1.0' }, notes: 'not what was signed' },
      [{ path: './bin/product.js', body: 'console.log("evil");\n' }],
    );
    const evilSha = sha256(evil);
    const evilUpload = await upload(c.id, evil, signPackage(evilSha, evilKey.privateKey));
    expect(evilUpload.body).toMatchObject({ signed: true });
    const signed = evilUpload.body;
    expect(signed).toMatchObject({ signed: true, signingKey: { name: 'intruder' } });

    const failed = await upgrade(signed.id, ['succeeded', 'failed']);
    expect(failed.status).toBe('failed');
    expect(failed.steps).toEqual([
      expect.objectContaining({
        status: 'failed',
        error: expect.stringMatching(/signature does not verify with any of the 2 signing keys.*nothing was installed/),
      }),
    ]);
    expect(fs.readlinkSync(path.join(home, 'current'))).toBe(path.join('versions', '1.1.0'));
    expect(fs.existsSync(path.join(home, 'versions', '1.2.0'))).toBe(false);
    expect(fs.existsSync(path.join(home, 'downloads', `${evilSha}.tar.gz`))).toBe(false);
    expect((await t.admin.get(`/api/v1/agents/${registered.id}`)).body.version).toBe('1.1.0');
  });
});
