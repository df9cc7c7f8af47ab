import { HttpStatus } from '@nestjs/common';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Parser, ReadEntry } from 'tar';
import { BadInputError, DomainError } from '../common/errors';
import { normaliseEntryPath } from './manifest';

export interface ArchiveLimits {
  maxBytes: number;
  maxEntries: number;
  maxUnpackedBytes: number;
}

export interface InspectedArchive {
  sha256: string;
  size: number;
  /** File paths in the archive, normalised (no leading ./). */
  entries: Set<string>;
  manifestText: string;
}

/** What the checks need of an entry. */
export interface EntryRecord {
  path: string;
  type: string;
  linkpath?: string;
}

const MAX_MANIFEST_BYTES = 64 * 1024;
const DEVICE_TYPES = new Set(['CharacterDevice', 'BlockDevice', 'FIFO']);
const BLOCK = 512;
/**
 * Zero bytes allowed after the end-of-archive marker. Tar tools pad an archive to their record
 * size (GNU tar and bsdtar: 10 KiB; `-b 128`: 64 KiB); more is refused (docs/uploads.md).
 */
export const MAX_TAR_PADDING = 64 * 1024;
/** Tar bytes an entry may take beyond its contents: its header, the rest of its last block, long-name and pax records. */
const ENTRY_OVERHEAD = 16 * 1024;
/** As Linux (MAXSYMLINKS): more hops than this while resolving a path is a loop. */
const MAX_LINK_HOPS = 40;
const ZEROS = Buffer.alloc(64 * 1024);

export class PackageTooLargeError extends DomainError {
  constructor(limit: number) {
    super(
      HttpStatus.PAYLOAD_TOO_LARGE,
      'PACKAGE_TOO_LARGE',
      `The package is larger than the limit of ${limit} bytes (MAX_PACKAGE_BYTES); the upload was stopped and nothing was kept.`,
    );
  }
}

/** Why an entry may not be in a package, or null when it is fine: the checks of the entry on its own. */
export function unsafeEntryReason(entry: EntryRecord): string | null {
  const name = entry.path;
  if (name.startsWith('/') || /^[A-Za-z]:[\\/]/.test(name)) return 'absolute path';
  if (name.split(/[\\/]/).includes('..')) return 'climbs out with ..';
  if (DEVICE_TYPES.has(entry.type)) return 'device or FIFO';
  if (entry.type === 'SymbolicLink' || entry.type === 'Link') {
    const target = entry.linkpath ?? '';
    if (target.startsWith('/')) return 'link to an absolute path';
    // Symbolic links resolve from the link's folder, hard links from the archive root.
    const from = entry.type === 'SymbolicLink' ? path.posix.dirname(normaliseEntryPath(name)) : '.';
    const resolved = path.posix.normalize(path.posix.join(from, target));
    if (resolved === '..' || resolved.startsWith('../')) return 'link pointing out of the package';
  }
  return null;
}

const parts = (p: string) => p.split('/').filter((part) => part !== '' && part !== '.');

/**
 * Resolves a path (from the package root) as an extractor's file system would, through the
 * archive's own symbolic links: `inside` with where it lands, `outside`, or `loop`.
 */
export function resolveThroughLinks(
  start: string[],
  symlinks: ReadonlyMap<string, string>,
): { inside: string } | 'outside' | 'loop' {
  const todo = [...start].reverse();
  const done: string[] = [];
  let hops = 0;
  while (todo.length > 0) {
    const part = todo.pop()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (done.length === 0) return 'outside';
      done.pop();
      continue;
    }
    done.push(part);
    const target = symlinks.get(done.join('/'));
    if (target === undefined) continue;
    if (++hops > MAX_LINK_HOPS) return 'loop';
    done.pop();
    if (target.startsWith('/')) return 'outside';
    todo.push(...target.split('/').reverse());
  }
  return { inside: done.join('/') };
}

/**
 * Every entry that could land outside the package once extracted, with why. Beyond each entry on
 * its own, paths are resolved through the archive's symbolic links as an extractor would: an
 * entry written through a link of the archive is refused (`a -> .`, `a/b -> ..`, `a/b/x` wrote
 * `../x`), and so is a link whose target, followed through the others, leaves the package.
 */
export function findUnsafeEntries(records: readonly EntryRecord[]): Array<{ entry: string; problem: string }> {
  const unsafe: Array<{ entry: string; problem: string }> = [];
  const refused = new Set<number>();
  const symlinks = new Map<string, string>();
  const seen = new Set<string>();
  records.forEach((record, i) => {
    const reason = unsafeEntryReason(record);
    const key = parts(record.path).join('/');
    let problem = reason;
    if (!problem && record.type === 'SymbolicLink') {
      if (key === '') problem = 'the package root as a link';
      else if (seen.has(key)) problem = 'a symbolic link over another entry of the same name';
      else symlinks.set(key, record.linkpath ?? '');
    } else if (!problem && symlinks.has(key)) {
      // One name, two entries: which an extractor keeps depends on the tool; neither is checked alone.
      problem = 'replaces a symbolic link of the same name';
    }
    seen.add(key);
    if (problem) {
      unsafe.push({ entry: record.path, problem });
      refused.add(i);
    }
  });
  // With every link known: what an extractor would resolve. Links are checked with the final set,
  // as the file system resolves a symbolic link when it is used, not when it is made.
  records.forEach((record, i) => {
    if (refused.has(i)) return;
    const names = parts(record.path);
    for (let n = 1; n < names.length; n++) {
      const folder = names.slice(0, n).join('/');
      if (symlinks.has(folder)) {
        unsafe.push({ entry: record.path, problem: `written through the symbolic link ${folder}` });
        return;
      }
    }
    if (record.type !== 'SymbolicLink' && record.type !== 'Link') return;
    // Symbolic links resolve from the link's folder, hard links from the archive root.
    const start =
      record.type === 'SymbolicLink'
        ? [...names.slice(0, -1), ...parts(record.linkpath ?? '')]
        : parts(record.linkpath ?? '');
    const resolved = resolveThroughLinks(start, symlinks);
    if (resolved === 'outside')
      unsafe.push({ entry: record.path, problem: 'link resolving out of the package through its symbolic links' });
    else if (resolved === 'loop') unsafe.push({ entry: record.path, problem: 'symbolic links that loop' });
  });
  return unsafe;
}

function allZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i += ZEROS.length) {
    const n = Math.min(ZEROS.length, buf.length - i);
    if (ZEROS.compare(buf, i, i + n, 0, n) !== 0) return false;
  }
  return true;
}

/** A block node-tar may read as a null (end-of-archive) header: zero but for, at most, its checksum field. */
function mayBeNullHeader(buf: Buffer, at: number): boolean {
  return (
    ZEROS.compare(buf, at, at + 148, 0, 148) === 0 && ZEROS.compare(buf, at + 156, at + BLOCK, 0, BLOCK - 156) === 0
  );
}

export interface TarFeederOptions {
  /** Most bytes of tar accepted (the gzip bomb guard). */
  maxTarBytes: number;
  /** Most zero bytes accepted after the end-of-archive marker. */
  maxPadding: number;
  /** The entry the parser handed out last (its body may be in progress). */
  currentEntry: () => ReadEntry | undefined;
  /** A refusal the parser's handlers raised meanwhile. */
  problem: () => Error | null;
}

/**
 * Hands decompressed tar to node-tar's Parser so that the end of the archive is known to the byte.
 * Once the parser has seen the end-of-archive marker it would append every further chunk to its
 * buffer (one copy of the whole buffer per chunk: quadratic, and synchronous), and it never reads
 * that data. So: blocks that may be a null header are written one at a time (the parser says
 * 'eof' during the write of the block that ends the archive; runs of other blocks, and entry
 * bodies, go in bulk), nothing is written after the end, and what follows it must be zeros, and
 * few of them (docs/uploads.md).
 */
export class TarFeeder extends Writable {
  /** Bytes of tar received. */
  received = 0;
  /** Where the end-of-archive marker ends, in bytes of tar, once seen. */
  endAt: number | null = null;
  private written = 0;
  private padding = 0;
  private carry: Buffer | null = null;
  private sawEof = false;

  constructor(
    private readonly parser: Parser,
    private readonly options: TarFeederOptions,
  ) {
    super();
    parser.on('eof', () => (this.sawEof = true));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.received += chunk.length;
    if (this.received > this.options.maxTarBytes) {
      return done(
        new BadInputError(
          `The archive unpacks to more than ${this.options.maxTarBytes} bytes of tar; it is refused as an archive bomb.`,
          undefined,
          'ARCHIVE_TOO_LARGE',
        ),
      );
    }
    if (this.endAt !== null) return done(this.afterEnd(chunk));
    let data = chunk;
    if (this.carry) {
      const need = BLOCK - this.carry.length;
      if (chunk.length < need) {
        this.carry = Buffer.concat([this.carry, chunk]);
        return done();
      }
      const error = this.feed(Buffer.concat([this.carry, chunk.subarray(0, need)]));
      this.carry = null;
      if (error) return done(error);
      data = chunk.subarray(need);
      if (this.endAt !== null) return done(this.afterEnd(data));
    }
    const whole = data.length - (data.length % BLOCK);
    const error = this.feed(data.subarray(0, whole));
    if (error) return done(error);
    const rest = data.subarray(whole);
    if (this.endAt !== null) return done(this.afterEnd(rest));
    if (rest.length > 0) this.carry = Buffer.from(rest);
    done();
  }

  override _final(done: (error?: Error | null) => void): void {
    // Less than a block left over: tar that stops mid-block. The parser says what it makes of it.
    if (this.carry && this.endAt === null) {
      const error = this.writeToParser(this.carry);
      if (error) return done(error);
    }
    let settled = false;
    const settle = (error?: Error | null) => {
      if (settled) return;
      settled = true;
      done(error ?? this.options.problem());
    };
    // node-tar reports a truncated archive from inside end(): listen first.
    this.parser.once('end', () => settle());
    this.parser.once('error', (error: Error) => settle(this.options.problem() ?? error));
    this.parser.end();
  }

  /** Writes whole blocks to the parser, stopping at the end-of-archive marker. */
  private feed(buf: Buffer): Error | null {
    let at = 0;
    while (at < buf.length) {
      let n: number;
      const inBody = this.options.currentEntry()?.blockRemain ?? 0;
      if (inBody > 0)
        n = Math.min(inBody, buf.length - at); // an entry's contents: no header is read there
      else if (mayBeNullHeader(buf, at)) n = BLOCK;
      else for (n = BLOCK; at + n < buf.length && !mayBeNullHeader(buf, at + n); n += BLOCK);
      const error = this.writeToParser(buf.subarray(at, at + n));
      at += n;
      if (error) return error;
      if (this.endAt !== null) return this.afterEnd(buf.subarray(at));
    }
    return null;
  }

  private writeToParser(piece: Buffer): Error | null {
    // node-tar would gunzip a second time a tar that starts with gzip's magic bytes.
    if (this.written === 0 && piece[0] === 0x1f && piece[1] === 0x8b) {
      return new BadInputError(
        'The archive is gzip inside gzip; a package is a tar archive compressed once.',
        undefined,
        'NOT_TAR',
      );
    }
    this.sawEof = false;
    try {
      this.parser.write(piece);
    } catch (error) {
      return error as Error;
    }
    this.written += piece.length;
    const problem = this.options.problem();
    if (problem) return problem;
    if (this.sawEof) {
      // Only a single block may end the archive; anything else and where it ends is not known.
      if (piece.length !== BLOCK || !mayBeNullHeader(piece, 0)) {
        return new BadInputError('The archive could not be read to a clear end; it is refused.', undefined, 'NOT_TAR');
      }
      this.endAt = this.written;
    }
    return null;
  }

  /** What follows the end-of-archive marker: zeros only, and no more than tools pad with. */
  private afterEnd(bytes: Buffer): Error | null {
    if (bytes.length === 0) return null;
    if (!allZero(bytes)) {
      return new BadInputError(
        'The archive has data after the end of the tar archive (after its end-of-archive marker), which tar tools skip or misread; it is refused. Build the package again with tar.',
        undefined,
        'DATA_AFTER_END',
      );
    }
    this.padding += bytes.length;
    if (this.padding > this.options.maxPadding) {
      return new BadInputError(
        `The archive has more than ${this.options.maxPadding} bytes of zeros after the end of the tar archive (tar tools pad to 10 KiB); it is refused.`,
        undefined,
        'PADDING_TOO_LONG',
      );
    }
    return null;
  }
}

/** A refusal for what went wrong while decompressing (`started`: the file did begin as gzip) or reading the tar. */
function tarRefusal(error: unknown, started: boolean): Error {
  if (error instanceof DomainError) return error;
  const e = error as Error & { code?: string };
  if (e.code === 'Z_BUF_ERROR') {
    return new BadInputError(
      'The archive ends early: its gzip stream is cut short, so the upload is incomplete or the file damaged. Nothing was kept; upload the whole file again.',
      undefined,
      'ARCHIVE_TRUNCATED',
    );
  }
  if (e.code === 'Z_DATA_ERROR' && !started && /header check|unknown compression method/.test(e.message)) {
    return new BadInputError(
      `The file is not gzip-compressed (${e.message}); a package is a .tar.gz archive.`,
      undefined,
      'NOT_GZIP',
    );
  }
  if (e.code?.startsWith('Z_'))
    return new BadInputError(
      `The gzip data is damaged, or followed by something else (${e.message}); nothing was kept.`,
      undefined,
      'BAD_GZIP',
    );
  return new BadInputError(`The file is not a valid tar archive inside gzip: ${e.message}.`, undefined, 'NOT_TAR');
}

/**
 * Reads an upload once, as it streams: hashes it, counts it against MAX_PACKAGE_BYTES (stopping as
 * soon as it is passed), writes it to `tempPath`, and decompresses it into a tar parser that checks
 * every entry and keeps manifest.json. Memory stays flat: backpressure runs from the disk and the
 * parser back to the socket. Throws a refusal naming the problem once the temporary file is closed;
 * the caller removes `tempPath`.
 */
export async function inspectUpload(
  source: Readable,
  tempPath: string,
  limits: ArchiveLimits,
): Promise<InspectedArchive> {
  const hash = createHash('sha256');
  const entries = new Set<string>();
  const records: EntryRecord[] = [];
  let size = 0;
  let entryCount = 0;
  let unpacked = 0;
  let manifest: Buffer[] | null = null;
  let manifestBytes = 0;
  // Set by the streams' callbacks, which TypeScript's narrowing does not follow: typed by the
  // assertion, not narrowed to the initial null.
  let problem = null as Error | null;
  let current: ReadEntry | undefined;

  const gunzip = createGunzip();
  const fail = (error: Error) => {
    problem ??= error;
    meter.destroy(problem);
    gunzip.destroy(problem);
  };

  const parser = new Parser({
    strict: true,
    // The tar is already decompressed: node-tar must not guess at another compression.
    zstd: false,
    brotli: false,
    onReadEntry: (entry: ReadEntry) => {
      current = entry;
      entryCount++;
      unpacked += entry.size ?? 0;
      if (entryCount > limits.maxEntries || unpacked > limits.maxUnpackedBytes) {
        fail(
          new BadInputError(
            `The archive unpacks to more than ${limits.maxEntries} entries or ${limits.maxUnpackedBytes} bytes; it is refused as an archive bomb.`,
            undefined,
            'ARCHIVE_TOO_LARGE',
          ),
        );
        entry.resume();
        return;
      }
      records.push({ path: entry.path, type: entry.type, linkpath: entry.linkpath });
      const name = normaliseEntryPath(entry.path);
      if (entry.type === 'File' || entry.type === 'OldFile' || entry.type === 'ContiguousFile') entries.add(name);
      if (name === 'manifest.json' && entry.type === 'File') {
        manifest = [];
        entry.on('data', (chunk: Buffer) => {
          manifestBytes += chunk.length;
          if (manifestBytes > MAX_MANIFEST_BYTES)
            fail(
              new BadInputError(
                `manifest.json is larger than ${MAX_MANIFEST_BYTES} bytes.`,
                undefined,
                'MANIFEST_INVALID',
              ),
            );
          else manifest!.push(chunk);
        });
      } else {
        // Every entry flows as it is written, so the parser's events (its 'eof' above all) come
        // during the write that causes them: TarFeeder relies on it.
        entry.resume();
      }
    },
  });
  parser.on('error', (error: Error) => fail(tarRefusal(error, true)));

  const feeder = new TarFeeder(parser, {
    maxTarBytes: limits.maxUnpackedBytes + limits.maxEntries * ENTRY_OVERHEAD + MAX_TAR_PADDING + 2 * BLOCK,
    maxPadding: MAX_TAR_PADDING,
    currentEntry: () => current,
    problem: () => problem,
  });

  // Its first bytes, to tell a file that is not gzip from gzip followed by something else.
  let head = Buffer.alloc(0);
  const beganAsGzip = () => head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08;
  const meter: Transform = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (size === 0 && !(chunk[0] === 0x1f && (chunk.length < 2 || chunk[1] === 0x8b))) {
        return done(
          new BadInputError('The file is not gzip-compressed; a package is a .tar.gz archive.', undefined, 'NOT_GZIP'),
        );
      }
      if (head.length < 3) head = Buffer.concat([head, chunk.subarray(0, 3 - head.length)]);
      size += chunk.length;
      if (size > limits.maxBytes) return done(new PackageTooLargeError(limits.maxBytes));
      hash.update(chunk);
      if (gunzip.write(chunk)) done(null, chunk);
      else gunzip.once('drain', () => done(null, chunk));
    },
    flush(done) {
      if (size === 0)
        return done(new BadInputError('The file is empty; a package is a .tar.gz archive.', undefined, 'NOT_GZIP'));
      gunzip.end();
      done();
    },
  });

  const file = fs.createWriteStream(tempPath, { flags: 'wx' });
  const fileClosed = new Promise<void>((resolve) => file.once('close', () => resolve()));
  const [written, read] = await Promise.allSettled([
    pipeline(source, meter, file).catch((error: Error) => {
      fail(error);
      throw error;
    }),
    pipeline(gunzip, feeder).catch((error: unknown) => {
      fail(tarRefusal(error, beganAsGzip()));
      throw error;
    }),
  ]);
  // The caller removes the file: it must be closed first (a refused upload leaves no descriptor).
  await fileClosed;
  if (written.status === 'rejected') throw problem ?? written.reason;
  if (problem) throw problem;
  if (read.status === 'rejected') throw tarRefusal(read.reason, beganAsGzip());
  // Node's gunzip stops without a word at a tail that does not begin a gzip member (a 0x00, say),
  // while other extractors read on into it (gzip -d complains, Python's tarfile lists what is
  // there): nothing may follow the compressed stream, so no byte of a package goes uninspected.
  if (gunzip.bytesWritten < size) {
    throw new BadInputError(
      `The file has ${size - gunzip.bytesWritten} bytes after the end of its gzip stream; a package is one .tar.gz with nothing after it.`,
      undefined,
      'DATA_AFTER_END',
    );
  }
  const unsafe = findUnsafeEntries(records);
  if (unsafe.length > 0) {
    throw new BadInputError(
      `The archive has entries that could land outside the install folder: ${unsafe.map((u) => `${u.entry} (${u.problem})`).join(', ')}.`,
      unsafe,
      'UNSAFE_ENTRY',
    );
  }
  if (!manifest)
    throw new BadInputError(
      'The archive has no manifest.json at its root; add one (see the package format in the README).',
      undefined,
      'NO_MANIFEST',
    );
  return { sha256: hash.digest('hex'), size, entries, manifestText: Buffer.concat(manifest).toString('utf8') };
}
