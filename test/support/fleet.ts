import { UpgradeExecutor } from '../../src/upgrades/upgrade-executor';
import { FakeAgent } from './fake-agent';
import type { TestApp } from './test-app';

export interface Command {
  id: string;
  type: 'upgrade' | 'switchover' | 'migrate' | 'rollback';
  toVersion?: string;
  activate?: boolean;
  [field: string]: unknown;
}

export type Outcome =
  { status: 'succeeded' | 'failed' | 'rolled-back'; version?: string; error?: string; backup?: string } | 'later';
export type Behaviour = (name: string, command: Command) => Outcome;

/**
 * Upgrades succeed with the version they install, naming the backup they took; rollbacks succeed
 * with the version they go back to; switchovers succeed.
 */
export const obedient: Behaviour = (_name, command) => ({
  status: 'succeeded',
  ...(command.type === 'upgrade' ? { version: command.toVersion, backup: `backup-${command.id.slice(0, 8)}` } : {}),
  ...(command.type === 'rollback' && command.toVersion ? { version: command.toVersion } : {}),
});

export interface Member {
  name: string;
  agent: FakeAgent;
}

/**
 * Fake agents driven in rounds over the real HTTP protocol: each round runs one executor pass,
 * then every agent heartbeats, and the commands new in that round are recorded (in `rounds`, so a
 * test can tell what ran together from what ran after) and then answered as `behaviour` says.
 */
export class Fleet {
  readonly rounds: string[][] = [];
  readonly commands: Array<{ name: string; command: Command }> = [];
  readonly later: Array<{ member: Member; command: Command }> = [];
  private readonly seen = new Set<string>();

  constructor(
    public t: TestApp,
    readonly members: Member[],
    public behaviour: Behaviour = obedient,
  ) {}

  /** Every command issued so far, as "name upgrade" / "name takes over", in order. */
  get log(): string[] {
    return this.rounds.flat();
  }

  async pass(): Promise<void> {
    await this.t.app.get(UpgradeExecutor).tick();
  }

  async round(): Promise<string[]> {
    await this.pass();
    const issued: Array<{ member: Member; command: Command }> = [];
    for (const member of this.members) {
      const res = await member.agent.heartbeat();
      if (res.status !== 200) throw new Error(`heartbeat of ${member.name}: ${res.status} ${JSON.stringify(res.body)}`);
      for (const command of res.body.commands as Command[]) {
        if (this.seen.has(command.id)) continue;
        this.seen.add(command.id);
        issued.push({ member, command });
        this.commands.push({ name: member.name, command });
      }
    }
    const labels = issued.map(({ member, command }) => label(member.name, command));
    if (labels.length) this.rounds.push(labels);
    for (const item of issued) {
      const outcome = this.behaviour(item.member.name, item.command);
      if (outcome === 'later') this.later.push(item);
      else await this.answer(item.member, item.command, outcome);
    }
    return labels;
  }

  /** Reports on a command: a progress report through the phases, then its end. */
  async answer(member: Member, command: Command, outcome: Exclude<Outcome, 'later'>): Promise<void> {
    const phase = command.type === 'upgrade' ? 'install' : command.type === 'rollback' ? 'restore' : 'switchover';
    const progress = await member.agent.progress(command.id, phase, 50);
    if (progress.status !== 200)
      throw new Error(`progress of ${member.name}: ${progress.status} ${JSON.stringify(progress.body)}`);
    const done = await member.agent.complete(
      command.id,
      outcome.status,
      outcome.version,
      outcome.error,
      outcome.backup,
    );
    if (done.status !== 200) throw new Error(`complete of ${member.name}: ${done.status} ${JSON.stringify(done.body)}`);
    // An upgrade's report names the version of what it upgraded: the web apps, or the core (which
    // brings the web apps it shipped with).
    if (outcome.version && command.kind === 'webapps') member.agent.state.webappsVersion = outcome.version;
    else if (outcome.version) member.agent.state.version = outcome.version;
  }

  /** Answers the commands held back with 'later'. */
  async answerLater(
    outcome: (name: string, command: Command) => Exclude<Outcome, 'later'> = (n, c) =>
      obedient(n, c) as Exclude<Outcome, 'later'>,
  ): Promise<void> {
    for (const item of this.later.splice(0))
      await this.answer(item.member, item.command, outcome(item.member.name, item.command));
  }

  /** Runs rounds until the upgrade reaches one of `statuses`; returns it. */
  async until(upgradeId: string, statuses: string[], maxRounds = 40): Promise<Record<string, any>> {
    for (let i = 0; i < maxRounds; i++) {
      await this.round();
      await this.pass();
      const res = await this.t.admin.get(`/api/v1/upgrades/${upgradeId}`);
      if (statuses.includes(res.body.status)) return res.body;
    }
    const res = await this.t.admin.get(`/api/v1/upgrades/${upgradeId}`);
    throw new Error(
      `upgrade ${upgradeId} is ${res.body.status} after ${maxRounds} rounds, not ${statuses.join('/')}: ${JSON.stringify(res.body.steps)}`,
    );
  }
}

const label = (name: string, command: Command) =>
  command.type === 'switchover'
    ? `${name} ${command.activate ? 'takes over' : 'hands over'}`
    : `${name} ${command.type}`;
