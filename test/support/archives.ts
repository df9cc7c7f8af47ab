import { gzipSync } from 'node:zlib';
import { Header } from 'tar';

export interface ArchiveEntry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice';
  body?: string | Buffer;
  linkpath?: string;
}

/**
 * A .tar.gz built byte by byte with tar's own header encoder, so tests can make any archive,
 * including the unsafe ones (absolute paths, .., links out, devices) that tools refuse to write.
 */
export function tarGz(entries: ArchiveEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const body = entry.body === undefined ? Buffer.alloc(0) : Buffer.from(entry.body);
    const type = entry.type ?? 'File';
    const header = new Header({ path: entry.path, type, size: type === 'File' ? body.length : 0, linkpath: entry.linkpath, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (type === 'File' && body.length > 0) {
      blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

export const manifest = (fields: Record<string, unknown> = {}) =>
  JSON.stringify({ product: 'acme-agent', version: '1.1.0', kind: 'full', prerequisites: { fromVersion: '>=1.0.0 <1.1.0' }, migration: 'migrate.js', ...fields });

/** A valid package as `tar -czf pkg.tar.gz -C dir .` would make it (entries named ./...). */
export function packageArchive(fields: Record<string, unknown> = {}, extra: ArchiveEntry[] = []): Buffer {
  return tarGz([
    { path: './', type: 'Directory' },
    { path: './manifest.json', body: manifest(fields) },
    { path: './migrate.js', body: 'module.exports = async () => {};\n' },
    { path: './bin/', type: 'Directory' },
    { path: './bin/app.js', body: `console.log(${JSON.stringify(String(fields.version ?? '1.1.0'))});\n` },
    ...extra,
  ]);
}
