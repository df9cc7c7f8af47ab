import { HttpStatus } from '@nestjs/common';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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

const MAX_MANIFEST_BYTES = 64 * 1024;
const DEVICE_TYPES = new Set(['CharacterDevice', 'BlockDevice', 'FIFO']);

export class PackageTooLargeError extends DomainError {
  constructor(limit: number) {
    super(HttpStatus.PAYLOAD_TOO_LARGE, 'PACKAGE_TOO_LARGE', `The package is larger than the limit of ${limit} bytes (MAX_PACKAGE_BYTES); the upload was stopped and nothing was kept.`);
  }
}

/** Why an entry may not be in a package, or null when it is fine. */
export function unsafeEntryReason(entry: { path: string; type: string; linkpath?: string }): string | null {
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

/**
 * Reads an upload once, as it streams: hashes it, counts it against MAX_PACKAGE_BYTES (stopping as
 * soon as it is passed), writes it to `tempPath`, and feeds it to a tar parser that checks every
 * entry and keeps manifest.json. Memory stays flat: backpressure runs from the disk and the parser
 * back to the socket. Throws a refusal naming the problem; the caller removes `tempPath`.
 */
export async function inspectUpload(source: Readable, tempPath: string, limits: ArchiveLimits): Promise<InspectedArchive> {
  const hash = createHash('sha256');
  const entries = new Set<string>();
  const unsafe: Array<{ entry: string; problem: string }> = [];
  let size = 0;
  let entryCount = 0;
  let unpacked = 0;
  let manifest: Buffer[] | null = null;
  let manifestBytes = 0;
  let problem: Error | null = null;

  const fail = (error: Error) => {
    problem ??= error;
    meter.destroy(error);
  };

  const parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      entryCount++;
      unpacked += entry.size ?? 0;
      if (entryCount > limits.maxEntries || unpacked > limits.maxUnpackedBytes) {
        fail(new BadInputError(`The archive unpacks to more than ${limits.maxEntries} entries or ${limits.maxUnpackedBytes} bytes; it is refused as an archive bomb.`, undefined, 'ARCHIVE_TOO_LARGE'));
        entry.resume();
        return;
      }
      const reason = unsafeEntryReason(entry);
      if (reason) unsafe.push({ entry: entry.path, problem: reason });
      const name = normaliseEntryPath(entry.path);
      if (entry.type === 'File' || entry.type === 'OldFile' || entry.type === 'ContiguousFile') entries.add(name);
      if (name === 'manifest.json' && entry.type === 'File') {
        manifest = [];
        entry.on('data', (chunk: Buffer) => {
          manifestBytes += chunk.length;
          if (manifestBytes > MAX_MANIFEST_BYTES) fail(new BadInputError(`manifest.json is larger than ${MAX_MANIFEST_BYTES} bytes.`, undefined, 'MANIFEST_INVALID'));
          else manifest!.push(chunk);
        });
      } else {
        entry.resume(); // the parser waits for each entry to be drained before reading the next
      }
    },
  });
  parser.on('error', (error: Error) => fail(new BadInputError(`The file is not a valid tar archive inside gzip: ${error.message}.`, undefined, 'NOT_TAR')));
  const parsed = new Promise<void>((resolve) => parser.on('end', () => resolve()));

  const meter: Transform = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (size === 0 && !(chunk[0] === 0x1f && (chunk.length < 2 || chunk[1] === 0x8b))) {
        return done(new BadInputError('The file is not gzip-compressed; a package is a .tar.gz archive.', undefined, 'NOT_GZIP'));
      }
      size += chunk.length;
      if (size > limits.maxBytes) return done(new PackageTooLargeError(limits.maxBytes));
      hash.update(chunk);
      if (parser.write(chunk)) done(null, chunk);
      else parser.once('drain', () => done(null, chunk));
    },
  });

  try {
    await pipeline(source, meter, fs.createWriteStream(tempPath, { flags: 'wx' }));
  } catch (error) {
    throw problem ?? error;
  }
  if (size === 0) throw new BadInputError('The file is empty; a package is a .tar.gz archive.', undefined, 'NOT_GZIP');
  parser.end();
  await Promise.race([parsed, new Promise((resolve) => parser.on('error', resolve))]);
  if (problem) throw problem;
  if (unsafe.length > 0) {
    throw new BadInputError(`The archive has entries that could land outside the install folder: ${unsafe.map((u) => `${u.entry} (${u.problem})`).join(', ')}.`, unsafe, 'UNSAFE_ENTRY');
  }
  if (!manifest) throw new BadInputError('The archive has no manifest.json at its root; add one (see the package format in the README).', undefined, 'NO_MANIFEST');
  return { sha256: hash.digest('hex'), size, entries, manifestText: Buffer.concat(manifest).toString('utf8') };
}
