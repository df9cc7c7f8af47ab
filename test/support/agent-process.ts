import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

/** The reference agent as a real child process, as `npm run agent` starts it. */
export class AgentProcess {
  readonly output: string[] = [];
  private readonly child: ChildProcess;

  constructor(args: {
    server: string;
    pairingKey: string;
    home: string;
    seed?: string;
    busyFile?: string;
    serviceCommand?: string;
    rebootCommand?: string;
  }) {
    const argv = ['--server', args.server, '--pairing-key', args.pairingKey, '--home', args.home];
    if (args.seed) argv.push('--seed', args.seed);
    if (args.busyFile) argv.push('--busy-file', args.busyFile);
    if (args.serviceCommand) argv.push('--service-command', args.serviceCommand);
    if (args.rebootCommand) argv.push('--reboot-command', args.rebootCommand);
    this.child = spawn(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', path.join(ROOT, 'src', 'agent', 'main.ts'), ...argv],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json') },
      },
    );
    for (const stream of [this.child.stdout!, this.child.stderr!])
      stream.on('data', (chunk: Buffer) => this.output.push(...chunk.toString().trimEnd().split('\n')));
  }

  /** Kills the agent at once, as a crash would: its children (product, migration) are left behind. */
  async crash(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }

  /** Stops the agent (SIGTERM: it stops its product and exits). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      this.child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      this.child.kill('SIGTERM');
    });
  }
}
