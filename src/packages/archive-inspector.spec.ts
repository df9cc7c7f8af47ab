import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { Parser, ReadEntry } from 'tar';
import {
  END_OF_ARCHIVE,
  packageArchive,
  packageEntries,
  packageWithTail,
  tar,
  tarEntries,
  tarGz,
} from '../../test/support/archives';
import {
  findUnsafeEntries,
  inspectUpload,
  MAX_TAR_PADDING,
  resolveThroughLinks,
  TarFeeder,
  unsafeEntryReason,
} from './archive-inspector';

describe('unsafeEntryReason', () => {
  it.each([
    [{ path: './bin/app.js', type: 'File' }, null],
    [{ path: 'bin/', type: 'Directory' }, null],
    [{ path: './bin/current', type: 'SymbolicLink', linkpath: 'app.js' }, null],
    [{ path: './bin/up', type: 'SymbolicLink', linkpath: '../manifest.json' }, null],
    [{ path: './hard', type: 'Link', linkpath: 'bin/app.js' }, null],
    [{ path: '/etc/passwd', type: 'File' }, 'absolute path'],
    [{ path: 'C:\\Windows\\x', type: 'File' }, 'absolute path'],
    [{ path: './../../etc/cron.d/x', type: 'File' }, 'climbs out with ..'],
    [{ path: 'dev/null', type: 'CharacterDevice' }, 'device or FIFO'],
    [{ path: './evil', type: 'SymbolicLink', linkpath: '/etc/shadow' }, 'link to an absolute path'],
    [{ path: './bin/evil', type: 'SymbolicLink', linkpath: '../../outside' }, 'link pointing out of the package'],
    [{ path: './evil', type: 'Link', linkpath: '../outside' }, 'link pointing out of the package'],
  ])('%j -> %s', (entry, expected) => {
    expect(unsafeEntryReason(entry)).toBe(expected);
  });
});

describe('resolveThroughLinks', () => {
  const links = new Map([
    ['a', '.'],
    ['b', '..'],
    ['lib/tool', 'tool.1'],
    ['loop1', 'loop2'],
    ['loop2', 'loop1'],
  ]);
  it.each([
    [['bin', '..', 'lib', 'tool'], { inside: 'lib/tool.1' }],
    [['a', 'x'], { inside: 'x' }],
    [['a', 'b', 'x'], 'outside'],
    [['..'], 'outside'],
    [['loop1'], 'loop'],
  ])('%j -> %j', (start, expected) => {
    expect(resolveThroughLinks(start, links)).toEqual(expected);
  });
});

describe('findUnsafeEntries', () => {
  const file = (p: string) => ({ path: p, type: 'File' });
  const symlink = (p: string, linkpath: string) => ({ path: p, type: 'SymbolicLink', linkpath });
  const hardlink = (p: string, linkpath: string) => ({ path: p, type: 'Link', linkpath });

  it('accepts ordinary relative links that stay in the package', () => {
    expect(
      findUnsafeEntries([
        { path: './', type: 'Directory' },
        file('./lib/libx.so.1'),
        symlink('./lib/libx.so', 'libx.so.1'),
        file('./lib/tool'),
        symlink('./bin/tool', '../lib/tool'),
        symlink('./current', 'lib'),
        symlink('./up', 'current/..'),
        hardlink('./bin/tool2', 'lib/tool'),
        symlink('./self', '.'),
      ]),
    ).toEqual([]);
  });

  it('refuses what is written through a symbolic link of the archive: a -> ., a/b -> .., a/b/pwned.txt', () => {
    expect(findUnsafeEntries([symlink('./a', '.'), symlink('./a/b', '..'), file('./a/b/pwned.txt')])).toEqual([
      { entry: './a/b', problem: 'written through the symbolic link a' },
      { entry: './a/b/pwned.txt', problem: 'written through the symbolic link a' },
    ]);
  });

  it('refuses a link whose target leaves the package through other links, though each looks fine alone', () => {
    expect(findUnsafeEntries([symlink('sub', '.'), symlink('up', 'sub/..')])).toEqual([
      { entry: 'up', problem: 'link resolving out of the package through its symbolic links' },
    ]);
    expect(findUnsafeEntries([symlink('self', '.'), hardlink('h', 'self/../etc/passwd')])).toEqual([
      { entry: 'h', problem: 'link resolving out of the package through its symbolic links' },
    ]);
    // A link made before the one it goes through: the file system resolves it when it is used.
    expect(findUnsafeEntries([symlink('up', 'sub/..'), symlink('sub', '.')])).toEqual([
      { entry: 'up', problem: 'link resolving out of the package through its symbolic links' },
    ]);
  });

  it('refuses links that loop, a link over another entry, an entry over a link, and the root as a link', () => {
    expect(findUnsafeEntries([symlink('x', 'y'), symlink('y', 'x')]).map((u) => u.problem)).toEqual([
      'symbolic links that loop',
      'symbolic links that loop',
    ]);
    expect(findUnsafeEntries([{ path: 'd/', type: 'Directory' }, symlink('d', 'lib')])).toEqual([
      { entry: 'd', problem: 'a symbolic link over another entry of the same name' },
    ]);
    expect(findUnsafeEntries([symlink('d', 'lib'), { path: 'd/', type: 'Directory' }])).toEqual([
      { entry: 'd/', problem: 'replaces a symbolic link of the same name' },
    ]);
    expect(findUnsafeEntries([symlink('./', 'lib')])).toEqual([{ entry: './', problem: 'the package root as a link' }]);
  });
});

/** Splits `buffer` into chunks of `size` bytes, as a socket might deliver it. */
const chunked = (buffer: Buffer, size: number) =>
  Readable.from(
    Array.from({ length: Math.ceil(buffer.length / size) }, (_, i) => buffer.subarray(i * size, (i + 1) * size)),
  );

describe('TarFeeder', () => {
  /** Feeds `tarBytes` through a TarFeeder into a parser whose entries flow, as inspectUpload's do. */
  async function endOf(tarBytes: Buffer, chunkSize: number): Promise<number | null> {
    let current: ReadEntry | undefined;
    const parser = new Parser({
      strict: true,
      zstd: false,
      brotli: false,
      onReadEntry: (entry) => void (current = entry).resume(),
    });
    let problem: Error | null = null;
    parser.on('error', (error: Error) => (problem ??= error));
    const feeder = new TarFeeder(parser, {
      maxTarBytes: 1 << 30,
      maxPadding: MAX_TAR_PADDING,
      currentEntry: () => current,
      problem: () => problem,
    });
    await pipeline(chunked(tarBytes, chunkSize), feeder);
    return feeder.endAt;
  }

  // Every kind of entry, bodies of zeros (which look like the end marker), long names (meta entries).
  const entries = tarEntries([
    ...packageEntries(),
    { path: './zeros.bin', body: Buffer.alloc(3000) },
    { path: './one-zero-block.bin', body: Buffer.alloc(512) },
    { path: './empty.txt', body: '' },
    { path: './lib/', type: 'Directory' },
    { path: './lib/libx.so', type: 'SymbolicLink', linkpath: 'libx.so.1' },
    { path: './hard', type: 'Link', linkpath: 'bin/app.js' },
    { path: `./${'long-name/'.repeat(20)}file.txt`, body: 'deep' },
    { path: './pax', type: 'ExtendedHeader', body: '20 comment=zeros...\n' },
    { path: './after-pax.bin', body: Buffer.alloc(1024) },
  ]);

  it.each([1, 100, 512, 1000, 16384, 1 << 20])(
    'finds the end-of-archive marker to the byte, in chunks of %i bytes',
    async (chunkSize) => {
      expect(await endOf(Buffer.concat([entries, END_OF_ARCHIVE, Buffer.alloc(9 * 1024)]), chunkSize)).toBe(
        entries.length + 1024,
      );
    },
  );
});

describe('inspectUpload', () => {
  let dir: string;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-inspect-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const limits = { maxBytes: 64 * 1024 * 1024, maxEntries: 50, maxUnpackedBytes: 4 * 1024 * 1024 };
  let n = 0;
  const inspect = (archive: Buffer, chunkSize = 16 * 1024) =>
    inspectUpload(chunked(archive, chunkSize), path.join(dir, `${n++}.part`), limits);
  const refusal = (archive: Buffer, chunkSize?: number) =>
    inspect(archive, chunkSize).then(
      () => null,
      (error: { code?: string }) => error.code,
    );

  it('accepts a package padded after its end marker as tar tools pad it (to 10 KiB), and one without the marker', async () => {
    const archive = packageWithTail(Buffer.alloc(10 * 1024 - 512));
    await expect(inspect(archive)).resolves.toMatchObject({
      size: archive.length,
      entries: new Set(['manifest.json', 'migrate.js', 'bin/app.js']),
    });
    await expect(inspect(gzipSync(tarEntries(packageEntries())))).resolves.toMatchObject({
      manifestText: expect.stringContaining('acme-agent'),
    });
  });

  it('accepts what GNU tar makes of a package with ordinary links', async () => {
    const src = fs.mkdtempSync(path.join(dir, 'src-'));
    fs.mkdirSync(path.join(src, 'lib'));
    fs.mkdirSync(path.join(src, 'bin'));
    fs.writeFileSync(path.join(src, 'manifest.json'), '{}');
    fs.writeFileSync(path.join(src, 'lib', 'libx.so.1'), 'x');
    fs.symlinkSync('libx.so.1', path.join(src, 'lib', 'libx.so'));
    fs.symlinkSync('../lib/libx.so', path.join(src, 'bin', 'tool'));
    const out = path.join(dir, 'gnu.tar.gz');
    try {
      execFileSync('tar', ['-czf', out, '-C', src, '.'], { stdio: 'pipe' });
    } catch (error) {
      console.log(`inspectUpload: no tar command to make an archive with (${(error as Error).message}); skipped`);
      return;
    }
    await expect(inspect(fs.readFileSync(out))).resolves.toMatchObject({
      entries: new Set(['manifest.json', 'lib/libx.so.1']),
    });
  });

  it('refuses zeros after the end marker past the padding tools use, without reading them all', async () => {
    const started = Date.now();
    // 32 MiB of zeros (a 31 KiB upload) kept the event loop busy for 11 s when node-tar buffered them.
    expect(await refusal(packageWithTail(Buffer.alloc(32 * 1024 * 1024)))).toBe('PADDING_TOO_LONG');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await refusal(packageWithTail(Buffer.alloc(MAX_TAR_PADDING + 512)))).toBe('PADDING_TOO_LONG');
  });

  it('refuses anything but zeros after the end marker, such as an entry hidden right behind it', async () => {
    const hidden = tar([{ path: '../../hidden-evil.sh', body: 'echo pwned\n' }]);
    for (const chunkSize of [1, 700, 1 << 20])
      expect(await refusal(packageWithTail(hidden), chunkSize)).toBe('DATA_AFTER_END');
    expect(await refusal(packageWithTail(Buffer.concat([Buffer.alloc(4096), Buffer.from([1])])))).toBe(
      'DATA_AFTER_END',
    );
  });

  it('refuses an archive whose end marker has a checksum field (node-tar still reads it as the end) and something after it', async () => {
    const marker = Buffer.alloc(512);
    marker.write('garbage!', 148, 'latin1');
    const hidden = Buffer.concat([marker, marker, tarEntries([{ path: 'x', body: 'hidden' }])]);
    expect(await refusal(gzipSync(Buffer.concat([tarEntries(packageEntries()), hidden])))).toBe('DATA_AFTER_END');
  });

  it('refuses a gzip stream cut short at any point, each time with a 4xx code and promptly', async () => {
    const whole = packageArchive();
    const codes = new Set<string | null | undefined>();
    for (let cut = 1; cut < whole.length; cut += 7) {
      const started = Date.now();
      codes.add(await refusal(whole.subarray(0, cut)));
      expect(Date.now() - started).toBeLessThan(1000);
    }
    expect([...codes].sort()).toEqual(['ARCHIVE_TRUNCATED']);
  });

  it('refuses a gzip bomb of tar metadata by the bytes it unpacks to', async () => {
    const pax = { path: 'pax', type: 'ExtendedHeader' as const, body: Buffer.alloc(512 * 1024) };
    expect(await refusal(gzipSync(tar([...Array.from({ length: 20 }, () => pax), ...packageEntries()])))).toBe(
      'ARCHIVE_TOO_LARGE',
    );
  });

  it('refuses gzip inside gzip, damaged gzip and an empty file', async () => {
    expect(await refusal(gzipSync(packageArchive()))).toBe('NOT_TAR');
    const damaged = Buffer.from(packageArchive());
    damaged[20] ^= 0xff;
    expect(await refusal(damaged)).toMatch(/^(BAD_GZIP|NOT_TAR)$/);
    expect(await refusal(Buffer.concat([packageArchive(), Buffer.from('more')]))).toBe('BAD_GZIP');
    expect(await refusal(Buffer.alloc(0))).toBe('NOT_GZIP');
    expect(await refusal(tarGz([]))).toBe('NOT_TAR');
  });

  it('closes the temporary file before it refuses', async () => {
    const before = fs.existsSync('/proc/self/fd') ? fs.readdirSync('/proc/self/fd').length : 0;
    for (let i = 0; i < 20; i++) await refusal(packageArchive().subarray(0, 100));
    if (before) expect(fs.readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(before);
  });
});
