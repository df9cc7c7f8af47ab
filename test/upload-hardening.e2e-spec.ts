import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { STALE_TEMP_AFTER_MS } from '../src/packages/package-store';
import {
  END_OF_ARCHIVE,
  gzipBomb,
  manifest,
  packageArchive,
  packageEntries,
  packageWithTail,
  tar,
  tarEntries,
  tarGz,
  zerosAfterEnd,
} from './support/archives';
import { givenCluster } from './support/builders';
import { mountSmallDisk, openDescriptors, tempFiles, unmountSmallDisk } from './support/host';
import { eventually } from './support/sse-client';
import { describeEachDatabase, TestApp } from './support/test-app';

/**
 * Uploads that once froze the server, leaked files and descriptors, deleted other replicas' work or
 * slipped past the archive checks (docs/uploads.md). Every refusal must be a 4xx (or 503 DISK_FULL)
 * with a code, store nothing, leave no temporary file, and never keep other requests waiting.
 */

const MiB = 1024 * 1024;
const LIMITS = {
  MAX_PACKAGE_BYTES: String(8 * MiB),
  PACKAGE_MAX_ENTRIES: '50',
  PACKAGE_MAX_UNPACKED_BYTES: String(4 * MiB),
};
/** Uploads cut off by their clients in the descriptor test: the 200 of the issue (UPLOAD_ABORTS to try other numbers). */
const ABORTS = Number(process.env.UPLOAD_ABORTS ?? 200);

interface Answer {
  status: number;
  body: { code?: string; message?: string; [field: string]: unknown };
  headers: http.IncomingHttpHeaders;
  ms: number;
}

function multipart(archive: Buffer, fields: Record<string, string> = { mode: 'upload-only' }) {
  const boundary = `----upload-hardening-${randomBytes(8).toString('hex')}`;
  const parts = Object.entries(fields).map(
    ([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
  );
  const head = Buffer.from(
    `${parts.join('')}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="package.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n`,
  );
  return {
    body: Buffer.concat([head, archive, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

/**
 * Posts an upload with node:http and reads the answer even when the server closes the connection
 * while the body is still being sent (it does, after refusing an upload part way). No answer
 * within `timeoutMs` fails: before the fixes, some uploads were never answered.
 */
function post(t: TestApp, token: string, clusterId: string, archive: Buffer, timeoutMs = 5000): Promise<Answer> {
  const { body, contentType } = multipart(archive);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(`${t.baseUrl}/api/v1/clusters/${clusterId}/packages`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': contentType, 'Content-Length': body.length },
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer to the upload within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          body: text ? JSON.parse(text) : {},
          headers: res.headers,
          ms: performance.now() - started,
        });
      });
    });
    req.on('error', (error) => {
      if (answered) return; // the server closed the connection after its answer
      clearTimeout(timer);
      reject(error);
    });
    req.end(body);
  });
}

/** Runs `work` while asking GET /health/ready again and again; the slowest answer says whether the server kept answering. */
async function probingHealth<T>(
  t: TestApp,
  work: () => Promise<T>,
): Promise<{ result: T; slowestMs: number; probes: number }> {
  let done = false;
  const latencies: number[] = [];
  const probing = (async () => {
    do {
      const started = performance.now();
      const res = await fetch(`${t.baseUrl}/health/ready`);
      await res.arrayBuffer();
      latencies.push(performance.now() - started);
    } while (!done);
  })();
  let result: T;
  try {
    result = await work();
  } finally {
    done = true;
    await probing;
  }
  return { result, slowestMs: Math.max(...latencies), probes: latencies.length };
}

const storedFiles = (dataDir: string) => fs.readdirSync(path.join(dataDir, 'packages', 'store'));

/** Opens a raw connection, sends the headers and the first `fraction` of an upload's body, and leaves it there. */
function partialUpload(
  t: TestApp,
  token: string,
  clusterId: string,
  archive: Buffer,
  fraction = 0.5,
): { socket: net.Socket; rest: Buffer } {
  const { body, contentType } = multipart(archive);
  const port = Number(new URL(t.baseUrl).port);
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined); // destroyed on purpose
  socket.write(
    `POST /api/v1/clusters/${clusterId}/packages HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: ${contentType}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
  );
  const cut = Math.floor(body.length * fraction);
  socket.write(body.subarray(0, cut));
  return { socket, rest: body.subarray(cut) };
}

/** Reads the status line of the answer a raw connection gets. */
function statusOf(socket: net.Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    socket.on('close', () =>
      reject(new Error(`connection closed without a status line: ${JSON.stringify(text.slice(0, 200))}`)),
    );
  });
}

/** A valid package with a payload big enough that half of it is mid-file. */
const packageWithPayload = (notes: string, bytes = 256 * 1024) =>
  packageArchive({ notes }, [{ path: './payload.bin', body: randomBytes(bytes) }]);

describeEachDatabase('upload hardening', (kind) => {
  let t: TestApp;
  let operator: string;
  beforeAll(async () => {
    t = await TestApp.start(kind, { env: LIMITS });
    operator = await t.tokenFor('operator');
  });
  afterAll(() => t.close());

  const listed = async (clusterId: string) =>
    (await t.as(operator).get(`/api/v1/clusters/${clusterId}/packages`).expect(200)).body.total as number;

  /** The upload is refused with `status` and `code`, the server answered /health/ready within a second meanwhile, and nothing is left. */
  async function expectRefused(archive: Buffer, status: number, code: string): Promise<Answer> {
    const c = await givenCluster(t);
    const stored = storedFiles(t.dataDir);
    const { result: answer, slowestMs, probes } = await probingHealth(t, () => post(t, operator, c.id, archive));
    expect({ status: answer.status, code: answer.body.code }).toEqual({ status, code });
    expect(answer.body.message).toEqual(expect.any(String));
    expect(probes).toBeGreaterThan(0);
    expect(slowestMs).toBeLessThan(1000);
    expect(await listed(c.id)).toBe(0);
    expect(storedFiles(t.dataDir)).toEqual(stored);
    expect(tempFiles(t.dataDir)).toEqual([]);
    return answer;
  }

  it('refuses 4 MB of zeros after the tar end marker within a second, answering other requests meanwhile', async () => {
    const archive = zerosAfterEnd(4 * 1000 * 1000); // about 4 GiB of zeros once decompressed
    expect(archive.length).toBeGreaterThan(4 * 1000 * 1000);
    const answer = await expectRefused(archive, 400, 'PADDING_TOO_LONG');
    expect(answer.ms).toBeLessThan(1000);
  });

  it('answers a gzip stream cut at any point with a 400 at once, leaving no temporary file', async () => {
    const whole = packageArchive({ notes: 'cut short' });
    for (const cut of [1, 2, 10, 50, 117, Math.floor(whole.length / 2), whole.length - 8, whole.length - 1]) {
      const answer = await expectRefused(whole.subarray(0, cut), 400, 'ARCHIVE_TRUNCATED');
      expect(answer.ms).toBeLessThan(1000);
    }
  });

  it('refuses a symbolic link chain and a hard link through it, and an entry hidden right after the end marker', async () => {
    await expectRefused(
      packageArchive({}, [
        { path: './a', type: 'SymbolicLink', linkpath: '.' },
        { path: './a/b', type: 'SymbolicLink', linkpath: '..' },
        { path: './a/b/pwned.txt', body: 'x' },
      ]),
      400,
      'UNSAFE_ENTRY',
    );
    const answer = await expectRefused(
      packageArchive({}, [
        { path: './self', type: 'SymbolicLink', linkpath: '.' },
        { path: './h', type: 'Link', linkpath: 'self/../etc/passwd' },
      ]),
      400,
      'UNSAFE_ENTRY',
    );
    expect(answer.body.details).toEqual([
      { entry: './h', problem: 'link resolving out of the package through its symbolic links' },
    ]);
    // In the same gzip stream, so in the same chunk as the marker: it was never looked at.
    await expectRefused(
      packageWithTail(tar([{ path: '../../hidden-evil.sh', body: '#!/bin/sh\n' }])),
      400,
      'DATA_AFTER_END',
    );
  });

  it('accepts ordinary relative links inside the package', async () => {
    const c = await givenCluster(t);
    const archive = packageArchive({ notes: 'links' }, [
      { path: './lib/', type: 'Directory' },
      { path: './lib/libx.so.1', body: 'x' },
      { path: './lib/libx.so', type: 'SymbolicLink', linkpath: 'libx.so.1' },
      { path: './lib/tool', body: 'tool' },
      { path: './bin/tool', type: 'SymbolicLink', linkpath: '../lib/tool' },
    ]);
    expect((await post(t, operator, c.id, archive)).status).toBe(201);
  });

  it(`closes the file and removes it when ${ABORTS} clients go away mid-upload`, async () => {
    const c = await givenCluster(t);
    // The database pool opens connections as requests come at once: open them before counting.
    await Promise.all(
      Array.from({ length: 20 }, () => t.as(operator).get(`/api/v1/clusters/${c.id}/packages`).expect(200)),
    );
    const baseline = openDescriptors();
    const archive = packageWithPayload('aborted');
    const sockets = Array.from({ length: ABORTS }, () => partialUpload(t, operator, c.id, archive).socket);
    // Every upload is streaming into its temporary file before its client goes.
    await eventually(() => tempFiles(t.dataDir).length === ABORTS, `${ABORTS} uploads in flight`, 10_000);
    for (const socket of sockets) socket.destroy();
    await eventually(() => tempFiles(t.dataDir).length === 0, 'no temporary file left', 5000);
    if (baseline !== null) {
      // Slack: the sockets the test's own clients keep alive may not be closed yet, not 1 per upload.
      await eventually(
        () => openDescriptors()! <= baseline + 4,
        `descriptors back to ${baseline} (now ${openDescriptors()})`,
        5000,
      );
    }
    expect(await listed(c.id)).toBe(0);
    expect(fs.readdirSync(path.join(t.dataDir, 'packages', 'tmp'))).toEqual([]);
  });

  it('keeps an upload in flight on one replica while another starts on the same DATA_DIR, and clears only stale folders', async () => {
    const c = await givenCluster(t);
    const tmpRoot = path.join(t.dataDir, 'packages', 'tmp');
    // What a replica that died long ago left behind, and what a live one (of an older version) writes now.
    const dead = path.join(tmpRoot, 'dead-replica');
    fs.mkdirSync(dead);
    fs.writeFileSync(path.join(dead, 'old.part'), 'x');
    const past = new Date(Date.now() - STALE_TEMP_AFTER_MS - 60_000);
    fs.utimesSync(path.join(dead, 'old.part'), past, past);
    fs.utimesSync(dead, past, past);
    fs.writeFileSync(path.join(tmpRoot, 'live-older-version.part'), 'x');

    const { socket, rest } = partialUpload(t, operator, c.id, packageWithPayload('in flight'));
    const answer = statusOf(socket);
    answer.catch(() => undefined); // awaited below; a failure before that must not go unhandled
    await eventually(
      () =>
        tempFiles(t.dataDir).some(
          (f) => f.endsWith('.part') && !f.includes('dead-replica') && !f.includes('live-older'),
        ),
      'the upload in flight',
      5000,
    );
    const inFlight = tempFiles(t.dataDir).filter((f) => !f.includes('live-older') && !f.includes('dead-replica'));
    expect(inFlight).toHaveLength(1);

    const other = await t.sibling();
    try {
      expect(fs.existsSync(dead)).toBe(false);
      expect(tempFiles(t.dataDir).sort()).toEqual([...inFlight, path.join(tmpRoot, 'live-older-version.part')].sort());
      socket.write(rest); // not end(): a client that half-closes has its request aborted by Node
      expect(await answer).toBe(201);
      expect(await listed(c.id)).toBe(1);
    } finally {
      socket.destroy();
      await other.stop();
      fs.rmSync(path.join(tmpRoot, 'live-older-version.part'), { force: true });
    }
  });

  // Hostile archives: each refused with a 4xx and a code, nothing stored, no temporary file, and
  // the server answering other requests within a second while it reads the upload.
  const link = (p: string, linkpath: string) => ({ path: p, type: 'SymbolicLink' as const, linkpath });
  const checksumOnlyBlock = () => {
    const block = Buffer.alloc(512);
    block.write('garbage!', 148, 'latin1'); // node-tar reads it as a null block; GNU tar skips it as a bad header
    return block;
  };
  it.each<[string, () => Buffer, number, string]>([
    ['an absolute path', () => packageArchive({}, [{ path: '/etc/cron.d/evil', body: 'x' }]), 400, 'UNSAFE_ENTRY'],
    [
      'an entry that climbs out with ..',
      () => packageArchive({}, [{ path: './bin/../../evil', body: 'x' }]),
      400,
      'UNSAFE_ENTRY',
    ],
    [
      'a character device',
      () => packageArchive({}, [{ path: './dev-null', type: 'CharacterDevice' }]),
      400,
      'UNSAFE_ENTRY',
    ],
    ['a block device', () => packageArchive({}, [{ path: './sda', type: 'BlockDevice' }]), 400, 'UNSAFE_ENTRY'],
    ['a FIFO', () => packageArchive({}, [{ path: './pipe', type: 'FIFO' }]), 400, 'UNSAFE_ENTRY'],
    ['a symbolic link out', () => packageArchive({}, [link('./bin/evil', '../../etc/shadow')]), 400, 'UNSAFE_ENTRY'],
    [
      'a symbolic link to an absolute path',
      () => packageArchive({}, [link('./evil', '/etc/shadow')]),
      400,
      'UNSAFE_ENTRY',
    ],
    [
      'a symbolic link chain (a -> ., a/b -> .., a/b/pwned.txt)',
      () => packageArchive({}, [link('./a', '.'), link('./a/b', '..'), { path: './a/b/pwned.txt', body: 'x' }]),
      400,
      'UNSAFE_ENTRY',
    ],
    [
      'a link out through another link (sub -> ., up -> sub/..)',
      () => packageArchive({}, [link('./sub', '.'), link('./up', 'sub/..')]),
      400,
      'UNSAFE_ENTRY',
    ],
    [
      'a hard link through a symbolic link',
      () => packageArchive({}, [link('./self', '.'), { path: './h', type: 'Link', linkpath: 'self/../etc/passwd' }]),
      400,
      'UNSAFE_ENTRY',
    ],
    [
      'a hard link out',
      () => packageArchive({}, [{ path: './h', type: 'Link', linkpath: '../outside' }]),
      400,
      'UNSAFE_ENTRY',
    ],
    ['symbolic links that loop', () => packageArchive({}, [link('./x', 'y'), link('./y', 'x')]), 400, 'UNSAFE_ENTRY'],
    [
      'a folder over a symbolic link of the same name',
      () => packageArchive({}, [link('./lib', '.'), { path: './lib/', type: 'Directory' }]),
      400,
      'UNSAFE_ENTRY',
    ],
    [
      'data after the end marker (an entry hidden behind it)',
      () => packageWithTail(tar([{ path: '../../hidden-evil.sh', body: 'x' }])),
      400,
      'DATA_AFTER_END',
    ],
    [
      'data after an end marker that has a checksum field',
      () =>
        gzipSync(
          Buffer.concat([
            tarEntries(packageEntries()),
            checksumOnlyBlock(),
            checksumOnlyBlock(),
            tar([{ path: 'x', body: 'hidden' }]),
          ]),
        ),
      400,
      'DATA_AFTER_END',
    ],
    [
      'zeros after the end marker (4 MB upload, 4 GiB unpacked)',
      () => zerosAfterEnd(4 * 1000 * 1000),
      400,
      'PADDING_TOO_LONG',
    ],
    [
      'zeros after the end marker, uncompressed-sized (1 MiB)',
      () => packageWithTail(Buffer.alloc(MiB)),
      400,
      'PADDING_TOO_LONG',
    ],
    ['a truncated gzip stream (head -c 117)', () => packageArchive().subarray(0, 117), 400, 'ARCHIVE_TRUNCATED'],
    [
      'damaged gzip (a wrong checksum)',
      () => Buffer.concat([packageArchive().subarray(0, -8), Buffer.alloc(8, 0x55)]),
      400,
      'BAD_GZIP',
    ],
    [
      'other bytes after the gzip stream',
      () => Buffer.concat([packageArchive(), Buffer.from('#!/bin/sh\n')]),
      400,
      'BAD_GZIP',
    ],
    [
      'a gzip member hidden behind a zero byte after the gzip stream',
      () => Buffer.concat([packageArchive(), Buffer.from([0]), gzipSync(tar([{ path: '../../evil.sh', body: 'x' }]))]),
      400,
      'DATA_AFTER_END',
    ],
    [
      '4 MiB of zeros after the gzip stream',
      () => Buffer.concat([packageArchive(), Buffer.alloc(4 * MiB)]),
      400,
      'DATA_AFTER_END',
    ],
    ['not gzip', () => Buffer.from('just some text, not an archive'), 400, 'NOT_GZIP'],
    ['an empty file', () => Buffer.alloc(0), 400, 'NOT_GZIP'],
    ['gzip but not tar', () => gzipSync(Buffer.from('x'.repeat(2000))), 400, 'NOT_TAR'],
    ['gzip inside gzip', () => gzipSync(packageArchive()), 400, 'NOT_TAR'],
    ['only the end marker', () => gzipSync(END_OF_ARCHIVE), 400, 'NOT_TAR'],
    [
      'a gzip bomb (a file claiming 1 GiB, 1 MB upload)',
      () => gzipBomb(1024 * MiB, 1000 * 1000),
      400,
      'ARCHIVE_TOO_LARGE',
    ],
    [
      'a gzip bomb of tar metadata (pax records)',
      () =>
        tarGz([
          ...Array.from({ length: 12 }, () => ({
            path: 'pax',
            type: 'ExtendedHeader' as const,
            body: Buffer.alloc(512 * 1024),
          })),
          ...packageEntries(),
        ]),
      400,
      'ARCHIVE_TOO_LARGE',
    ],
    [
      'too many entries',
      () =>
        packageArchive(
          {},
          Array.from({ length: 60 }, (_, i) => ({ path: `./f${i}`, body: 'x' })),
        ),
      400,
      'ARCHIVE_TOO_LARGE',
    ],
    [
      'a huge manifest',
      () => tarGz([{ path: './manifest.json', body: manifest({ notes: 'x'.repeat(100 * 1024) }) }]),
      400,
      'MANIFEST_INVALID',
    ],
    ['no manifest', () => tarGz([{ path: './bin/app.js', body: 'x' }]), 400, 'NO_MANIFEST'],
    [
      'more than MAX_PACKAGE_BYTES',
      () =>
        tarGz([
          { path: './manifest.json', body: manifest() },
          { path: './noise.bin', body: randomBytes(9 * MiB) },
        ]),
      413,
      'PACKAGE_TOO_LARGE',
    ],
  ])('corpus: refuses %s', async (_case, archive, status, code) => {
    await expectRefused(archive(), status, code);
  });
});

/** Asked once, as the file loads: is mounting allowed here? (A test that cannot run is skipped, not passed.) */
const mountProbe = (() => {
  const probe = mountSmallDisk(8, 'lockstep-upload-disk-');
  if ('dir' in probe) unmountSmallDisk(probe.dir);
  else
    console.log(`upload-hardening: skipping the full-disk upload test: cannot mount an 8 MiB tmpfs (${probe.reason})`);
  return probe;
})();
const itWithSmallDisk = 'dir' in mountProbe ? it : it.skip;

describeEachDatabase('upload to a full disk', (kind) => {
  let disk: { dir: string } | { reason: string };
  let t: TestApp | undefined;
  let operator: string;
  beforeAll(async () => {
    disk = mountSmallDisk(8, 'lockstep-upload-disk-');
    if ('reason' in disk) {
      console.log(`upload-hardening: skipping the full-disk upload test: cannot mount an 8 MiB tmpfs (${disk.reason})`);
      return;
    }
    t = await TestApp.start(kind, {
      tmpRoot: disk.dir,
      env: { ...LIMITS, MAX_PACKAGE_BYTES: String(32 * MiB), PACKAGE_MAX_UNPACKED_BYTES: String(32 * MiB) },
    });
    t.stopTimers();
    operator = await t.tokenFor('operator');
  });
  afterAll(async () => {
    await t?.close();
    if ('dir' in disk) unmountSmallDisk(disk.dir);
  });

  itWithSmallDisk(
    'answers 503 DISK_FULL with Retry-After when the disk fills during an upload, keeps nothing, and stores once there is room',
    async () => {
      if (!t) throw new Error(`the 8 MiB tmpfs could not be mounted: ${'reason' in disk ? disk.reason : 'unknown'}`);
      const c = await givenCluster(t);
      const big = packageWithPayload('too big for the disk', 12 * MiB);
      const answer = await post(t, operator, c.id, big);
      expect({ status: answer.status, code: answer.body.code }).toEqual({ status: 503, code: 'DISK_FULL' });
      expect(answer.body.message).toMatch(/disk is full.*once space is freed/);
      expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
      expect(tempFiles(t.dataDir)).toEqual([]);
      expect(storedFiles(t.dataDir)).toEqual([]);
      expect((await t.as(operator).get(`/api/v1/clusters/${c.id}/packages`).expect(200)).body.total).toBe(0);
      // The refused upload's space is free again: a package that fits is stored.
      expect((await post(t, operator, c.id, packageWithPayload('fits', 256 * 1024))).status).toBe(201);
    },
  );
});
