import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HeartbeatAnswerDto, PairAnswerDto } from '../cluster/dto/agent-protocol.dto';
import type { AgentCommandMessage } from '../protocol/agent-protocol';
import type { SigningPolicy } from '../protocol/package-signing';
import { backoffMs } from './backoff';
import { AgentState, Home, Outcome, readJson, UpgradeJournal, writeJsonAtomic } from './home';
import { HostCommands } from './host-commands';
import { Product, stopProcess } from './product';
import { RollbackRunner } from './rollback-runner';
import { rollBack, runMigration, unpackSafely, UpgradeRunner, withNotes } from './upgrade-runner';
import { WorkQueue } from './work-queue';

export interface AgentOptions {
  server: string;
  pairingKey?: string;
  home: string;
  busyFile?: string;
  /** A package to install as the first version when the home has none (a new host). */
  seedPackage?: string;
  /** Runs as `<serviceCommand> stop <name>` and `<serviceCommand> start <name>` for an upgrade's stopServices (split on spaces, no shell). */
  serviceCommand?: string;
  /** Run (detached) after an upgrade with rebootAfter succeeded and its report was acknowledged (split on spaces, no shell). */
  rebootCommand?: string;
  log?: (line: string) => void;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

/**
 * The reference agent: pairs once, then heartbeats at the pace the server asks, runs the commands
 * it receives one at a time while it keeps heartbeating, and reports on them. A network error never
 * stops it: it waits (backing off, with jitter) and tries again.
 */
export class ReferenceAgent {
  readonly home: Home;
  private readonly product: Product;
  private readonly work: WorkQueue;
  private readonly host: HostCommands;
  private readonly log: (line: string) => void;
  private state: AgentState | null = null;
  private hold = false;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** False once the server refused a report's notes (a server from before them). */
  private serverTakesNotes = true;
  private wake: (() => void) | null = null;
  /** Sets the running sleep's timer again, after reportRetryAt moved. */
  private rearm: (() => void) | null = null;
  /** When reports the server has not taken are to be sent again; null: none waiting. */
  private reportRetryAt: number | null = null;
  private reportFailures = 0;
  /**
   * While a command runs, heartbeats carry the versions from before it: an upgrade is settled only
   * once verified (until then a rollback may restore them), and the server takes a heartbeat's new
   * version for a finished upgrade, even one whose step it had failed by timeout (docs/operations.md).
   */
  private versionsBefore: { version: string | null; webappsVersion: string | null } | null = null;
  /** The heartbeat request on its way, if any (see execute). */
  private heartbeatInFlight: Promise<void> | null = null;

  constructor(private readonly options: AgentOptions) {
    this.home = new Home(path.resolve(options.home));
    this.log = options.log ?? ((line) => console.log(`${new Date().toISOString()} ${line}`));
    this.product = new Product(this.home, this.log);
    this.work = new WorkQueue(this.home, options.busyFile ?? null, this.log);
    this.host = new HostCommands(options.serviceCommand || null, options.rebootCommand || null);
  }

  async start(): Promise<void> {
    this.home.prepare();
    this.state = readJson<AgentState>(this.home.stateFile);
    await this.product.stopLeftover();
    await this.recoverInterrupted();
    if (!this.home.currentVersion() && this.options.seedPackage) await this.seed(this.options.seedPackage);
    if (this.home.currentVersion() && !this.product.running) this.product.start();
    let failures = 0;
    while (!this.stopped) {
      let pollAfterMs: number;
      try {
        if (!this.state) this.state = await this.pair();
        pollAfterMs = await this.beat();
        failures = 0;
      } catch (error) {
        if (error instanceof HttpError && error.status === 401 && this.state) {
          this.log(
            `the server no longer knows this agent's token (${error.body.slice(0, 200)}); pair again with a new pairing key`,
          );
        } else {
          this.log(`server unreachable or refused: ${(error as Error).message}`);
        }
        // Exponential, with jitter so a fleet does not come back all at once, never past 30 s.
        pollAfterMs = backoffMs(++failures);
      }
      await this.sleep(pollAfterMs);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
    await this.product.stop();
  }

  /** Waits `ms`, or less when a report the server did not take is due again (reportRetryAt). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const until = Date.now() + ms;
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        this.wake = this.rearm = null;
        resolve();
      };
      this.rearm = () => {
        clearTimeout(timer);
        timer = setTimeout(done, Math.max(0, Math.min(until, this.reportRetryAt ?? until) - Date.now()));
      };
      this.wake = done;
      this.rearm();
    });
  }

  /**
   * A final report did not reach the server (or it answered 5xx): it goes again with the next
   * heartbeat, which comes no later than the back-off (at most 30 s, see backoff.ts), whatever
   * pace the server asked for.
   */
  private retryReportsSoon(): void {
    this.reportRetryAt = Date.now() + backoffMs(++this.reportFailures);
    this.rearm?.();
  }

  /**
   * The agent died during an upgrade after it stopped the product (the journal says so): the
   * upgrade is undone as a failure would be (data from the backup, the old version running) and the
   * command is recorded as rolled back, to be reported when it comes again.
   */
  private async recoverInterrupted(): Promise<void> {
    const journal = readJson<UpgradeJournal>(this.home.journalFile);
    const rollback = new RollbackRunner(this.home, this.product);
    const cutRollback = rollback.interrupted();
    if (cutRollback) {
      // A rollback is done again from the start: restoring the backup twice gives the same data.
      this.log(`the agent stopped during rollback command ${cutRollback.id}: finishing it`);
      this.finish(cutRollback.id, await rollback.run(cutRollback, () => Promise.resolve()));
      rollback.settled();
    } else if (journal) {
      if (journal.migrationPid) await stopProcess(journal.migrationPid, 'node');
      this.log(`the agent stopped during the ${journal.phase} phase of command ${journal.commandId}: rolling back`);
      const notes = await rollBack(this.home, this.product, journal, this.host);
      for (const note of notes) this.log(note);
      // The version of what the command upgraded, as it is again: the core, or the web apps (none: no version).
      const before = journal.kind === 'webapps' ? journal.oldWebapps : journal.oldVersion;
      const restored =
        journal.kind === 'webapps'
          ? `the web apps ${journal.oldWebapps ?? '(none)'}`
          : (journal.oldVersion ?? 'the old version');
      this.finish(
        journal.commandId,
        withNotes(
          {
            status: 'rolled-back',
            ...(before ? { version: before } : {}),
            error: `the agent stopped during the ${journal.phase} phase; on restart it restored the data and ${restored}`,
          },
          notes,
        ),
      );
    } else if (this.state?.running) {
      // Cut off before the product was stopped: nothing on the host changed.
      this.finish(this.state.running, {
        status: 'failed',
        error: 'the agent stopped while carrying out this command, before it changed anything; run it again',
      });
    }
  }

  /** Records a command's outcome and queues its report until the server acknowledges it. */
  private finish(commandId: string, outcome: Outcome, rebootAfterAck = false): void {
    if (!this.state) return;
    this.state.done[commandId] = outcome;
    this.state.running = null;
    if (rebootAfterAck) this.state.rebootAfterAck = commandId;
    this.state.unacknowledged = [...new Set([...(this.state.unacknowledged ?? []), commandId])];
    writeJsonAtomic(this.home.stateFile, this.state, 0o600);
  }

  private async seed(file: string): Promise<void> {
    const temp = path.join(this.home.dir, 'versions', '.seed');
    await unpackSafely(file, temp);
    const manifest = readJson<{ version: string }>(path.join(temp, 'manifest.json'));
    if (!manifest?.version) throw new Error(`${file} has no manifest version`);
    fs.renameSync(temp, this.home.versionDir(manifest.version));
    this.home.switchCurrent(manifest.version);
    this.log(`installed ${manifest.version} from ${file}`);
  }

  private async pair(): Promise<AgentState> {
    if (!this.options.pairingKey)
      throw new Error(`not paired yet and no --pairing-key given (${this.home.stateFile} is missing)`);
    const answer = await this.call<PairAnswerDto>('POST', '/api/v1/agent/pair', {
      pairingKey: this.options.pairingKey,
      ...this.report(),
    });
    const state: AgentState = { server: this.options.server, agentId: answer.agentId, token: answer.token, done: {} };
    if (answer.signing) this.keepSigningPolicy(answer.signing);
    writeJsonAtomic(this.home.stateFile, state, 0o600);
    fs.chmodSync(this.home.stateFile, 0o600);
    this.log(`paired as agent ${answer.agentId}`);
    return state;
  }

  private async beat(): Promise<number> {
    this.reportRetryAt = null; // sent again now; a failure schedules the next try
    for (const id of this.state!.unacknowledged ?? [])
      if (this.state!.done[id]) await this.send(id, this.state!.done[id]);
    this.work.tick(this.hold);
    const request = this.call<HeartbeatAnswerDto>('POST', '/api/v1/agent/heartbeat', {
      ...this.report(),
      busy: this.work.busy,
      signingRevision: this.home.signingPolicy().revision,
    });
    const inFlight = request.then(
      () => undefined,
      () => undefined,
    );
    this.heartbeatInFlight = inFlight;
    const answer = await request.finally(() => {
      if (this.heartbeatInFlight === inFlight) this.heartbeatInFlight = null;
    });
    if (answer.removed) {
      this.log('the server removed this agent; stopping');
      this.stopped = true;
      return 0;
    }
    if (answer.signing) this.keepSigningPolicy(answer.signing);
    if (answer.hold !== this.hold) this.log(answer.hold ? 'hold: no new work of my own' : 'hold lifted');
    this.hold = answer.hold;
    this.work.tick(this.hold);
    // The commands' shapes are the protocol's (src/protocol/agent-protocol.ts).
    for (const command of answer.commands as unknown as AgentCommandMessage[]) this.receive(command);
    return answer.pollAfterMs;
  }

  /** The cluster's signing policy, kept in the home: what the install phase checks packages against. */
  private keepSigningPolicy(policy: SigningPolicy): void {
    this.home.setSigningPolicy(policy);
    this.log(
      `signing policy ${policy.revision}: ${policy.requireSignedPackages ? 'signed packages required' : 'signatures checked when present'}, keys: ${policy.keys.map((k) => k.name).join(', ') || 'none'}`,
    );
  }

  private report() {
    return {
      ...(this.versionsBefore ?? { version: this.home.currentVersion(), webappsVersion: this.home.webappsVersion() }),
      facts: {
        os: os.platform(),
        arch: os.arch(),
        freeDiskMb: freeDiskMb(this.home.dir),
        memoryMb: Math.floor(os.totalmem() / 1048576),
      },
      capabilities: { remoteUpgrade: true },
    };
  }

  /** A command comes with every heartbeat until it is reported on: each is done once. */
  private receive(command: AgentCommandMessage): void {
    const done = this.state!.done[command.id];
    if (done) {
      void this.send(command.id, done); // the earlier report was lost: say it again
      return;
    }
    if (this.running) return; // one at a time; the next comes again with a later heartbeat
    this.running = this.execute(command).finally(() => {
      this.running = null;
    });
  }

  private async execute(command: AgentCommandMessage): Promise<void> {
    this.log(`command ${command.id}: ${command.type}`);
    const progress = async (phase: string, percent: number, message?: string) => {
      await this.call('POST', `/api/v1/agent/commands/${command.id}/progress`, {
        phase,
        percent,
        ...(message ? { message: message.slice(0, 500) } : {}),
      }).catch((e: Error) => this.log(`progress not sent: ${e.message}`));
    };
    this.state!.running = command.id;
    writeJsonAtomic(this.home.stateFile, this.state, 0o600);
    this.versionsBefore = { version: this.home.currentVersion(), webappsVersion: this.home.webappsVersion() };
    let outcome: Outcome;
    let reboot = false;
    try {
      [outcome, reboot] = await this.perform(command, progress);
    } catch (error) {
      outcome = { status: 'failed', error: (error as Error).message };
    }
    // A heartbeat still on its way carries the versions from before: it must reach the server
    // before the report does, or the server would take the old version back after the report.
    for (let pending = this.heartbeatInFlight; pending; pending = this.heartbeatInFlight) await pending;
    this.finish(command.id, outcome, reboot);
    if (command.type === 'rollback') new RollbackRunner(this.home, this.product).settled();
    this.versionsBefore = null;
    this.log(`command ${command.id} ${outcome.status}${outcome.error ? `: ${outcome.error}` : ''}`);
    for (const note of outcome.notes ?? []) this.log(`command ${command.id}: ${note}`);
    await this.send(command.id, outcome);
  }

  /** The command's outcome, and whether the host is to be rebooted once the server acknowledged it. */
  private async perform(
    command: AgentCommandMessage,
    progress: (phase: string, percent: number, message?: string) => Promise<void>,
  ): Promise<[Outcome, boolean]> {
    switch (command.type) {
      case 'upgrade': {
        const runner = new UpgradeRunner(this.home, this.product, this.state!.server, this.state!.token, this.host);
        const outcome = await runner.run(command, progress);
        return [outcome, runner.rebootRequested];
      }
      case 'switchover': {
        const activate = command.activate === true;
        await progress('switchover', 50, activate ? 'becoming active' : 'becoming standby');
        writeJsonAtomic(this.home.roleFile, { active: activate, since: new Date().toISOString() });
        return [{ status: 'succeeded' }, false];
      }
      case 'rollback':
        return [await new RollbackRunner(this.home, this.product).run(command, progress), false];
      case 'migrate': {
        const version = this.home.currentVersion();
        const manifest = readJson<{ migration?: string }>(path.join(this.home.currentLink, 'manifest.json'));
        await progress('migrate', 10, `migrating data of ${version}`);
        if (manifest?.migration)
          await runMigration(path.join(this.home.currentLink, manifest.migration), this.home.dataDir);
        return [{ status: 'succeeded', ...(version ? { version } : {}) }, false];
      }
      default:
        // A newer server's command this agent does not know: said so, not ignored.
        return [
          {
            status: 'failed',
            error: `command type ${String((command as { type: unknown }).type)} is not known to this agent`,
          },
          false,
        ];
    }
  }

  private async send(commandId: string, outcome: Outcome): Promise<void> {
    let recorded = true;
    try {
      await this.complete(commandId, outcome);
    } catch (error) {
      // 409: already recorded (or cancelled by the server); 403/404: not ours any more. Anything
      // else (the network, the server down): kept, and sent again with the next heartbeat.
      if (!(error instanceof HttpError && [403, 404, 409].includes(error.status))) {
        this.log(`report on ${commandId} not sent yet: ${(error as Error).message}`);
        this.retryReportsSoon();
        return;
      }
      recorded = error.status === 409;
    }
    const reboot = this.acknowledged(commandId);
    if (reboot) this.rebootIfRecorded(commandId, recorded);
  }

  /**
   * The report on a command reached the server: it leaves the unacknowledged list (and the
   * reboot it asked for is cleared, before it runs: a reboot is issued once, never again on the
   * next start). Returns whether the command asked for a reboot.
   */
  private acknowledged(commandId: string): boolean {
    const pending = this.state!.unacknowledged ?? [];
    const reboot = this.state!.rebootAfterAck === commandId;
    if (pending.includes(commandId) || reboot) {
      this.state!.unacknowledged = pending.filter((id) => id !== commandId);
      if (reboot) this.state!.rebootAfterAck = null;
      writeJsonAtomic(this.home.stateFile, this.state, 0o600);
    }
    if (!this.state!.unacknowledged?.length) {
      this.reportFailures = 0;
      this.reportRetryAt = null;
    }
    return reboot;
  }

  /** Reboots for a command that asked for it, once the server recorded its report. */
  private rebootIfRecorded(commandId: string, recorded: boolean): void {
    if (!recorded) {
      this.log(`command ${commandId} is no longer this agent's: no reboot`);
    } else if (!this.host.rebootCommand) {
      this.log(
        `command ${commandId} asked for a reboot, but this agent runs without --reboot-command now: not rebooted`,
      );
    } else {
      this.log(`command ${commandId} acknowledged: rebooting with ${this.host.rebootCommand}`);
      this.host.reboot(this.log);
    }
  }

  /**
   * The final report. A server from before notes (or before backups in reports) refuses the field
   * (400 naming it): the report is sent again without both (the notes already went out as progress
   * messages; such a server cannot roll back anyway), and so are later ones.
   */
  private async complete(commandId: string, outcome: Outcome): Promise<void> {
    const route = `/api/v1/agent/commands/${commandId}/complete`;
    const { notes, backup, ...bare } = outcome;
    if ((!notes && !backup) || !this.serverTakesNotes) {
      await this.call('POST', route, bare);
      return;
    }
    try {
      await this.call('POST', route, outcome);
    } catch (error) {
      if (!(error instanceof HttpError && error.status === 400 && /\b(notes|backup)\b/.test(error.body))) throw error;
      this.serverTakesNotes = false;
      this.log(
        `the server does not take notes or backups in reports (${error.body.slice(0, 200)}); report on ${commandId} sent without them`,
      );
      await this.call('POST', route, bare);
    }
  }

  private async call<T>(method: string, route: string, body: unknown): Promise<T> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (this.state) headers.Authorization = `Bearer ${this.state.token}`;
    const res = await fetch(`${this.options.server}${route}`, {
      method,
      headers,
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    if (!res.ok) throw new HttpError(res.status, text);
    return (text ? JSON.parse(text) : {}) as T;
  }
}

function freeDiskMb(dir: string): number {
  const stats = fs.statfsSync(dir);
  return Math.floor((stats.bavail * stats.bsize) / 1048576);
}
