import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AppConfig } from '../config/app-config';
import { PackageStore, PackageStoreFullError, STALE_TEMP_AFTER_MS } from './package-store';

describe('PackageStore', () => {
  let dataDir: string;
  const tmpRoot = () => path.join(dataDir, 'packages', 'tmp');
  const started: PackageStore[] = [];
  async function start(): Promise<PackageStore> {
    const store = new PackageStore({ dataDir } as AppConfig);
    await store.onModuleInit();
    started.push(store);
    return store;
  }
  const age = (p: string, ms: number) => {
    const then = new Date(Date.now() - ms);
    fs.utimesSync(p, then, then);
  };

  beforeEach(() => (dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-store-'))));
  afterEach(async () => {
    jest.restoreAllMocks();
    for (const store of started.splice(0)) await store.onApplicationShutdown();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps another process’s upload in flight when it starts on the same DATA_DIR', async () => {
    const first = await start();
    const inFlight = await first.newTempPath();
    const writing = fs.createWriteStream(inFlight, { flags: 'wx' });
    writing.write('half an upload');
    await new Promise<void>((resolve) => writing.once('ready', () => resolve()));

    const second = await start();
    const other = await second.newTempPath();
    expect(path.dirname(other)).not.toBe(path.dirname(inFlight));
    expect(fs.existsSync(inFlight)).toBe(true);
    writing.end(' and the rest');
    await new Promise<void>((resolve) => writing.once('close', () => resolve()));
    expect(fs.readFileSync(inFlight, 'utf8')).toBe('half an upload and the rest');
  });

  it('removes at start what processes long gone left, and nothing a live one is writing', async () => {
    fs.mkdirSync(tmpRoot(), { recursive: true });
    const dead = path.join(tmpRoot(), 'dead-process');
    fs.mkdirSync(dead);
    fs.writeFileSync(path.join(dead, 'a.part'), 'x');
    age(path.join(dead, 'a.part'), STALE_TEMP_AFTER_MS + 1000);
    age(dead, STALE_TEMP_AFTER_MS + 1000);
    // A folder made long ago whose upload is still being written: alive.
    const slow = path.join(tmpRoot(), 'slow-upload');
    fs.mkdirSync(slow);
    fs.writeFileSync(path.join(slow, 'b.part'), 'x');
    age(slow, STALE_TEMP_AFTER_MS + 1000);
    // Files an older version left at the top: the stale one goes, the fresh one stays.
    fs.writeFileSync(path.join(tmpRoot(), 'old.part'), 'x');
    age(path.join(tmpRoot(), 'old.part'), STALE_TEMP_AFTER_MS + 1000);
    fs.writeFileSync(path.join(tmpRoot(), 'fresh.part'), 'x');

    await start();
    expect(fs.readdirSync(tmpRoot()).sort()).toEqual(['fresh.part', 'slow-upload']);
  });

  it('has a temporary folder only while uploads are in flight, also when they overlap', async () => {
    const store = await start();
    expect(fs.readdirSync(tmpRoot())).toEqual([]);
    const a = await store.newTempPath();
    fs.writeFileSync(a, 'a');
    const b = await store.newTempPath();
    fs.writeFileSync(b, 'b');
    await store.removeTemp(a);
    expect(await store.tempFiles()).toEqual([path.basename(b)]);
    // The last one goes while a new one comes: the new one still has its folder.
    const [, c] = await Promise.all([store.removeTemp(b), store.newTempPath()]);
    fs.writeFileSync(c, 'c');
    await store.removeTemp(c);
    await store.removeTemp(c);
    expect(fs.readdirSync(tmpRoot())).toEqual([]);
  });

  it('answers a full disk (ENOSPC, EDQUOT) while committing as DISK_FULL, and anything else as it is', async () => {
    const store = await start();
    const temp = await store.newTempPath();
    fs.writeFileSync(temp, 'x');
    for (const code of ['ENOSPC', 'EDQUOT']) {
      jest.spyOn(fsp, 'rename').mockRejectedValueOnce(Object.assign(new Error(`${code}: no space left`), { code }));
      const refusal = await store.commit(temp, 'a'.repeat(64)).catch((error: unknown) => error);
      expect(refusal).toBeInstanceOf(PackageStoreFullError);
      expect(refusal).toMatchObject({
        status: 503,
        code: 'DISK_FULL',
        retryAfterS: expect.any(Number),
        message: expect.stringMatching(/disk is full/),
      });
    }
    jest.spyOn(fsp, 'rename').mockRejectedValueOnce(Object.assign(new Error('EIO'), { code: 'EIO' }));
    await expect(store.commit(temp, 'a'.repeat(64))).rejects.toMatchObject({ code: 'EIO' });
  });
});
