import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import { ManualClock } from '../src/common/clock';
import { EventFeed } from '../src/progress/event-feed';
import { EventLog, NewEvent } from '../src/progress/event-log.service';
import { EventRetention } from '../src/progress/event-retention';
import { EventStreams } from '../src/progress/event-streams';
import { EVENT_DATA_SCHEMAS } from '../src/progress/event-map';
import { EVENT_TYPES, ProgressEvent } from '../src/progress/progress-event.entity';
import { StreamScopeDirectory } from '../src/progress/stream-scopes';
import type { AgentStatusEventData } from '../src/cluster/dto/agent.dto';
import type { UpgradeStatus } from '../src/upgrades/upgrade.entity';
import { givenCluster, givenPairedAgent } from './support/builders';
import { eventually, StreamClient } from './support/sse-client';
import { DATABASES, describeEachDatabase, TestApp } from './support/test-app';

/** An agent.status event's data for a made-up agent: the agent as the API shows it (AgentDto). */
const agentData = (clusterId: string, fields: Partial<AgentStatusEventData> = {}): AgentStatusEventData => ({
  id: randomUUID(),
  clusterId,
  name: 'made-up',
  address: '10.0.0.1',
  role: 'standalone',
  failoverGroup: null,
  active: true,
  state: 'idle',
  version: '1.0.0',
  webappsVersion: null,
  versionStatus: 'latest',
  autoUpgrade: true,
  remoteUpgrade: true,
  busy: false,
  hold: false,
  upgradeId: null,
  autoUpgradeBlocked: null,
  autoUpgradeRetryAt: null,
  lastSeenAt: null,
  pairedAt: null,
  facts: {},
  labels: {},
  windows: null,
  createdAt: '2026-05-01T10:00:00.000Z',
  ...fields,
});

describeEachDatabase('progress streams', (kind) => {
  const clock = new ManualClock(new Date('2026-05-01T10:00:00.000Z'));
  let t: TestApp;
  let viewer: string;
  const upgrades = new Set<string>();

  beforeAll(async () => {
    t = await TestApp.start(kind, { clock, env: { SSE_KEEPALIVE_MS: '200', STREAM_TICKET_TTL_S: '60' } });
    viewer = await t.tokenFor('viewer');
    // These tests publish events for made-up upgrades: the set says which of those exist.
    const directory = t.app.get(StreamScopeDirectory);
    const exists = directory.exists.bind(directory);
    jest
      .spyOn(directory, 'exists')
      .mockImplementation(async (scope) => (scope.kind === 'upgrade' && upgrades.has(scope.id)) || exists(scope));
  });
  afterAll(() => t.close());

  /** A task.progress event of a made-up step. */
  const progress = (clusterId: string, upgradeId: string, percent: number): NewEvent => ({
    type: 'task.progress',
    clusterId,
    upgradeId,
    data: {
      upgradeId,
      stepId: randomUUID(),
      kind: 'upgrade',
      agentId: randomUUID(),
      failoverGroup: null,
      status: 'running',
      waitingFor: null,
      windowOpensAt: null,
      phase: 'install',
      percent,
      attempts: 1,
      error: null,
      message: null,
      agentNotes: [],
      upgradePercent: percent,
    },
  });

  /** Appends events through the event log, one transaction each, as the domain does. */
  const publish = async (events: NewEvent[]) => {
    for (const event of events) await t.db.transaction((tx) => t.app.get(EventLog).append(tx, [event]));
  };
  const clusterStream = (clusterId: string, options: { lastEventId?: number } = {}) =>
    new StreamClient(`${t.baseUrl}/api/v1/clusters/${clusterId}/events`, { token: viewer, ...options });

  it('streams a cluster’s agent events live, in order, with the headers proxies need', async () => {
    const c = await givenCluster(t);
    const { agent } = await givenPairedAgent(t, c.id);
    const raw = await fetch(`${t.baseUrl}/api/v1/clusters/${c.id}/events`, {
      headers: { Authorization: `Bearer ${viewer}` },
    });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(raw.headers.get('cache-control')).toBe('no-cache, no-transform');
    expect(raw.headers.get('x-accel-buffering')).toBe('no');
    expect(raw.headers.get('content-encoding')).toBeNull();
    const reader = raw.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('retry: 3000');
    await reader.cancel();

    const stream = clusterStream(c.id);
    await stream.opened;
    for (let i = 0; i < 10; i++) await agent.heartbeat({ busy: i % 2 === 0 }).expect(200);
    const events = await stream.waitFor((e) => e.length >= 10);
    stream.close();
    expect(events.map((e) => e.type)).toEqual(Array(10).fill('agent.status'));
    expect(events.map((e) => e.data.data && (e.data.data as { state: string }).state)).toEqual([
      'busy',
      'idle',
      'busy',
      'idle',
      'busy',
      'idle',
      'busy',
      'idle',
      'busy',
      'idle',
    ]);
    const ids = events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    expect(events[0].data).toMatchObject({ id: ids[0], type: 'agent.status', clusterId: c.id, agentId: agent.agentId });
    // The data is the agent exactly as the API shows it: the dashboard redraws its row from it.
    const shown = await t.as(viewer).get(`/api/v1/agents/${agent.agentId}`).expect(200);
    expect(events.at(-1)!.data.data).toEqual(shown.body);
  });

  it('documents each event type’s data on the streams and the history (EventDataMap)', async () => {
    const document = (await t.as(viewer).get('/api/docs-json').expect(200)).body;
    const schemas = document.components.schemas as Record<string, unknown>;
    for (const name of Object.values(EVENT_DATA_SCHEMAS)) expect(Object.keys(schemas)).toContain(name);
    for (const route of ['/api/v1/clusters/{clusterId}/events', '/api/v1/upgrades/{upgradeId}/events']) {
      const media = document.paths[route].get.responses['200'].content['text/event-stream'];
      expect(Object.keys(media['x-sse-events'])).toEqual([...EVENT_TYPES, 'end', 'reset']);
      const dataRefs = (media.schema.oneOf as Array<{ allOf?: Array<{ properties?: { data?: { $ref: string } } }> }>)
        .map((variant) => variant.allOf?.[1].properties?.data?.$ref)
        .filter(Boolean);
      expect(dataRefs).toEqual(EVENT_TYPES.map((type) => `#/components/schemas/${EVENT_DATA_SCHEMAS[type]}`));
    }
    const history = document.paths['/api/v1/upgrades/{upgradeId}/history'].get.responses['200'];
    expect(JSON.stringify(history)).toContain('HistoryPageDto');
    expect(schemas.HistoryPageDto).toMatchObject({ properties: { items: { items: { oneOf: expect.any(Array) } } } });
  });

  it('replays every later event exactly once after a reconnect in the middle of a burst of writes', async () => {
    const c = await givenCluster(t);
    const other = await givenCluster(t);
    const first = clusterStream(c.id);
    await first.opened;
    const burst = (async () => {
      for (let i = 0; i < 120; i++) {
        const clusterId = i % 3 === 0 ? other.id : c.id;
        await publish([{ type: 'agent.status', clusterId, data: agentData(clusterId, { name: `agent-${i}` }) }]);
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await first.waitFor((e) => e.length >= 15);
    first.close();
    const resumeAfter = first.lastId!;
    const second = clusterStream(c.id, { lastEventId: resumeAfter });
    await second.opened;
    await burst;
    const expected = (await t.db.reader.find(ProgressEvent, { where: { clusterId: c.id }, order: { id: 'ASC' } }))
      .map((e) => e.id)
      .filter((id) => id > resumeAfter);
    const got = await second.waitFor((e) => e.length >= expected.length);
    await new Promise((r) => setTimeout(r, 100)); // nothing extra may follow
    second.close();
    expect(got.map((e) => e.id)).toEqual(expected);
    expect(got.every((e) => e.data.clusterId === c.id)).toBe(true);
  });

  it('sends reset when the events after Last-Event-ID are no longer retained', async () => {
    const c = await givenCluster(t);
    await publish([{ type: 'agent.status', clusterId: c.id, data: agentData(c.id, { name: 'old' }) }]);
    const oldId = (
      await t.db.reader.findOneOrFail(ProgressEvent, { where: { clusterId: c.id }, order: { id: 'DESC' } })
    ).id;
    clock.advance(31 * 86400_000);
    await publish([{ type: 'agent.status', clusterId: c.id, data: agentData(c.id, { name: 'not-old' }) }]);
    expect(await t.app.get(EventRetention).clean()).toBeGreaterThan(0);
    const stream = clusterStream(c.id, { lastEventId: oldId - 1 });
    const [reset] = await stream.waitFor((e) => e.length >= 1);
    expect(reset).toMatchObject({ type: 'reset', data: { reason: 'events-expired', lastEventId: oldId - 1 } });
    await publish([{ type: 'agent.status', clusterId: c.id, data: agentData(c.id, { name: 'after-reset' }) }]);
    const events = await stream.waitFor((e) => e.length >= 2);
    stream.close();
    expect(events[1]).toMatchObject({ type: 'agent.status', data: { data: { name: 'after-reset' } } });
  });

  it('streams and pages one upgrade’s events', async () => {
    const c = await givenCluster(t);
    const upgradeId = randomUUID();
    upgrades.add(upgradeId);
    await publish(Array.from({ length: 5 }, (_, i) => progress(c.id, upgradeId, i * 25)));
    await publish([progress(c.id, randomUUID(), 7)]);
    const stream = new StreamClient(`${t.baseUrl}/api/v1/upgrades/${upgradeId}/events`, {
      token: viewer,
      lastEventId: 0,
    });
    const events = await stream.waitFor((e) => e.length >= 5);
    stream.close();
    expect(events.map((e) => (e.data.data as { percent: number }).percent)).toEqual([0, 25, 50, 75, 100]);

    const page1 = await t.as(viewer).get(`/api/v1/upgrades/${upgradeId}/history?limit=3`).expect(200);
    expect(page1.body.items.map((e: { data: { percent: number } }) => e.data.percent)).toEqual([0, 25, 50]);
    const page2 = await t
      .as(viewer)
      .get(`/api/v1/upgrades/${upgradeId}/history?limit=3&afterId=${page1.body.nextAfterId}`)
      .expect(200);
    expect(page2.body).toMatchObject({ nextAfterId: null });
    expect(page2.body.items.map((e: { data: { percent: number } }) => e.data.percent)).toEqual([75, 100]);
    await t.as(viewer).get(`/api/v1/upgrades/${randomUUID()}/history`).expect(404);
  });

  describe('the end of an upgrade’s stream', () => {
    type Frame = { id?: number; event?: string; data?: Record<string, unknown> };
    /** Reads a stream as curl would, until the server closes it or `waitMs` passes; frames in order, and whether it closed. */
    const read = async (
      url: string,
      options: { lastEventId?: number; waitMs?: number; whileOpen?: () => Promise<void> } = {},
    ): Promise<{ frames: Frame[]; closed: boolean }> => {
      const abort = new AbortController();
      const res = await fetch(url, {
        signal: abort.signal,
        headers: {
          Authorization: `Bearer ${viewer}`,
          ...(options.lastEventId !== undefined ? { 'Last-Event-ID': String(options.lastEventId) } : {}),
        },
      });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      let text = '';
      let closed = false;
      const timer = setTimeout(() => abort.abort(), options.waitMs ?? 5000);
      const during = options.whileOpen?.();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) {
            closed = true;
            break;
          }
          text += new TextDecoder().decode(value);
        }
      } catch {
        // aborted: still open when the wait ran out
      } finally {
        clearTimeout(timer);
      }
      await during;
      const frames = text
        .split('\n\n')
        .filter((block) => /^(id|event|data):/m.test(block))
        .map((block) => {
          const field = (name: string) =>
            block
              .split('\n')
              .find((line) => line.startsWith(`${name}: `))
              ?.slice(name.length + 2);
          const id = field('id');
          const data = field('data');
          return {
            id: id === undefined ? undefined : Number(id),
            event: field('event'),
            data: data === undefined ? undefined : (JSON.parse(data) as Record<string, unknown>),
          };
        });
      return { frames, closed };
    };
    const newUpgrade = () => {
      const id = randomUUID();
      upgrades.add(id);
      return id;
    };
    const status = (clusterId: string, upgradeId: string, value: UpgradeStatus, finished: boolean): NewEvent => ({
      type: 'upgrade.status',
      clusterId,
      upgradeId,
      data: {
        upgradeId,
        status: value,
        percent: finished ? 100 : 0,
        reason: null,
        packageVersion: '1.1.0',
        scheduledAt: null,
        startedAt: clock.now().toISOString(),
        finishedAt: finished ? clock.now().toISOString() : null,
      },
    });
    const idsOf = async (upgradeId: string) =>
      (await t.db.reader.find(ProgressEvent, { where: { upgradeId }, order: { id: 'ASC' } })).map((e) => e.id);

    it('sends every event, then `end` with the final status, then closes; a reconnect with its id gets the end at once', async () => {
      const c = await givenCluster(t);
      const upgradeId = newUpgrade();
      const url = `${t.baseUrl}/api/v1/upgrades/${upgradeId}/events`;
      await publish([status(c.id, upgradeId, 'running', false), progress(c.id, upgradeId, 50)]);
      const streams = t.app.get(EventStreams);
      const feed = t.app.get(EventFeed);
      const before = { viewers: streams.viewerCount, subscribers: feed.subscriberCount };

      // Live: open while it runs; it ends on the event that finishes the upgrade.
      const live = await read(url, {
        lastEventId: 0,
        whileOpen: async () => {
          await eventually(() => streams.viewerCount === before.viewers + 1, 'the viewer to connect');
          await publish([progress(c.id, upgradeId, 100), status(c.id, upgradeId, 'succeeded', true)]);
        },
      });
      const all = await idsOf(upgradeId);
      expect(live.closed).toBe(true);
      expect(live.frames.slice(0, -1).map((f) => f.id)).toEqual(all);
      const end = live.frames.at(-1)!;
      expect(end).toMatchObject({ event: 'end', data: { upgradeId, status: 'succeeded', percent: 100 } });
      expect(end.id).toBeGreaterThanOrEqual(all.at(-1)!);
      await eventually(
        () => streams.viewerCount === before.viewers && feed.subscriberCount === before.subscribers,
        'the ended stream to be released',
      );

      // A reconnect from the end, and a replay of the whole history after the end.
      const again = await read(url, { lastEventId: end.id });
      expect(again).toEqual({ closed: true, frames: [{ id: end.id, event: 'end', data: end.data }] });
      const replay = await read(url, { lastEventId: 0 });
      expect(replay.closed).toBe(true);
      expect(replay.frames.map((f) => f.event)).toEqual([
        'upgrade.status',
        'task.progress',
        'task.progress',
        'upgrade.status',
        'end',
      ]);
      expect(replay.frames.slice(0, -1).map((f) => f.id)).toEqual(all);
      // No Last-Event-ID: nothing to replay, and the upgrade is over.
      expect((await read(url)).frames.map((f) => f.event)).toEqual(['end']);

      // An event of the upgrade written after its end (an agent's last report) comes before the end on a reconnect.
      await publish([
        {
          type: 'command.status',
          clusterId: c.id,
          upgradeId,
          data: {
            commandId: randomUUID(),
            agentId: randomUUID(),
            type: 'upgrade',
            status: 'succeeded',
            version: '1.1.0',
            error: null,
            notes: [],
            message: null,
            upgradeId,
            stepId: randomUUID(),
          },
        },
      ]);
      const late = await read(url, { lastEventId: end.id });
      expect(late.frames.map((f) => f.event)).toEqual(['command.status', 'end']);
      expect(late.frames[1].id).toBeGreaterThanOrEqual(late.frames[0].id!);
    });

    it('stays open with ?follow=true (a later retry), and never ends a cluster’s stream', async () => {
      const c = await givenCluster(t);
      const upgradeId = newUpgrade();
      await publish([status(c.id, upgradeId, 'failed', true)]);
      const followed = await read(`${t.baseUrl}/api/v1/upgrades/${upgradeId}/events?follow=true`, {
        lastEventId: 0,
        waitMs: 1500,
        whileOpen: async () => {
          await new Promise((r) => setTimeout(r, 300));
          await publish([status(c.id, upgradeId, 'running', false)]);
        },
      });
      expect(followed.closed).toBe(false);
      expect(followed.frames.map((f) => [f.event, f.data?.data && (f.data.data as { status: string }).status])).toEqual(
        [
          ['upgrade.status', 'failed'],
          ['upgrade.status', 'running'],
        ],
      );
      const cluster = await read(`${t.baseUrl}/api/v1/clusters/${c.id}/events`, { lastEventId: 0, waitMs: 1000 });
      expect(cluster.closed).toBe(false);
      expect(cluster.frames.map((f) => f.event)).toEqual(['upgrade.status', 'upgrade.status']);
      await t.as(viewer).get(`/api/v1/upgrades/${upgradeId}/events?follow=yes`).expect(400);
      await t.as(viewer).get(`/api/v1/clusters/${c.id}/events?follow=true`).expect(400);
    });

    it('ends a cancelled upgrade’s stream only once its running steps finished (finishedAt), judging by the newest status', async () => {
      const c = await givenCluster(t);
      const upgradeId = newUpgrade();
      const url = `${t.baseUrl}/api/v1/upgrades/${upgradeId}/events`;
      // Ended once, retried: what counts is the newest status.
      await publish([
        status(c.id, upgradeId, 'failed', true),
        status(c.id, upgradeId, 'running', false),
        status(c.id, upgradeId, 'cancelled', false),
      ]);
      const result = await read(url, {
        lastEventId: 0,
        whileOpen: async () => {
          await new Promise((r) => setTimeout(r, 500));
          await publish([progress(c.id, upgradeId, 100), status(c.id, upgradeId, 'cancelled', true)]);
        },
      });
      expect(result.closed).toBe(true);
      expect(result.frames.map((f) => f.event)).toEqual([
        'upgrade.status',
        'upgrade.status',
        'upgrade.status',
        'task.progress',
        'upgrade.status',
        'end',
      ]);
      expect(result.frames.at(-1)!.data).toMatchObject({ status: 'cancelled', finishedAt: expect.any(String) });
    });

    it('ends after a long replay with events still arriving, each event once and in order', async () => {
      const c = await givenCluster(t);
      const upgradeId = newUpgrade();
      await t.db.transaction((tx) =>
        t.app.get(EventLog).append(
          tx,
          Array.from({ length: 1200 }, (_, i) => progress(c.id, upgradeId, i)),
        ),
      );
      const result = await read(`${t.baseUrl}/api/v1/upgrades/${upgradeId}/events`, {
        lastEventId: 0,
        waitMs: 10_000,
        whileOpen: async () => {
          for (let i = 0; i < 20; i++) await publish([progress(c.id, upgradeId, 2000 + i)]);
          await publish([status(c.id, upgradeId, 'succeeded', true)]);
        },
      });
      expect(result.closed).toBe(true);
      expect(result.frames.slice(0, -1).map((f) => f.id)).toEqual(await idsOf(upgradeId));
      expect(result.frames.at(-1)).toMatchObject({ event: 'end', data: { status: 'succeeded' } });
    });
  });

  it('opens a stream with a ticket once, and refuses expired, reused and other-stream tickets', async () => {
    const c = await givenCluster(t);
    const other = await givenCluster(t);
    const issue = async (id: string) =>
      (await t.as(viewer).post('/api/v1/stream-tickets').send({ stream: 'cluster', id }).expect(201)).body;
    const ticket = await issue(c.id);
    expect(ticket.url).toBe(`/api/v1/clusters/${c.id}/events?ticket=${encodeURIComponent(ticket.ticket)}`);

    const stream = new StreamClient(t.baseUrl + ticket.url);
    await stream.opened;
    stream.close();
    const reused = await fetch(t.baseUrl + ticket.url);
    expect(reused.status).toBe(401);
    expect(((await reused.json()) as { code: string }).code).toBe('TICKET_USED');

    const forOther = await issue(other.id);
    const wrong = await fetch(`${t.baseUrl}/api/v1/clusters/${c.id}/events?ticket=${forOther.ticket}`);
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { code: string }).code).toBe('TICKET_WRONG_STREAM');

    const late = await issue(c.id);
    clock.advance(61_000);
    const expired = await fetch(t.baseUrl + late.url);
    expect(expired.status).toBe(401);
    expect(((await expired.json()) as { code: string }).code).toBe('TICKET_EXPIRED');

    await t.as(viewer).post('/api/v1/stream-tickets').send({ stream: 'cluster', id: randomUUID() }).expect(404);
    await t.http().post('/api/v1/stream-tickets').send({ stream: 'cluster', id: c.id }).expect(401);
  });

  it('refuses a caller without the role before any event is sent', async () => {
    const c = await givenCluster(t);
    const { agent } = await givenPairedAgent(t, c.id);
    const none = await fetch(`${t.baseUrl}/api/v1/clusters/${c.id}/events`);
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toMatch(/json/);
    expect(((await none.json()) as { message: string }).message).toMatch(/ticket/);
    const asAgent = await fetch(`${t.baseUrl}/api/v1/clusters/${c.id}/events`, {
      headers: { Authorization: `Bearer ${agent.token}` },
    });
    expect(asAgent.status).toBe(403);
    const client = new StreamClient(`${t.baseUrl}/api/v1/clusters/${c.id}/events`);
    await expect(client.opened).rejects.toThrow(/401/);
    expect(client.events).toEqual([]);
    await t.as(viewer).get(`/api/v1/clusters/${randomUUID()}/events`).expect(404);
    const bad = await t.as(viewer).get(`/api/v1/clusters/${c.id}/events`).set('Last-Event-ID', 'yesterday').expect(400);
    expect(bad.body.details[0].field).toBe('Last-Event-ID');
  });

  it('leaves no subscriber, timer or viewer behind after 200 connects and disconnects', async () => {
    const c = await givenCluster(t);
    const feed = t.app.get(EventFeed);
    const streams = t.app.get(EventStreams);
    const before = feed.subscriberCount;
    for (let round = 0; round < 4; round++) {
      const clients = Array.from({ length: 50 }, () => clusterStream(c.id));
      await Promise.all(clients.map((s) => s.opened));
      expect(feed.subscriberCount).toBe(before + 50);
      clients.forEach((s) => s.close());
      await eventually(
        () => feed.subscriberCount === before && streams.viewerCount === 0,
        'every stream to be released',
      );
    }
  });

  it('keeps an idle stream open with comment lines', async () => {
    const c = await givenCluster(t);
    const res = await fetch(`${t.baseUrl}/api/v1/clusters/${c.id}/events`, {
      headers: { Authorization: `Bearer ${viewer}` },
    });
    const reader = res.body!.getReader();
    let text = '';
    const deadline = Date.now() + 3000;
    while (!text.includes(': keep-alive') && Date.now() < deadline)
      text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    expect(text).toContain(': keep-alive\n\n');
  });
});

describeEachDatabase('a slow viewer', (kind) => {
  it('is disconnected once its unsent events pass the bound, and leaves nothing behind', async () => {
    const t = await TestApp.start(kind, { env: { SSE_MAX_BUFFER_BYTES: '65536' } });
    try {
      const c = await givenCluster(t);
      const viewer = await t.tokenFor('viewer');
      const streams = t.app.get(EventStreams);
      const feed = t.app.get(EventFeed);
      const baseline = feed.subscriberCount;
      // A client that stops reading: the kernel's socket buffers fill, then Lockstep's queue grows.
      const ended = new Promise<void>((resolve) => {
        const req = http.get(
          `${t.baseUrl}/api/v1/clusters/${c.id}/events`,
          { headers: { Authorization: `Bearer ${viewer}` } },
          (res) => {
            res.pause();
            res.socket.on('close', () => resolve());
          },
        );
        req.on('error', () => resolve());
      });
      await eventually(() => streams.viewerCount === 1, 'the viewer to connect');
      const log = t.app.get(EventLog);
      const padding = 'x'.repeat(1000);
      for (let batch = 0; batch < 40 && streams.viewerCount > 0; batch++) {
        await t.db.transaction((tx) =>
          log.append(
            tx,
            Array.from({ length: 250 }, (_, i) => ({
              type: 'agent.status' as const,
              clusterId: c.id,
              data: agentData(c.id, { name: `agent-${i}`, address: padding }),
            })),
          ),
        );
        await new Promise((r) => setTimeout(r, 10));
      }
      await ended;
      await eventually(
        () => streams.viewerCount === 0 && feed.subscriberCount === baseline,
        'the slow viewer to be released',
      );
    } finally {
      await t.close();
    }
  });
});

// Fan-out across replicas is PostgreSQL's (SQLite is one process): skipped, and reported so, without it.
describe('progress across replicas [postgres]', () => {
  const onPostgres = DATABASES.includes('postgres') ? it : it.skip;
  onPostgres('shows a viewer on one instance what an agent reported to another', async () => {
    const first = await TestApp.start('postgres');
    const second = await first.sibling();
    try {
      const c = await givenCluster(second);
      const viewerToken = await first.tokenFor('viewer');
      const stream = new StreamClient(`${first.baseUrl}/api/v1/clusters/${c.id}/events`, { token: viewerToken });
      await stream.opened;
      const { agent } = await givenPairedAgent(second, c.id);
      await agent.heartbeat({ busy: true }).expect(200);
      const events = await stream.waitFor((e) => e.some((x) => (x.data.data as { state?: string }).state === 'busy'));
      stream.close();
      expect(events.every((e) => e.data.clusterId === c.id)).toBe(true);
      expect(events.map((e) => e.id)).toEqual([...events.map((e) => e.id)].sort((a, b) => a - b));
    } finally {
      await second.stop();
      await first.close();
    }
  });
});
