import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * A real small disk: a tmpfs of `sizeMiB`, or why there is none (mounting needs Linux and root, or
 * CAP_SYS_ADMIN). The caller unmounts it with unmountSmallDisk.
 */
export function mountSmallDisk(sizeMiB: number, prefix: string): { dir: string } | { reason: string } {
  if (process.platform !== 'linux') return { reason: 'tmpfs mounts need Linux' };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir], { stdio: 'pipe' });
    return { dir };
  } catch (error) {
    fs.rmdirSync(dir);
    return { reason: (error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message };
  }
}

export function unmountSmallDisk(dir: string): void {
  execFileSync('umount', [dir]);
  fs.rmdirSync(dir);
}

/** This process's open file descriptors (the in-process server's included), or null without /proc. */
export const openDescriptors = (): number | null =>
  fs.existsSync('/proc/self/fd') ? fs.readdirSync('/proc/self/fd').length : null;

/** Every file under DATA_DIR/packages/tmp, whichever process's folder it is in (full paths). */
export function tempFiles(dataDir: string): string[] {
  const root = path.join(dataDir, 'packages', 'tmp');
  if (!fs.existsSync(root)) return [];
  return (fs.readdirSync(root, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => !e.isDirectory())
    .map((e) => path.join(e.parentPath ?? e.path, e.name));
}
