import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { EventSource } from 'eventsource';
import { clientFor, CliError, expectData, type Connection, type Schemas } from './api';
import { EXIT, exitCodeForUpgrade } from './exit-codes';
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

const FINAL: Upgrade['status'][] = ['succeeded', 'failed', 'completed-with-errors', 'cancelled'];

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

/**
 * Follows an upgrade until it ends (or pauses) and returns the exit code for how it ended. The
 * stream opens first and the upgrade is read once it is open (the server subscribes before it
 * answers, so nothing falls between the two); a dropped stream reconnects with Last-Event-ID and
 * carries on where it stopped (the eventsource library sends it; docs/cli.md).
 */
export async function watchUpgrade(connection: Connection, upgradeId: string, out: Output): Promise<number> {
  const client = clientFor(connection);
  const read = async () =>
    expectData(
      await client.GET('/api/v1/upgrades/{upgradeId}', { params: { path: { upgradeId } } }),
      `upgrade ${upgradeId}`,
    );
  const first = await read();
  const names = new Map((await allAgents(client, first.clusterId)).map((a) => [a.id, a.name]));
  const tracked = (first.steps ?? []).filter((s) => s.kind === 'upgrade' || s.kind === 'manual');

  return new Promise<number>((resolve, reject) => {
    const display = out.json
      ? undefined
      : process.stderr.isTTY
        ? terminalDisplay(tracked, names)
        : logDisplay(tracked, names, out);
    let snapshotTaken = false;
    let lastId = 0;
    const source = new EventSource(`${connection.url}/api/v1/upgrades/${encodeURIComponent(upgradeId)}/events`, {
      fetch: (input, init) =>
        fetch(input, { ...init, headers: { ...init?.headers, Authorization: `Bearer ${connection.token}` } }),
    });
    const finish = (code: number, line?: string) => {
      source.close();
      display?.stop();
      if (line) out.note(line);
      resolve(code);
    };
    const judge = (upgrade: UpgradeEvent): boolean => {
      if (upgrade.status === 'paused') {
        finish(
          EXIT.paused,
          `upgrade ${upgradeId} paused at ${upgrade.percent}%: ${upgrade.reason ?? 'by an operator'}`,
        );
        return true;
      }
      return false;
    };
    const ended = (upgrade: UpgradeEvent) =>
      finish(
        exitCodeForUpgrade(upgrade.status),
        `upgrade ${upgradeId} ${upgrade.status} at ${upgrade.percent}%${upgrade.reason ? `: ${upgrade.reason}` : ''}`,
      );
    const takeSnapshot = async () => {
      const now = await read();
      out.note(`watching upgrade ${upgradeId} to ${now.packageVersion}: ${now.status}, ${now.percent}%`);
      for (const step of now.steps ?? []) display?.show({ ...step, stepId: step.id });
      if (judge(now)) return;
      if (FINAL.includes(now.status) && !(now.steps ?? []).some((s) => s.status === 'running')) ended(now);
    };

    source.addEventListener('open', () => {
      if (snapshotTaken) return out.json ? undefined : out.note(`reconnected; resuming after event ${lastId}`);
      snapshotTaken = true;
      takeSnapshot().catch((error: unknown) => {
        source.close();
        display?.stop();
        reject(error);
      });
    });
    /** A progress event: its data is an EventDto, whose own `data` is what the handler reads. */
    const onEvent = (type: Schemas['EventType'], handle: (data: never) => void) =>
      source.addEventListener(type, (message: MessageEvent) => {
        const event = JSON.parse(String(message.data)) as Schemas['EventDto'];
        lastId = event.id;
        if (out.json) out.result(JSON.stringify(event));
        handle(event.data as never);
      });
    onEvent('task.progress', (step: StepEvent) => display?.show(step));
    onEvent('upgrade.status', (upgrade: UpgradeEvent) => judge(upgrade));
    // The end's data is the final upgrade.status data itself (docs/cli.md).
    source.addEventListener('end', (message: MessageEvent) => {
      const upgrade = JSON.parse(String(message.data)) as UpgradeEvent;
      if (out.json) out.result(JSON.stringify({ id: Number(message.lastEventId), type: 'end', data: upgrade }));
      ended(upgrade);
    });
    // Events after the last one seen are no longer retained: read the upgrade again instead.
    source.addEventListener('reset', () => void takeSnapshot().catch(reject));
    source.addEventListener('error', (error) => {
      if (source.readyState === source.CLOSED) {
        display?.stop();
        reject(
          new CliError(
            `the event stream was refused: ${error.code ? `HTTP ${error.code}` : ''} ${error.message ?? ''}`.trim(),
          ),
        );
      } else if (!out.json) {
        out.note('the event stream dropped; reconnecting');
      }
    });
  });
}
