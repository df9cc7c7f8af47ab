import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Database } from '../src/database/database';
import { eventually } from './support/sse-client';
import { mountSmallDisk, unmountSmallDisk } from './support/host';
import { RAM_DISK, TestApp } from './support/test-app';

// better-sqlite3 ships no types here; the tests need only these few members of a connection.
const BetterSqlite3 = require('better-sqlite3') as new (
  file: string,
  options?: { timeout?: number },
) => {
  exec(sql: string): unknown;
  close(): void;
};

/**
 * What a full disk must never do (docs/durability.md): acknowledge a write that is not on disk, or
 * leave the server holding a transaction open. Every answer to a write is either a 503 DISK_FULL
 * or a 2xx whose record reads back, then and after a restart.
 */

type Created = { name: string; id: string };

/** Creates a cluster; a 201 must read back at once, anything else must be a 503 naming the full disk. */
async function createCluster(t: TestApp, name: string, acknowledged: Created[]): Promise<'stored' | 'refused'> {
  const res = await t.admin.post('/api/v1/clusters').send({ name, product: 'acme-agent' });
  if (res.status === 201) {
    await t.admin.get(`/api/v1/clusters/${res.body.id}`).expect(200);
    acknowledged.push({ name, id: res.body.id });
    return 'stored';
  }
  expect({ status: res.status, code: res.body.code }).toEqual({ status: 503, code: 'DISK_FULL' });
  expect(res.body.message).toMatch(/disk is full/);
  expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  return 'refused';
}

/** The clusters a fresh read finds must be exactly the acknowledged ones. */
async function expectExactly(t: TestApp, acknowledged: Created[]): Promise<void> {
  const list = await t.admin.get('/api/v1/clusters').expect(200);
  expect((list.body as Created[]).map((c) => c.name).sort()).toEqual(acknowledged.map((c) => c.name).sort());
  for (const { id } of acknowledged) await t.admin.get(`/api/v1/clusters/${id}`).expect(200);
}

/** Another connection can take the write lock at once: the server holds no transaction open. */
function expectWriteLockFree(file: string): void {
  const other = new BetterSqlite3(file, { timeout: 0 });
  try {
    other.exec('BEGIN IMMEDIATE');
    other.exec('ROLLBACK');
  } finally {
    other.close();
  }
}

/** Writes to `file` until the file system has no byte left. */
function fillDisk(file: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (const size of [1 << 20, 4096, 1]) {
      const chunk = Buffer.alloc(size, 1);
      try {
        for (;;) fs.writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

const disk = mountSmallDisk(20, 'lockstep-small-disk-');
if ('reason' in disk) console.log(`disk-full: skipping the tmpfs tests: cannot mount a 20 MiB tmpfs (${disk.reason})`);
const describeOnSmallDisk = 'dir' in disk ? describe : describe.skip;

describeOnSmallDisk('A full disk under SQLite [sqlite, 20 MiB tmpfs]', () => {
  const root = 'dir' in disk ? disk.dir : '';
  const filler = path.join(root, 'filler');
  const acknowledged: Created[] = [];
  let t: TestApp;
  const dbFile = () => path.join(t.dataDir, 'lockstep.sqlite');

  beforeAll(async () => {
    t = await TestApp.start('sqlite', { tmpRoot: root });
    t.stopTimers(); // only the test's own writes fill the disk
  });
  afterAll(async () => {
    await t?.close().catch(() => undefined);
    unmountSmallDisk(root);
  });

  it('creates a cluster while there is room', async () => {
    expect(await createCluster(t, 'before-full', acknowledged)).toBe('stored');
  });

  it('refuses writes as DISK_FULL once the disk is full, acknowledges only what reads back, and holds no transaction open', async () => {
    fillDisk(filler);
    const outcomes: string[] = [];
    for (let i = 1; i <= 4; i++) outcomes.push(await createCluster(t, `while-full-${i}`, acknowledged));
    expect(outcomes).toContain('refused');
    expectWriteLockFree(dbFile());
  });

  it('says not ready while the database cannot write', async () => {
    const ready = await t.http().get('/health/ready').expect(503);
    expect(ready.body.details.error.database).toMatchObject({ status: 'down', code: 'DISK_FULL' });
  });

  it('is ready again and stores writes once space is freed, without a restart', async () => {
    fs.unlinkSync(filler);
    await eventually(
      async () => (await t.http().get('/health/ready')).status === 200,
      'readiness after freeing space',
      5000,
    );
    expect(await createCluster(t, 'after-free', acknowledged)).toBe('stored');
    expectWriteLockFree(dbFile());
    await expectExactly(t, acknowledged);
  });

  it('keeps every acknowledged write across a restart, and nothing that was refused', async () => {
    t = await t.restart();
    await expectExactly(t, acknowledged);
    expect(await createCluster(t, 'after-restart', acknowledged)).toBe('stored');
  });
});

/**
 * The same without a small disk: `PRAGMA max_page_count` makes SQLite answer SQLITE_FULL once the
 * file would grow past that many pages, on the writer connection only. Runs everywhere.
 */
describe('SQLite reporting SQLITE_FULL [sqlite, max_page_count]', () => {
  /** Caps the writer's file at its current size (4294967294 lifts the cap). */
  const capPages = (db: Database, pages?: number) =>
    db.transaction(async (tx) => {
      const [{ page_count: current }] = await tx.em.query('PRAGMA page_count');
      await tx.em.query(`PRAGMA max_page_count = ${pages ?? current}`);
    });
  const UNCAPPED = 4294967294;

  describe('through HTTP', () => {
    let t: TestApp;
    const acknowledged: Created[] = [];
    beforeAll(async () => {
      t = await TestApp.start('sqlite');
      t.stopTimers();
    });
    afterAll(() => t.close());

    it('answers 503 DISK_FULL with Retry-After, or a 2xx that reads back, and stores again once there is room', async () => {
      await capPages(t.db);
      const outcomes: string[] = [];
      for (let i = 0; i < 300 && !outcomes.includes('refused'); i++)
        outcomes.push(await createCluster(t, `capped-${i}`, acknowledged));
      expect(outcomes).toContain('refused');
      await createCluster(t, 'still-capped', acknowledged);

      await capPages(t.db, UNCAPPED);
      expect(await createCluster(t, 'uncapped', acknowledged)).toBe('stored');
      t = await t.restart();
      await expectExactly(t, acknowledged);
    });
  });

  describe('at the Database', () => {
    let dir: string;
    let file: string;
    let db: Database;
    const open = () => Database.open({ database: { type: 'sqlite', file }, dataDir: dir });
    const count = async (d: Database, table: string) =>
      Number((await d.reader.query(`SELECT count(*) AS n FROM ${table}`))[0].n);

    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(RAM_DISK ?? os.tmpdir(), 'lockstep-full-'));
      file = path.join(dir, 'db.sqlite');
      db = await open();
      await db.transaction(async (tx) => {
        await tx.em.query('CREATE TABLE scratch (v BLOB)');
        await tx.em.query('CREATE TABLE parent (id TEXT PRIMARY KEY)');
        await tx.em.query('CREATE TABLE child (parent_id TEXT REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)');
      });
    });
    afterAll(async () => {
      await db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('commits for real after SQLite rolled a transaction back on its own, and after a refused commit', async () => {
      // SQLITE_FULL in a statement: SQLite rolls the whole transaction back itself.
      await capPages(db);
      await expect(
        db.transaction((tx) => tx.em.query('INSERT INTO scratch (v) VALUES (zeroblob(200000))')),
      ).rejects.toMatchObject({
        status: 503,
        code: 'DISK_FULL',
      });
      await capPages(db, UNCAPPED);
      // A commit SQLite refuses (a deferred foreign key) leaves its transaction open for a rollback.
      await expect(
        db.transaction((tx) => tx.em.query(`INSERT INTO child (parent_id) VALUES ('nobody')`)),
      ).rejects.toMatchObject({
        driverError: { code: 'SQLITE_CONSTRAINT_FOREIGNKEY' },
      });
      await db.transaction((tx) => tx.em.query(`INSERT INTO scratch (v) VALUES ('kept')`));
      expect(await count(db, 'scratch')).toBe(1);
      expect(await count(db, 'child')).toBe(0);

      await db.close();
      db = await open();
      expect(await count(db, 'scratch')).toBe(1);
    });

    it('reopens the writer connection when a rollback cannot end what SQLite holds open', async () => {
      // Reaches inside on purpose: no SQL through the API leaves a rollback unable to finish.
      const driver = (db as unknown as { writer: { driver: { databaseConnection: { exec(sql: string): unknown } } } })
        .writer.driver;
      const stuck = driver.databaseConnection;
      stuck.exec(`BEGIN; INSERT INTO scratch (v) VALUES ('never committed')`);
      const exec = stuck.exec.bind(stuck);
      stuck.exec = (sql: string) => {
        if (sql === 'ROLLBACK') throw new Error('refused for the test');
        return exec(sql);
      };

      await db.transaction((tx) => tx.em.query(`INSERT INTO scratch (v) VALUES ('after reopen')`));
      expect(driver.databaseConnection).not.toBe(stuck);
      expect((await db.reader.query(`SELECT v FROM scratch ORDER BY rowid`)).map((r: { v: string }) => r.v)).toEqual([
        'kept',
        'after reopen',
      ]);
      expect(db.writeTrouble).toBeNull();
    });
  });
});
