import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DiskFullError } from '../common/db-errors';
import { type AppConfig, InjectAppConfig } from '../config/app-config';

/**
 * A sibling's temporary folder with nothing changed in it for this long belongs to a process that
 * is gone. A live upload writes as its bytes arrive, and a connection quiet for two minutes is cut
 * (app.factory.ts), so a quarter of an hour is far past any live upload (docs/uploads.md).
 */
export const STALE_TEMP_AFTER_MS = 15 * 60_000;
/** An upload refused because the disk under DATA_DIR is full (or the quota used up); nothing was kept. */
export class PackageStoreFullError extends DiskFullError {
  constructor(cause?: unknown) {
    super(
      cause,
      "The server's disk is full: the package could not be written, and nothing was kept. Upload it again once space is freed on the volume that holds DATA_DIR.",
    );
  }
}

export const isOutOfSpace = (error: unknown): boolean =>
  ['ENOSPC', 'EDQUOT'].includes((error as { code?: string } | null)?.code ?? '');

/**
 * Where package files live: uploads stream into a temporary folder of this process,
 * `DATA_DIR/packages/tmp/<process id>`, and move into the content-addressed
 * `DATA_DIR/packages/store/<sha256>.tar.gz` only once valid, so nothing half-written is ever
 * served. DATA_DIR may be shared by replicas: each writes only in its own temporary folder, which
 * exists only while it has uploads in flight, and at start removes only what gone processes left.
 * The file system is behind this class so services can be tested without one.
 */
@Injectable()
export class PackageStore implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(PackageStore.name);
  private readonly tmpRoot: string;
  private readonly tmpDir: string;
  private readonly storeDir: string;
  /** This process's temporary files in use. */
  private readonly live = new Set<string>();
  /** Creating and removing this process's temporary folder, one after the other. */
  private folderOps: Promise<unknown> = Promise.resolve();

  constructor(@InjectAppConfig() config: AppConfig) {
    this.tmpRoot = path.join(config.dataDir, 'packages', 'tmp');
    this.tmpDir = path.join(this.tmpRoot, randomUUID());
    this.storeDir = path.join(config.dataDir, 'packages', 'store');
  }

  /** Creates the folders, and clears temporary files that processes which are gone left behind. */
  async onModuleInit(): Promise<void> {
    await fs.mkdir(this.storeDir, { recursive: true });
    await fs.mkdir(this.tmpRoot, { recursive: true });
    await this.removeStaleTemp();
  }

  /** After the HTTP server has closed (Nest destroys modules before it does), so no upload is cut off. */
  async onApplicationShutdown(): Promise<void> {
    await fs.rm(this.tmpDir, { recursive: true, force: true });
  }

  /** Also while running: a process that crashed and came back within STALE_TEMP_AFTER_MS left its folder behind. */
  @Interval(STALE_TEMP_AFTER_MS)
  async sweepStaleTemp(): Promise<void> {
    await this.removeStaleTemp().catch((error: Error) =>
      this.logger.warn(`could not clear stale temporary files: ${error.message}`),
    );
  }

  /**
   * Removes the entries of the temporary folder (other processes' folders, files an older version
   * left at its top) in which nothing changed for STALE_TEMP_AFTER_MS; a live replica's are fresh.
   */
  async removeStaleTemp(now = Date.now()): Promise<void> {
    for (const name of await fs.readdir(this.tmpRoot)) {
      const entry = path.join(this.tmpRoot, name);
      if (entry === this.tmpDir) continue;
      const changed = await lastChange(entry);
      if (changed === null || now - changed < STALE_TEMP_AFTER_MS) continue;
      await fs.rm(entry, { recursive: true, force: true });
      this.logger.log(
        `removed ${entry}, left by a process that is gone (unchanged since ${new Date(changed).toISOString()})`,
      );
    }
  }

  /** A new temporary file name in this process's folder (created if need be); release it with removeTemp. */
  async newTempPath(): Promise<string> {
    const file = path.join(this.tmpDir, `${randomUUID()}.part`);
    this.live.add(file);
    try {
      await this.inFolderOrder(() => fs.mkdir(this.tmpDir, { recursive: true }));
    } catch (error) {
      this.live.delete(file);
      throw this.refusalFor(error);
    }
    return file;
  }

  pathOf(sha256: string): string {
    return path.join(this.storeDir, `${sha256}.tar.gz`);
  }

  /** Makes a validated upload durable under its hash (fsync, rename, fsync the folder). */
  async commit(tempPath: string, sha256: string): Promise<void> {
    try {
      const target = this.pathOf(sha256);
      const file = await fs.open(tempPath, 'r');
      try {
        await file.sync();
      } finally {
        await file.close();
      }
      await fs.rename(tempPath, target); // the same bytes stored before are simply replaced by themselves
      const dir = await fs.open(this.storeDir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (error) {
      throw this.refusalFor(error);
    }
  }

  /** Removes a temporary file (if it is still there); the folder goes with the last one. */
  async removeTemp(tempPath: string): Promise<void> {
    await fs.rm(tempPath, { force: true });
    if (!this.live.delete(tempPath) || this.live.size > 0) return;
    await this.inFolderOrder(async () => {
      if (this.live.size > 0) return; // a new upload came meanwhile
      await fs.rmdir(this.tmpDir).catch(() => undefined); // gone already, or not empty: left as it is
    });
  }

  /** A full disk (or quota) is the server's problem, not a bug: 503 DISK_FULL. Anything else as it is. */
  refusalFor(error: unknown): unknown {
    if (!isOutOfSpace(error)) return error;
    this.logger.warn(`refused an upload: the disk under ${this.tmpRoot} is full (${(error as Error).message})`);
    return new PackageStoreFullError(error);
  }

  async removeStored(sha256: string): Promise<void> {
    await fs.rm(this.pathOf(sha256), { force: true });
    this.logger.log(`removed stored package ${sha256}`);
  }

  async exists(sha256: string): Promise<boolean> {
    return fs.access(this.pathOf(sha256)).then(
      () => true,
      () => false,
    );
  }

  /** This process's temporary files now; a refused upload must leave none. */
  async tempFiles(): Promise<string[]> {
    return fs.readdir(this.tmpDir).catch(() => []);
  }

  private inFolderOrder<T>(op: () => Promise<T>): Promise<T> {
    const done = this.folderOps.then(op);
    this.folderOps = done.catch(() => undefined);
    return done;
  }
}

/** When anything in `entry` (itself, or what is directly in it) last changed; null when it is gone. */
async function lastChange(entry: string): Promise<number | null> {
  try {
    const stat = await fs.lstat(entry);
    let newest = stat.mtimeMs;
    if (stat.isDirectory()) {
      for (const name of await fs.readdir(entry)) {
        const inner = await fs.lstat(path.join(entry, name)).catch(() => null);
        if (inner) newest = Math.max(newest, inner.mtimeMs);
      }
    }
    return newest;
  } catch {
    return null;
  }
}
