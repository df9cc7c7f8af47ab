import * as fs from 'node:fs';
import * as path from 'node:path';
import { Home, readJson } from './home';

/**
 * The agent's own work (reference 002's scans): job files in work/, each `{"durationMs": n}`, run
 * one at a time. No job starts while the server says hold; jobs queued meanwhile start after the
 * upgrade. `--busy-file` marks the agent busy from outside while that file exists.
 */
export class WorkQueue {
  private current: { name: string; until: number } | null = null;

  constructor(
    private readonly home: Home,
    private readonly busyFile: string | null,
    private readonly log: (line: string) => void,
  ) {}

  get busy(): boolean {
    return this.current !== null || (this.busyFile !== null && fs.existsSync(this.busyFile));
  }

  /** Ends the job whose time is up and, unless held, starts the next one. */
  tick(hold: boolean): void {
    if (this.current && Date.now() >= this.current.until) {
      fs.rmSync(path.join(this.home.workDir, this.current.name), { force: true });
      this.log(`work ${this.current.name} done`);
      this.current = null;
    }
    if (this.current || hold) return;
    const next = fs
      .readdirSync(this.home.workDir)
      .filter((f) => f.endsWith('.json'))
      .sort()[0];
    if (!next) return;
    const job = readJson<{ durationMs?: number }>(path.join(this.home.workDir, next));
    this.current = { name: next, until: Date.now() + (job?.durationMs ?? 1000) };
    this.log(`work ${next} started`);
  }
}
