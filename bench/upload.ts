/**
 * bench/upload: upload a 1 GiB package to Lockstep and print throughput and peak RSS growth of the
 * server, beside `sha256sum` and a `dd ... conv=fsync` copy of the same file, measured in the same
 * run. Target: at least 0.7 of the slower of the two, RSS growth under 64 MB.
 *
 *   npm run bench:upload -- [--mib 1024]
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { createGzip } from 'node:zlib';
import { Header } from 'tar';
import { rssOf, startLockstep } from './support/processes';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '1024' } } });
const payloadBytes = Number(values.mib) * 1024 * 1024;
const ADMIN = 'lsk_bench-admin-token-000000000000';

function tarHeader(name: string, size: number): Buffer {
  const block = Buffer.alloc(512);
  new Header({ path: name, type: 'File', size, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }).encode(block, 0);
  return block;
}

/** A package whose payload is random (incompressible) bytes, so the .tar.gz is as large as asked. */
async function makePackage(file: string): Promise<void> {
  const manifest = Buffer.from(JSON.stringify({ product: 'acme-agent', version: '2.0.0', kind: 'full' }));
  const chunk = randomBytes(1024 * 1024);
  async function* tar() {
    yield tarHeader('manifest.json', manifest.length);
    yield Buffer.concat([manifest, Buffer.alloc((512 - (manifest.length % 512)) % 512)]);
    yield tarHeader('payload.bin', payloadBytes);
    for (let written = 0; written < payloadBytes; written += chunk.length) yield chunk;
    yield Buffer.alloc(1024);
  }
  await pipeline(Readable.from(tar()), createGzip({ level: 0 }), createWriteStream(file));
}

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

function timeCommand(command: string, args: string[]): number {
  const start = process.hrtime.bigint();
  execFileSync(command, args, { stdio: 'ignore' });
  return seconds(start);
}

/** Streams the file as multipart/form-data (mode + file) and samples the server's RSS meanwhile. */
async function upload(
  url: string,
  clusterId: string,
  file: string,
  pid: number,
): Promise<{ seconds: number; peakRssGrowth: number; status: number }> {
  const boundary = `----lockstep-bench-${Date.now()}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="mode"\r\n\r\nupload-only\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="package.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const size = statSync(file).size;
  const baseline = rssOf(pid);
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 20);
  const start = process.hrtime.bigint();
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${url}/api/v1/clusters/${clusterId}/packages`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${ADMIN}`,
        'Content-Type': `multipart/form-data; boundary=${boundary}`,
        'Content-Length': head.length + size + tail.length,
      },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.write(head);
    const body = createReadStream(file, { highWaterMark: 1024 * 1024 });
    body.pipe(req, { end: false });
    body.on('end', () => req.end(tail));
  });
  const elapsed = seconds(start);
  clearInterval(sampler);
  return { seconds: elapsed, peakRssGrowth: peak - baseline, status };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-upload-'));
  const file = path.join(dir, 'package.tar.gz');
  try {
    await makePackage(file);
    const size = statSync(file).size;
    const mib = size / 1024 / 1024;
    console.log(`bench/upload: a ${mib.toFixed(0)} MiB package`);

    const sha = timeCommand('sha256sum', [file]);
    const dd = timeCommand('dd', [`if=${file}`, `of=${path.join(dir, 'copy')}`, 'bs=1M', 'conv=fsync']);
    rmSync(path.join(dir, 'copy'));

    const lockstep = await startLockstep({
      LOCKSTEP_ADMIN_TOKEN: ADMIN,
      MAX_PACKAGE_BYTES: String(size + 1024 * 1024),
      DATA_DIR: path.join(dir, 'data'),
    });
    let result: Awaited<ReturnType<typeof upload>>;
    try {
      const cluster = (await (
        await fetch(`${lockstep.url}/api/v1/clusters`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ name: 'bench', product: 'acme-agent' }),
        })
      ).json()) as { id: string };
      result = await upload(lockstep.url, cluster.id, file, lockstep.pid);
    } finally {
      await lockstep.stop();
    }
    if (result.status !== 201) throw new Error(`upload answered ${result.status}`);

    const rate = (s: number) => (mib / s).toFixed(0).padStart(5);
    console.log(`sha256sum (baseline)          ${rate(sha)} MiB/s`);
    console.log(`dd conv=fsync (baseline)      ${rate(dd)} MiB/s`);
    console.log(
      `lockstep upload               ${rate(result.seconds)} MiB/s   peak RSS growth ${(result.peakRssGrowth / 1024 / 1024).toFixed(1)} MiB`,
    );
    const slower = Math.max(sha, dd);
    const ratio = slower / result.seconds;
    console.log(
      `ratio ${ratio.toFixed(2)} of the slower baseline (target >= 0.7): ${ratio >= 0.7 ? 'met' : 'NOT met'}`,
    );
    console.log(`RSS growth (target < 64 MiB): ${result.peakRssGrowth < 64 * 1024 * 1024 ? 'met' : 'NOT met'}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
