/**
 * bench/dashboard: how long the dashboard's upgrade view takes to show a finished upgrade of N
 * agents (default 1,000; half in failover pairs) with its whole history, and the page's JavaScript
 * heap afterwards, in Debian's Chromium. Baselines, measured in the same run in the same page:
 * fetching the same upgrade and every page of its history as JSON with fetch(), and receiving the
 * same events over the same SSE stream without drawing them: the least any page showing that
 * history must spend.
 *
 * "Shown" (the figure's end): every step has its row with its status, the header says succeeded,
 * and the event log holds every event of the history. The log is virtual (only the lines in sight
 * are in the DOM, src/dashboard/public/event-log.js), so for it "every event shown" means: it knows
 * them all (its data-count), its scroll range covers them all (scrollHeight at least one line height
 * per event), and the newest event's line is drawn and wholly inside its visible box. Before the
 * log was virtual the end was every event's line in the DOM, a stricter-looking but no more visible
 * condition (the lines off screen were not laid out either: content-visibility).
 *
 *   npm run bench:dashboard -- [--agents 1000] [--runs 3]
 */
import { TEST_ORIGIN } from '../src/testing/fixtures';
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { createApp } from '../src/app.factory';
import { loadConfig } from '../src/config/app-config';
import { UpgradesService } from '../src/upgrades/upgrades.service';
import { driveUpgrade, setUpFleet } from './support/fleet';

const { values } = parseArgs({
  options: { agents: { type: 'string', default: '1000' }, runs: { type: 'string', default: '3' } },
});
const N = Number(values.agents);
const RUNS = Number(values.runs);
const ADMIN = 'lsk_bench-admin-token-000000000000';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PHASES: Array<[string, number]> = [
  ['precheck', 0],
  ['backup', 14],
  ['stop', 28],
  ['install', 42],
  ['migrate', 57],
  ['start', 71],
  ['verify', 85],
];

// Run in the page; these are the only page globals the callbacks touch.
type Box = { top: number; bottom: number; height: number };
type PageElement = {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
  scrollHeight: number;
  getBoundingClientRect(): Box;
};
declare const document: {
  querySelectorAll(selector: string): { length: number };
  querySelector(selector: string): PageElement | null;
  getElementById(id: string): PageElement | null;
};
declare const performance: { now(): number; memory?: { usedJSHeapSize: number } };
declare const sessionStorage: { setItem(key: string, value: string): void };
declare class EventSource {
  constructor(url: string);
  addEventListener(type: string, listener: (message: { data: string }) => void): void;
  close(): void;
}

async function main(): Promise<void> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`bench/dashboard needs Chromium at ${CHROMIUM} (apt-get install chromium)`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-dashboard-'));
  const app = await createApp(
    loadConfig({ DATA_DIR: dataDir, LOCKSTEP_ADMIN_TOKEN: ADMIN, LOG_LEVEL: 'error', PAIRING_RATE_LIMIT: '1000000' }),
  );
  await app.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--enable-precise-memory-info'],
  });
  try {
    const { clusterId, packageId, agents } = await setUpFleet(app, base, ADMIN, N);
    const upgrade = await app
      .get(UpgradesService)
      .create(clusterId, { packageId, target: { all: true }, policy: 'backup-first' }, TEST_ORIGIN);
    await driveUpgrade(app, upgrade.id, agents, PHASES);
    const finished = await app.get(UpgradesService).get(upgrade.id);
    const steps = finished.steps?.length ?? 0;
    console.log(
      `bench/dashboard: upgrade of ${N} agents (${N / 2} in pairs, backup-first) ${finished.status}, ${steps} steps`,
    );

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(base);
    await page.evaluate((token) => sessionStorage.setItem('lockstep.token', token), ADMIN);
    await page.reload();

    const views: number[] = [];
    const fetches: number[] = [];
    const streams: number[] = [];
    let events = 0;
    let heapMb = 0;
    for (let run = 0; run < RUNS; run++) {
      // Baseline: the same data as JSON, every history page, no drawing.
      await page.goto(`${base}/#/`);
      await page.reload();
      await page.locator('#view h1').waitFor();
      const fetched = await page.evaluate(
        async ({ id, token }) => {
          const started = performance.now();
          const get = async (url: string): Promise<{ items: Array<{ id: number }>; nextAfterId: number | null }> =>
            (await fetch(url, { headers: { Authorization: `Bearer ${token}` } })).json() as Promise<{
              items: Array<{ id: number }>;
              nextAfterId: number | null;
            }>;
          await get(`/api/v1/upgrades/${id}`);
          let count = 0;
          let lastId = 0;
          for (let after = 0; ;) {
            const page = await get(`/api/v1/upgrades/${id}/history?limit=1000&afterId=${after}`);
            count += page.items.length;
            if (page.items.length) lastId = page.items[page.items.length - 1].id;
            if (page.nextAfterId === null) break;
            after = page.nextAfterId;
          }
          return { ms: performance.now() - started, count, lastId };
        },
        { id: upgrade.id, token: ADMIN },
      );
      fetches.push(fetched.ms);
      events = fetched.count;
      const lastId = fetched.lastId;

      // Second baseline: the same events over the same SSE stream, received and parsed, not drawn.
      const streamed = await page.evaluate(
        async ({ id, token, count }) => {
          const started = performance.now();
          const answer = await fetch('/api/v1/stream-tickets', {
            method: 'POST',
            headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ stream: 'upgrade', id }),
          });
          const ticket = (await answer.json()) as { url: string };
          return new Promise<number>((resolve) => {
            let received = 0;
            const source = new EventSource(`${ticket.url}&lastEventId=0`);
            const onEvent = (message: { data: string }) => {
              JSON.parse(message.data);
              if (++received < count) return;
              source.close();
              resolve(performance.now() - started);
            };
            for (const type of [
              'upgrade.status',
              'task.progress',
              'pair.switchover',
              'agent.status',
              'package.status',
              'command.status',
            ])
              source.addEventListener(type, onEvent);
          });
        },
        { id: upgrade.id, token: ADMIN, count: events },
      );
      streams.push(streamed);
      // The figure: the upgrade view, from navigation to every step and every event shown (as the
      // header comment defines it for the virtual log).
      const started = Date.now();
      await page.goto(`${base}/#/upgrades/${upgrade.id}`);
      await page.waitForFunction(
        ({ count, stepCount, newest }) => {
          if (
            document.querySelectorAll('.step[data-status]').length !== stepCount ||
            !/succeeded/.test(document.querySelector('#upgrade-status')?.textContent ?? '')
          )
            return false;
          const log = document.getElementById('events');
          if (!log || Number(log.dataset.count) < count) return false;
          const line = document.querySelector(`#events .line[data-id="${newest}"]`);
          if (!line) return false;
          const box = log.getBoundingClientRect();
          const drawn = line.getBoundingClientRect();
          return (
            log.scrollHeight >= count * drawn.height - 1 &&
            drawn.top >= box.top - 0.5 &&
            drawn.bottom <= box.bottom + 0.5
          );
        },
        { count: events, stepCount: steps, newest: lastId },
        { timeout: 120_000, polling: 50 },
      );
      views.push(Date.now() - started);
      heapMb = (await page.evaluate(() => performance.memory?.usedJSHeapSize ?? 0)) / 2 ** 20;
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    console.log(
      `upgrade view, ${steps} step rows and ${events} events in its log   median ${median(views).toFixed(0)} ms   (runs: ${views.map((v) => v.toFixed(0)).join(', ')})`,
    );
    console.log(
      `baseline: the same upgrade and history fetched as JSON   median ${median(fetches).toFixed(0)} ms   (runs: ${fetches.map((v) => v.toFixed(0)).join(', ')})`,
    );
    console.log(
      `baseline: the same events over SSE, parsed, not drawn          median ${median(streams).toFixed(0)} ms   (runs: ${streams.map((v) => v.toFixed(0)).join(', ')})`,
    );
    console.log(
      `view / JSON ${(median(views) / median(fetches)).toFixed(1)}, view / SSE ${(median(views) / median(streams)).toFixed(1)}; page JS heap after the view ${heapMb.toFixed(1)} MiB`,
    );
  } finally {
    await browser.close();
    await app.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

void main();
