import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Home, readJson } from './home';

/**
 * "The product": `current/bin/product.js`, run as a supervised child process. It writes
 * run/health.json with the version it runs; `verify` reads that. If it dies on its own it is
 * started again (after a second), until it is stopped on purpose.
 */
export class Product {
  private child: ChildProcess | null = null;
  private wanted = false;

  constructor(
    private readonly home: Home,
    private readonly log: (line: string) => void,
  ) {}

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null;
  }

  /**
   * A product left running by an agent that died (SIGKILL, power cut of the agent only) would
   * run beside the one started now: stop it first. Its pid is in the health file it wrote.
   */
  async stopLeftover(): Promise<void> {
    const pid = readJson<{ pid?: number }>(this.home.healthFile)?.pid;
    if (!pid || pid === this.child?.pid) return;
    await stopProcess(pid, 'product.js');
  }

  start(): void {
    this.wanted = true;
    if (this.running) return;
    const version = this.home.currentVersion();
    const entry = path.join(this.home.currentLink, 'bin', 'product.js');
    if (!version || !fs.existsSync(entry)) throw new Error(`no product to start: ${entry} is missing`);
    fs.rmSync(this.home.healthFile, { force: true });
    const child = spawn(process.execPath, [entry], {
      cwd: fs.realpathSync(this.home.currentLink),
      env: {
        ...process.env,
        LOCKSTEP_PRODUCT_VERSION: version,
        LOCKSTEP_PRODUCT_HEALTH: this.home.healthFile,
        LOCKSTEP_PRODUCT_DATA: this.home.dataDir,
      },
      stdio: 'ignore',
    });
    this.child = child;
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      if (this.wanted) {
        this.log(`product ${version} exited (${signal ?? code}); starting it again`);
        setTimeout(() => this.wanted && !this.running && this.safeStart(), 1000).unref();
      }
    });
  }

  private safeStart(): void {
    try {
      this.start();
    } catch (error) {
      this.log(`could not start the product: ${(error as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    this.wanted = false;
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
    this.child = null;
  }

  /** Waits until the product reports `version` as running. */
  async verify(version: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const health = readJson<{ version?: string; pid?: number }>(this.home.healthFile);
      if (health?.version === version && this.running) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    const health = readJson<{ version?: string }>(this.home.healthFile);
    throw new Error(`the product does not report ${version} running (it reports ${health?.version ?? 'nothing'})`);
  }
}

/** Stops a process left behind by an earlier run of the agent, if it is still the one we think (its command line says so). */
export async function stopProcess(pid: number, expected: string): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  try {
    // A recycled pid belongs to someone else: leave it alone.
    if (!fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(expected)) return;
  } catch {
    // No /proc (not Linux): trust the pid.
  }
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive()) process.kill(pid, 'SIGKILL');
}
