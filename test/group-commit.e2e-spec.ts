import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AccessToken } from '../src/auth/access-token.entity';
import { Database } from '../src/database/database';

/**
 * Group commit on SQLite (docs/durability.md): a transaction is answered only once the WAL has
 * been synced after its COMMIT, the sync runs off the event loop, and concurrent commits share one.
 */
function token(id: string): AccessToken {
  return Object.assign(new AccessToken(), {
    id,
    name: id,
    role: 'viewer',
    agentId: null,
    secretHash: createHash('sha256').update(id).digest('hex'),
    prefix: 'lsk_x',
    createdByTokenId: null,
    createdAt: new Date(),
    revokedAt: null,
    expiresAt: null,
  });
}

describe('Database group commit (SQLite)', () => {
  let dir: string;
  let db: Database;
  let syncs: Array<{ started: number; ended: number; committedBefore: string[] }>;
  let committed: string[];
  let realOpen: typeof fs.promises.open;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-group-commit-'));
    const file = path.join(dir, 'db.sqlite');
    db = await Database.open({ database: { type: 'sqlite', file }, dataDir: dir });
    realOpen = fs.promises.open;
    // Watch every sync of the WAL: when it started, when it ended, and which rows were committed
    // (visible to the reader) when it started.
    jest.spyOn(fs.promises, 'open').mockImplementation(async (...args: Parameters<typeof fs.promises.open>) => {
      const handle = await realOpen(...args);
      if (String(args[0]).startsWith(file)) {
        const datasync = handle.datasync.bind(handle);
        handle.datasync = async () => {
          const rows = await db.reader.find(AccessToken, { select: { id: true } });
          const entry = { started: performance.now(), ended: NaN, committedBefore: rows.map((r) => r.id) };
          syncs.push(entry);
          await datasync();
          entry.ended = performance.now();
        };
      }
      return handle;
    });
  });
  beforeEach(() => {
    syncs = [];
    committed = [];
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers a transaction only after a sync that started once it was committed', async () => {
    await db.transaction((tx) => tx.em.insert(AccessToken, token('one')));
    const answeredAt = performance.now();
    const covering = syncs.find((s) => s.committedBefore.includes('one'));
    expect(covering).toBeDefined();
    expect(covering!.ended).toBeLessThanOrEqual(answeredAt);
  });

  it('runs after-commit hooks only once the commit is on disk', async () => {
    let hookAt = NaN;
    await db.transaction(async (tx) => {
      await tx.em.insert(AccessToken, token('hooked'));
      tx.afterCommit(() => void (hookAt = performance.now()));
    });
    const covering = syncs.find((s) => s.committedBefore.includes('hooked'));
    expect(covering!.ended).toBeLessThanOrEqual(hookAt);
  });

  it('lets concurrent commits share syncs, and answers each after one that covers it', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `burst-${i}`);
    await Promise.all(
      ids.map(async (id) => {
        await db.transaction((tx) => tx.em.insert(AccessToken, token(id)));
        committed.push(id);
        const answeredAt = performance.now();
        const covering = syncs.find((s) => s.committedBefore.includes(id) && s.ended <= answeredAt);
        expect(covering).toBeDefined();
      }),
    );
    expect(committed).toHaveLength(40);
    expect(syncs.length).toBeLessThan(40);
  });

  it('checkpoints on its own thread: the WAL reaches the database file with no checkpoint by the writer', async () => {
    const file = path.join(dir, 'db.sqlite');
    const before = fs.statSync(file).size;
    // About 2,000 pages: twice SQLite's default automatic checkpoint, far below the writer's backstop.
    const rows = Array.from({ length: 24_000 }, (_, i) =>
      Object.assign(token(`bulk-${i}`), { name: `bulk-${i}`.padEnd(100, '.') }),
    );
    await db.transaction(async (tx) => {
      for (let i = 0; i < rows.length; i += 500) await tx.em.insert(AccessToken, rows.slice(i, i + 500));
    });
    const deadline = Date.now() + 5000;
    while (fs.statSync(file).size <= before + 4 * 1024 * 1024 && Date.now() < deadline) await sleep(100);
    expect(fs.statSync(file).size).toBeGreaterThan(before + 4 * 1024 * 1024);
  });

  it('answers 503 DATABASE_IO_ERROR, without claiming nothing changed, when the sync fails', async () => {
    // Once: the next sync's file fails to sync.
    jest.mocked(fs.promises.open).mockImplementationOnce(async (...args) => {
      const handle = await realOpen(...args);
      handle.datasync = () => Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
      return handle;
    });
    const attempt = db.transaction((tx) => tx.em.insert(AccessToken, token('unconfirmed')));
    await expect(attempt).rejects.toMatchObject({ status: 503, code: 'DATABASE_IO_ERROR' });
    await expect(attempt).rejects.toThrow(/may or may not be stored/);
    expect(db.writeTrouble?.code).toBe('DATABASE_IO_ERROR');
    // The next commit syncs again, and clears the trouble.
    await db.transaction((tx) => tx.em.insert(AccessToken, token('after')));
    expect(db.writeTrouble).toBeNull();
  });
});
