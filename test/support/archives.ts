import { gzipSync } from 'node:zlib';
import { Header } from 'tar';

export interface ArchiveEntry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'BlockDevice' | 'FIFO' | 'ExtendedHeader';
  body?: string | Buffer;
  linkpath?: string;
  /** The size its header declares, when not its body's: what an archive bomb claims. */
  size?: number;
}

const BLOCK = 512;
/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

const hasBody = (type: string) => type === 'File' || type === 'ExtendedHeader';

/** The tar blocks of `entries`, without the end-of-archive marker. */
export function tarEntries(entries: ArchiveEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const body = entry.body === undefined ? Buffer.alloc(0) : Buffer.from(entry.body);
    const type = entry.type ?? 'File';
    const header = new Header({
      path: entry.path,
      type,
      size: entry.size ?? (hasBody(type) ? body.length : 0),
      linkpath: entry.linkpath,
      mode: 0o644,
      mtime: new Date(0),
      uid: 0,
      gid: 0,
    });
    const block = Buffer.alloc(BLOCK);
    header.encode(block, 0);
    blocks.push(block);
    if (hasBody(type) && body.length > 0) {
      blocks.push(body, Buffer.alloc((BLOCK - (body.length % BLOCK)) % BLOCK));
    }
  }
  return Buffer.concat(blocks);
}

/** A tar archive (uncompressed) of `entries`, ended by the marker. */
export const tar = (entries: ArchiveEntry[]): Buffer => Buffer.concat([tarEntries(entries), END_OF_ARCHIVE]);

/**
 * A .tar.gz built byte by byte with tar's own header encoder, so tests can make any archive,
 * including the unsafe ones (absolute paths, .., links out, devices) that tools refuse to write.
 */
export const tarGz = (entries: ArchiveEntry[]): Buffer => gzipSync(tar(entries));

export const manifest = (fields: Record<string, unknown> = {}) =>
  JSON.stringify({
    product: 'acme-agent',
    version: '1.1.0',
    kind: 'full',
    prerequisites: { fromVersion: '>=1.0.0 <1.1.0' },
    migration: 'migrate.js',
    ...fields,
  });

/** The entries of a valid package as `tar -czf pkg.tar.gz -C dir .` would make it (entries named ./...). */
export function packageEntries(fields: Record<string, unknown> = {}, extra: ArchiveEntry[] = []): ArchiveEntry[] {
  return [
    { path: './', type: 'Directory' },
    { path: './manifest.json', body: manifest(fields) },
    { path: './migrate.js', body: 'module.exports = async () => {};\n' },
    { path: './bin/', type: 'Directory' },
    { path: './bin/app.js', body: `console.log(${JSON.stringify(String(fields.version ?? '1.1.0'))});\n` },
    ...extra,
  ];
}

/** A valid package as `tar -czf pkg.tar.gz -C dir .` would make it. */
export const packageArchive = (fields: Record<string, unknown> = {}, extra: ArchiveEntry[] = []): Buffer =>
  tarGz(packageEntries(fields, extra));

/** A valid package whose tar goes on after its end-of-archive marker with `after` (one gzip stream). */
export const packageWithTail = (after: Buffer, fields: Record<string, unknown> = {}): Buffer =>
  gzipSync(Buffer.concat([tar(packageEntries(fields)), after]));

let zeroMember: Buffer | undefined;
/** One gzip member of 64 MiB of zeros (about 64 KiB), made once. */
function sixtyFourMiBOfZeros(): Buffer {
  zeroMember ??= gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
  return zeroMember;
}

/**
 * A valid package followed, after its end-of-archive marker, by zeros: gzip members of 64 MiB of
 * zeros each (gzip allows several members in a file; gunzip reads them as one stream) until the
 * upload is `bytes` long: 4 MB of upload is about 4 GiB of zeros.
 */
export function zerosAfterEnd(bytes: number, fields: Record<string, unknown> = {}): Buffer {
  const parts: Buffer[] = [packageArchive(fields)];
  let length = parts[0].length;
  while (length < bytes) {
    parts.push(sixtyFourMiBOfZeros());
    length += sixtyFourMiBOfZeros().length;
  }
  return Buffer.concat(parts);
}

/**
 * A gzip bomb: a small upload whose one file claims `claimed` bytes, followed by as much of them
 * (zeros) as `bytes` of upload hold.
 */
export function gzipBomb(claimed: number, bytes: number): Buffer {
  const parts: Buffer[] = [
    gzipSync(
      tarEntries([
        { path: './manifest.json', body: manifest() },
        { path: './payload.bin', size: claimed },
      ]),
    ),
  ];
  for (let length = parts[0].length; length < bytes; length += sixtyFourMiBOfZeros().length)
    parts.push(sixtyFourMiBOfZeros());
  return Buffer.concat(parts);
}
