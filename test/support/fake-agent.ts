import type { TestApp } from './test-app';

export interface HeartbeatBody {
  version: string | null;
  webappsVersion?: string | null;
  busy: boolean;
  facts?: Record<string, unknown>;
  capabilities?: { remoteUpgrade?: boolean };
}

/** An agent for tests that speaks the real HTTP protocol: pair, heartbeat, report. */
export class FakeAgent {
  private constructor(
    private t: TestApp,
    readonly agentId: string,
    readonly token: string,
    public state: HeartbeatBody,
  ) {}

  /** Talks to this app from now on (the same database, after a restart). */
  useApp(t: TestApp): void {
    this.t = t;
  }

  static async pair(t: TestApp, pairingKey: string, state: Partial<HeartbeatBody> = {}): Promise<FakeAgent> {
    const initial: HeartbeatBody = {
      version: '1.0.0',
      busy: false,
      facts: { os: 'linux', arch: 'x64', freeDiskMb: 10_000, memoryMb: 4096 },
      ...state,
    };
    const res = await t
      .http()
      .post('/api/v1/agent/pair')
      .send({
        pairingKey,
        ...(initial.version ? { version: initial.version } : {}),
        facts: initial.facts,
        capabilities: initial.capabilities,
      });
    if (res.status !== 201) throw new Error(`pairing failed: ${res.status} ${JSON.stringify(res.body)}`);
    return new FakeAgent(t, res.body.agentId, res.body.token, initial);
  }

  /** Talks to another instance from now on (after a restart, or to a sibling replica). */
  moveTo(t: TestApp): void {
    this.t = t;
  }

  /** Sends a heartbeat with the current state (changed by `change`) and returns the raw response. */
  heartbeat(change: Partial<HeartbeatBody> = {}) {
    this.state = { ...this.state, ...change };
    return this.t.as(this.token).post('/api/v1/agent/heartbeat').send(this.state);
  }

  progress(commandId: string, phase: string, percent: number, message?: string) {
    return this.t
      .as(this.token)
      .post(`/api/v1/agent/commands/${commandId}/progress`)
      .send({ phase, percent, ...(message ? { message } : {}) });
  }

  complete(
    commandId: string,
    status: 'succeeded' | 'failed' | 'rolled-back',
    version?: string,
    error?: string,
    backup?: string,
  ) {
    return this.t
      .as(this.token)
      .post(`/api/v1/agent/commands/${commandId}/complete`)
      .send({ status, ...(version ? { version } : {}), ...(error ? { error } : {}), ...(backup ? { backup } : {}) });
  }
}
