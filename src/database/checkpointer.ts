import { Logger } from '@nestjs/common';
import { Worker } from 'node:worker_threads';

/** How often the checkpointer looks at the WAL. */
export const CHECKPOINT_EVERY_MS = 500;
/**
 * The WAL's size from which it copies the WAL into the database file: SQLite's own default
 * (1,000 pages of 4 KiB). A quiet database is left as SQLite would leave it; a busy one reaches
 * this size and stays there (SQLite reuses the file from its start after a checkpoint, without
 * shrinking it), and is then checkpointed every CHECKPOINT_EVERY_MS.
 */
export const CHECKPOINT_FROM_BYTES = 1000 * 4096;
/**
 * The writer's own automatic checkpoint, in pages (4 KiB each), kept only as a backstop should the
 * checkpointer stop: far above what the checkpointer lets the WAL grow to between two passes.
 */
export const BACKSTOP_AUTOCHECKPOINT_PAGES = 25_000;

/**
 * Plain JavaScript, run as a worker thread (eval, so it runs the same from dist/ and under the
 * tests' TypeScript loader): its own connection to the SQLite file, a PASSIVE checkpoint every
 * CHECKPOINT_EVERY_MS once the WAL holds CHECKPOINT_FROM_BYTES. A passive checkpoint never blocks
 * the writer or the readers.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const Sqlite = require(workerData.driver);
const db = new Sqlite(workerData.file, { timeout: 5000 });
let failing = false;
const timer = setInterval(() => {
  try {
    const wal = fs.statSync(workerData.file + '-wal', { throwIfNoEntry: false });
    if (!wal || wal.size < workerData.fromBytes) return;
    db.pragma('wal_checkpoint(PASSIVE)');
    if (failing) parentPort.postMessage({ recovered: true });
    failing = false;
  } catch (error) {
    if (!failing) parentPort.postMessage({ error: String(error && error.message) });
    failing = true;
  }
}, workerData.everyMs);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/**
 * Runs SQLite's checkpoints (copying the WAL into the database file, then syncing both) on a
 * worker thread instead of the event loop. better-sqlite3 is synchronous: the writer's automatic
 * checkpoint ran inside a COMMIT every 1,000 pages and held every request for tens to hundreds of
 * milliseconds (docs/durability.md, "Group commit"). A checkpoint by another connection is
 * SQLite's own mechanism and as crash-safe as one by the writer; if this thread stops, the
 * writer's automatic checkpoint (at BACKSTOP_AUTOCHECKPOINT_PAGES) still bounds the WAL.
 */
export class Checkpointer {
  private readonly logger = new Logger(Checkpointer.name);
  private worker: Worker | undefined;

  constructor(file: string) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        file,
        driver: require.resolve('better-sqlite3'),
        everyMs: CHECKPOINT_EVERY_MS,
        fromBytes: CHECKPOINT_FROM_BYTES,
      },
    });
    // The process may end without waiting for this thread; close() stops it cleanly.
    this.worker.unref();
    this.worker.on('message', (message: { error?: string; recovered?: boolean }) => {
      if (message.error) this.logger.error(`checkpoints are failing: ${message.error}`);
      if (message.recovered) this.logger.log('checkpoints succeed again');
    });
    this.worker.on('error', (error) => {
      this.logger.error(`the checkpoint thread stopped: ${error.message}; the writer checkpoints by itself meanwhile`);
      this.worker = undefined;
    });
  }

  /** Stops the thread after the checkpoint in progress, and closes its connection. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (!worker) return;
    // Held while it stops: unreferenced, the thread and the timer would let the process end in the
    // middle of this await, before whatever called close() carried on (a stop never logged, the
    // OpenAPI script never written).
    worker.ref();
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('stop');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)))]);
    clearTimeout(timer);
    await worker.terminate();
  }
}
