import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { EventSource } from 'eventsource';
import { clientFor, CliError, expectData, type Connection, type Schemas } from './api';
import { EXIT, exitCodeForStatus, exitCodeForUpgrade } from './exit-codes';
import type { Output } from './output';
import { allAgents } from './resolve';

type Upgrade = Schemas['UpgradeDto'];
type Step = Schemas['StepDto'];

/** What an upgrade's events carry, as the OpenAPI document describes them. */
type StepEvent = Pick<
  Schemas['TaskProgressEventData'],
  'stepId' | 'status' | 'phase' | 'percent' | 'message' | 'error'
>;
type UpgradeEvent = Pick<Schemas['UpgradeStatusEventData'], 'status' | 'percent' | 'reason'>;

const FINAL: Upgrade['status'][] = [
  'succeeded',
  'failed',
  'completed-with-errors',
  'cancelled',
  'rolled-back',
  'rollback-failed',
];

/** One line per step: a bar on a terminal; in a log, a line whenever its status or phase changes. */
interface StepDisplay {
  show(step: StepEvent): void;
  stop(): void;
}

function terminalDisplay(steps: Step[], names: Map<string, string>): StepDisplay {
  const multi = new MultiBar(
    {
      format: '{agent} [{bar}] {percentage}% {status} {phase} {message}',
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
    },
    Presets.shades_classic,
  );
  const width = Math.max(...steps.map((s) => (names.get(s.agentId ?? '') ?? '').length), 5);
  const bars = new Map<string, SingleBar>();
  for (const step of steps) {
    const agent = (names.get(step.agentId ?? '') ?? step.agentId ?? '?').padEnd(width);
    bars.set(step.id, multi.create(100, step.percent, { agent, ...labels(step) }));
  }
  return {
    show: (step) => bars.get(step.stepId)?.update(step.percent, labels(step)),
    stop: () => multi.stop(),
  };
}

function logDisplay(steps: Step[], names: Map<string, string>, out: Output): StepDisplay {
  const agentOf = new Map(steps.map((s) => [s.id, names.get(s.agentId ?? '') ?? s.agentId ?? '?']));
  const last = new Map<string, string>();
  return {
    show: (step) => {
      const { status, phase, message } = labels(step);
      const key = `${status} ${phase}`;
      if (!agentOf.has(step.stepId) || last.get(step.stepId) === key) return;
      last.set(step.stepId, key);
      out.note(`${agentOf.get(step.stepId)}: ${status} ${phase} ${step.percent}% ${message}`.trimEnd());
    },
    stop: () => undefined,
  };
}

const labels = (step: Pick<StepEvent, 'status' | 'phase' | 'message' | 'error'>) => ({
  status: step.status,
  phase: step.phase ?? '',
  message: step.error ?? step.message ?? '',
});

/** Statuses after which a stream is worth opening again: the server is busy, stopping or restarting. */
const RETRYABLE = new Set([429, 502, 503, 504]);
const RECONNECT_MAX_MS = 15_000;

export interface WatchOptions {
  /** Give up (exit 7) when the upgrade has not ended, or the server not come back, by then. */
  timeoutS?: number;
}

/**
 * Follows an upgrade until it ends (or pauses) and returns the exit code for how it ended. The
 * stream opens first and the upgrade is read once it is open (the server subscribes before it
 * answers, so nothing falls between the two). A dropped stream resumes after the last event seen
 * (Last-Event-ID): the eventsource library does that when the connection breaks, and this class
 * when the server answered a retryable status (a replica stopping answers 503 SHUTTING_DOWN, and
 * the library gives up on any status but 200), with a growing wait (docs/cli.md).
 */
export async function watchUpgrade(
  connection: Connection,
  upgradeId: string,
  out: Output,
  options: WatchOptions = {},
): Promise<number> {
  const client = clientFor(connection);
  const read = async () =>
    expectData(
      await client.GET('/api/v1/upgrades/{upgradeId}', { params: { path: { upgradeId } } }),
      `upgrade ${upgradeId}`,
    );
  const first = await read();
  const names = new Map((await allAgents(client, first.clusterId)).map((a) => [a.id, a.name]));
  const tracked = (first.steps ?? []).filter((s) => s.kind === 'upgrade' || s.kind === 'manual');
  const display = out.json
    ? undefined
    : process.stderr.isTTY
      ? terminalDisplay(tracked, names)
      : logDisplay(tracked, names, out);
  return new UpgradeWatch(connection, upgradeId, out, display, read).run(options.timeoutS);
}

class UpgradeWatch {
  private source?: EventSource;
  private lastId = 0;
  private opened = false;
  private retries = 0;
  private done = false;
  private resolve!: (code: number) => void;
  private reject!: (error: unknown) => void;
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly connection: Connection,
    private readonly upgradeId: string,
    private readonly out: Output,
    private readonly display: StepDisplay | undefined,
    private readonly read: () => Promise<Upgrade>,
  ) {}

  run(timeoutS?: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      if (timeoutS !== undefined) {
        this.later(timeoutS * 1000, () =>
          this.finish(EXIT.unavailable, `gave up after ${timeoutS} s: upgrade ${this.upgradeId} has not ended`),
        );
      }
      this.connect();
    });
  }

  private connect(): void {
    const { connection, upgradeId } = this;
    const resumeFrom = this.lastId;
    const source = new EventSource(`${connection.url}/api/v1/upgrades/${encodeURIComponent(upgradeId)}/events`, {
      fetch: (input, init) =>
        fetch(input, {
          ...init,
          headers: {
            ...init?.headers,
            Authorization: `Bearer ${connection.token}`,
            // The library sends it on its own reconnects; this is for a stream opened anew.
            ...(resumeFrom > 0 ? { 'Last-Event-ID': String(resumeFrom) } : {}),
          },
        }),
    });
    this.source = source;
    source.addEventListener('open', () => this.onOpen());
    this.onEvent(source, 'task.progress', (step: StepEvent) => this.display?.show(step));
    this.onEvent(source, 'upgrade.status', (upgrade: UpgradeEvent) => this.judge(upgrade));
    // The end's data is the final upgrade.status data itself (docs/cli.md).
    source.addEventListener('end', (message: MessageEvent) => {
      const upgrade = JSON.parse(String(message.data)) as UpgradeEvent;
      if (this.out.json)
        this.out.result(JSON.stringify({ id: Number(message.lastEventId), type: 'end', data: upgrade }));
      this.ended(upgrade);
    });
    // Events after the last one seen are no longer retained: read the upgrade again instead.
    source.addEventListener('reset', () => void this.snapshot().catch((error: unknown) => this.fail(error)));
    source.addEventListener('error', (error) => this.onError(source, error.code));
  }

  private onOpen(): void {
    this.retries = 0;
    if (this.opened) {
      if (!this.out.json) this.out.note(`reconnected; resuming after event ${this.lastId}`);
      return;
    }
    this.opened = true;
    this.snapshot().catch((error: unknown) => this.fail(error));
  }

  /** A progress event: its data is an EventDto, whose own `data` is what the handler reads. */
  private onEvent(source: EventSource, type: Schemas['EventType'], handle: (data: never) => void): void {
    source.addEventListener(type, (message: MessageEvent) => {
      const event = JSON.parse(String(message.data)) as Schemas['EventDto'];
      this.lastId = event.id;
      if (this.out.json) this.out.result(JSON.stringify(event));
      handle(event.data as never);
    });
  }

  private onError(source: EventSource, status: number | undefined): void {
    if (this.done) return;
    if (source.readyState !== source.CLOSED) {
      if (!this.out.json) this.out.note('the event stream dropped; reconnecting');
      return;
    }
    if (status !== undefined && !RETRYABLE.has(status)) {
      this.fail(new CliError(`the event stream was refused: HTTP ${status}`, undefined, exitCodeForStatus(status)));
      return;
    }
    const waitMs = Math.min(RECONNECT_MAX_MS, 500 * 2 ** this.retries++);
    if (!this.out.json) this.out.note(`the server answered ${status ?? 'nothing'}; trying again in ${waitMs} ms`);
    this.later(waitMs, () => this.connect());
  }

  private async snapshot(): Promise<void> {
    const now = await this.read();
    this.out.note(`watching upgrade ${this.upgradeId} to ${now.packageVersion}: ${now.status}, ${now.percent}%`);
    for (const step of now.steps ?? []) this.display?.show({ ...step, stepId: step.id });
    if (this.judge(now)) return;
    if (FINAL.includes(now.status) && !(now.steps ?? []).some((s) => s.status === 'running')) this.ended(now);
  }

  private judge(upgrade: UpgradeEvent): boolean {
    if (upgrade.status !== 'paused') return false;
    this.finish(
      EXIT.paused,
      `upgrade ${this.upgradeId} paused at ${upgrade.percent}%: ${upgrade.reason ?? 'by an operator'}`,
    );
    return true;
  }

  private ended(upgrade: UpgradeEvent): void {
    this.finish(
      exitCodeForUpgrade(upgrade.status),
      `upgrade ${this.upgradeId} ${upgrade.status} at ${upgrade.percent}%${upgrade.reason ? `: ${upgrade.reason}` : ''}`,
    );
  }

  private later(ms: number, run: () => void): void {
    this.timers.push(setTimeout(run, ms));
  }

  private stop(): boolean {
    if (this.done) return false;
    this.done = true;
    this.source?.close();
    for (const timer of this.timers) clearTimeout(timer);
    this.display?.stop();
    return true;
  }

  private finish(code: number, line: string): void {
    if (!this.stop()) return;
    this.out.note(line);
    this.resolve(code);
  }

  private fail(error: unknown): void {
    if (this.stop()) this.reject(error);
  }
}
