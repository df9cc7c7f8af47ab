import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The service names a command may carry (the server allows no others): nothing a shell or a flag parser would read. */
export const SERVICE_NAME = /^[A-Za-z0-9_.@-]{1,64}$/;

/**
 * Splits a configured command line on white space into a program and its first arguments. No shell
 * runs it: quotes, `$`, `;` and the like are passed on as they are.
 */
export function splitCommand(command: string): [string, ...string[]] {
  const words = command.trim().split(/\s+/).filter(Boolean);
  if (!words.length) throw new Error('the command is empty');
  return words as [string, ...string[]];
}

/**
 * What the agent runs on its host beyond the product: `--service-command` (as `<cmd> stop <name>`
 * and `<cmd> start <name>`) and `--reboot-command`. Either may be absent: the options that need it
 * are then reported as not applied.
 */
export class HostCommands {
  constructor(
    readonly serviceCommand: string | null = null,
    readonly rebootCommand: string | null = null,
    private readonly timeoutMs = 120_000,
  ) {}

  /** Runs `<service command> stop|start <name>`; a non-zero exit, a time-out or a missing program throws, with its output. */
  async service(action: 'stop' | 'start', name: string): Promise<void> {
    if (!this.serviceCommand) throw new Error('this agent has no --service-command');
    if (!SERVICE_NAME.test(name)) throw new Error(`${JSON.stringify(name.slice(0, 80))} is not a service name`);
    const [program, ...args] = splitCommand(this.serviceCommand);
    try {
      await run(program, [...args, action, name], { timeout: this.timeoutMs, windowsHide: true });
    } catch (error) {
      const e = error as Error & { stderr?: string; code?: number | string; killed?: boolean };
      const why = e.killed
        ? `no answer within ${Math.round(this.timeoutMs / 1000)} s`
        : (e.stderr?.trim() || e.message).slice(0, 300);
      throw new Error(`${this.serviceCommand} ${action} ${name} failed: ${why}`);
    }
  }

  /**
   * Starts the reboot command on its own (a new session, no pipes) and does not wait for it: the
   * reboot ends this process too. A program that cannot be started is logged.
   */
  reboot(log: (line: string) => void): void {
    if (!this.rebootCommand) return;
    const [program, ...args] = splitCommand(this.rebootCommand);
    const child = spawn(program, args, { detached: true, stdio: 'ignore' });
    child.on('error', (error) =>
      log(`the reboot command ${this.rebootCommand} could not be started: ${error.message}`),
    );
    child.unref();
  }
}
