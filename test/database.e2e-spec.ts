import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AccessToken } from '../src/auth/access-token.entity';
import { Database } from '../src/database/database';
import { createTestDatabase, postgresServerUrl } from './support/postgres';
import { describeEachDatabase } from './support/test-app';

function token(id: string): AccessToken {
  return Object.assign(new AccessToken(), {
    id,
    name: id,
    role: 'viewer',
    agentId: null,
    secretHash: id.padEnd(64, '0'),
    prefix: 'lsk_x',
    createdByTokenId: null,
    createdAt: new Date(),
    revokedAt: null,
  });
}

describeEachDatabase('Database', (kind) => {
  let db: Database;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    if (kind === 'postgres') {
      const created = await createTestDatabase(postgresServerUrl()!);
      db = await Database.open({ database: { type: 'postgres', url: created.url }, dataDir: os.tmpdir() });
      cleanup = created.drop;
    } else {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-db-'));
      db = await Database.open({ database: { type: 'sqlite', file: path.join(dir, 'db.sqlite') }, dataDir: dir });
      cleanup = async () => fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  afterAll(async () => {
    await db.close();
    await cleanup();
  });

  it('applies migrations to an empty database with nothing left to change', async () => {
    await expect(db.pendingSchemaChanges()).resolves.toEqual([]);
  });

  it("keeps one transaction's commit when an overlapping one rolls back", async () => {
    const failing = db.transaction(async (tx) => {
      await tx.em.insert(AccessToken, token('rolled-back'));
      await sleep(50); // let the other transaction start meanwhile
      throw new Error('refused');
    });
    const committing = db.transaction(async (tx) => {
      await tx.em.insert(AccessToken, token('committed'));
    });
    await expect(failing).rejects.toThrow('refused');
    await committing;
    expect(await db.reader.existsBy(AccessToken, { id: 'committed' })).toBe(true);
    expect(await db.reader.existsBy(AccessToken, { id: 'rolled-back' })).toBe(false);
  });

  it('shows readers committed data only', async () => {
    let seenInside: boolean | undefined;
    await db.transaction(async (tx) => {
      await tx.em.insert(AccessToken, token('in-flight'));
      seenInside = await db.reader.existsBy(AccessToken, { id: 'in-flight' });
    });
    expect(seenInside).toBe(false);
    expect(await db.reader.existsBy(AccessToken, { id: 'in-flight' })).toBe(true);
  });

  it('runs after-commit hooks only after a commit', async () => {
    const ran: string[] = [];
    await db.transaction(async (tx) => {
      tx.afterCommit(() => void ran.push('committed'));
      expect(ran).toEqual([]);
    });
    await db
      .transaction(async (tx) => {
        tx.afterCommit(() => void ran.push('rolled back'));
        throw new Error('no');
      })
      .catch(() => undefined);
    expect(ran).toEqual(['committed']);
  });
});
