import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { type AppConfig, InjectAppConfig } from '../config/app-config';

/**
 * Where package files live: uploads stream into `DATA_DIR/packages/tmp` and move into the
 * content-addressed `DATA_DIR/packages/store/<sha256>.tar.gz` only once valid, so nothing
 * half-written is ever served. The file system is behind this class so services can be tested
 * without one.
 */
@Injectable()
export class PackageStore implements OnModuleInit {
  private readonly logger = new Logger(PackageStore.name);
  private readonly tmpDir: string;
  private readonly storeDir: string;

  constructor(@InjectAppConfig() config: AppConfig) {
    this.tmpDir = path.join(config.dataDir, 'packages', 'tmp');
    this.storeDir = path.join(config.dataDir, 'packages', 'store');
  }

  /** Creates the folders, and clears temporary files a crash may have left behind. */
  async onModuleInit(): Promise<void> {
    await fs.mkdir(this.storeDir, { recursive: true });
    await fs.rm(this.tmpDir, { recursive: true, force: true });
    await fs.mkdir(this.tmpDir, { recursive: true });
  }

  newTempPath(): string {
    return path.join(this.tmpDir, `${randomUUID()}.part`);
  }

  pathOf(sha256: string): string {
    return path.join(this.storeDir, `${sha256}.tar.gz`);
  }

  /** Makes a validated upload durable under its hash (fsync, rename, fsync the folder). */
  async commit(tempPath: string, sha256: string): Promise<void> {
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
  }

  async removeTemp(tempPath: string): Promise<void> {
    await fs.rm(tempPath, { force: true });
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

  /** Files in the temporary folder now; a refused upload must leave none. */
  async tempFiles(): Promise<string[]> {
    return fs.readdir(this.tmpDir);
  }
}
