import * as fs from 'node:fs';
import * as path from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';
import { packageArchive } from './support/archives';
import { givenCluster, givenPairedAgent } from './support/builders';
import { EventStreams } from '../src/progress/event-streams';
import { EVENT_TYPES } from '../src/progress/progress-event.entity';
import { FakeAgent } from './support/fake-agent';
import { Command, Fleet, Member, obedient } from './support/fleet';
import { TEST_ADMIN_TOKEN, TestApp } from './support/test-app';

// The callbacks below run in the page; these are the only page globals they touch.
type PageElement = {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  getAttribute(name: string): string | null;
};
declare const document: {
  querySelectorAll(selector: string): ArrayLike<PageElement>;
  querySelector(selector: string): PageElement | null;
  getElementById(id: string): PageElement | null;
};

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, 'artifacts');
const available = fs.existsSync(CHROMIUM);
if (!available) {
  const message = `[lockstep e2e] dashboard browser tests SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run installs it)`;
  if (process.env.LOCKSTEP_REQUIRE_BROWSER === '1') throw new Error(message);
  console.log(message);
}

/** The focused element's id and its drawn outline ("none" when there is none). */
function focusedOutline(page: Page): Promise<{ id: string; outline: string }> {
  return page.evaluate(() => {
    const el = (document as unknown as { activeElement: PageElement & { id: string } }).activeElement;
    const style = (
      globalThis as unknown as { getComputedStyle(e: unknown): { outlineStyle: string; outlineWidth: string } }
    ).getComputedStyle(el);
    return {
      id: el.id,
      outline:
        style.outlineStyle === 'none' || style.outlineWidth === '0px'
          ? 'none'
          : `${style.outlineStyle} ${style.outlineWidth}`,
    };
  });
}

/** The dashboard in Debian's Chromium (headless, no browser download) against a real server and fake agents. */
(available ? describe : describe.skip)('dashboard in Chromium [sqlite]', () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    t = await TestApp.start('sqlite');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    // An exception the page did not catch (a broken import, a typo on some path) fails the test it happened in.
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });
  afterEach(() => {
    expect(pageErrors.splice(0)).toEqual([]);
  });
  afterAll(async () => {
    await browser?.close();
    await t.close();
  });

  /** A fresh sign-in (whatever an earlier test left in the tab's session storage), landing on `hash`. */
  async function signIn(token: string, hash: string): Promise<void> {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${t.baseUrl}/${hash}`);
    await page.evaluate(() => (globalThis as unknown as { sessionStorage: { clear(): void } }).sessionStorage.clear());
    await page.reload();
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  it('signs in, shows agents and badges, refuses a bad package in words, previews, starts and follows an upgrade to 100%', async () => {
    const cluster = await givenCluster(t, { name: 'web-demo' });
    const members: Member[] = [];
    for (const body of [
      { name: 'g1-main', role: 'main', failoverGroup: 'g1' },
      { name: 'g1-backup', role: 'backup', failoverGroup: 'g1' },
      { name: 'solo' },
    ] as const) {
      const { agent } = await givenPairedAgent(t, cluster.id, body);
      members.push({ name: body.name, agent });
    }

    // By keyboard alone: the token field has focus, Enter signs in, Tab reaches the cluster, Enter opens it.
    await page.goto(t.baseUrl);
    await page.keyboard.type(TEST_ADMIN_TOKEN);
    await page.keyboard.press('Enter');
    await page.getByRole('link', { name: 'web-demo' }).waitFor();
    expect(await page.locator('tr[data-cluster="web-demo"] td').allTextContents()).toEqual([
      'web-demo',
      'acme-agent',
      '3',
      '—',
      '1.0.0: 3',
      'one version',
    ]);
    for (
      let presses = 0;
      presses < 10 &&
      (await page.evaluate(
        () => (document as unknown as { activeElement: PageElement | null }).activeElement?.textContent,
      )) !== 'web-demo';
      presses++
    ) {
      await page.keyboard.press('Tab');
    }
    await page.keyboard.press('Enter');

    // Agents grouped by pair, the active member marked, a version status badge each.
    await page.locator('tr[data-agent="g1-main"]').waitFor();
    // Focus moved to the main region for screen readers, with no frame drawn around the page; the
    // next Tab lands on a control, and that one shows its focus ring.
    expect(await focusedOutline(page)).toEqual({ id: 'main', outline: 'none' });
    await page.keyboard.press('Tab');
    expect(await focusedOutline(page)).toMatchObject({ outline: expect.stringMatching(/^solid [1-9]/) });
    expect(await page.locator('tr.group td').allTextContents()).toEqual(['Failover pair g1', 'Standalone']);
    expect(await page.locator('tr[data-agent="g1-main"] th').textContent()).toContain('active');
    expect(await page.locator('tr[data-agent="solo"] .badge').allTextContents()).toEqual(['idle', 'latest']);
    expect(await accessibilityProblems(page)).toEqual([]);

    // A refusal, in words.
    await page.locator('#upload-file').setInputFiles({
      name: 'other.tar.gz',
      mimeType: 'application/gzip',
      buffer: packageArchive({ product: 'other-product' }),
    });
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await expectText(page, '#upload-result', /for product other-product, but cluster web-demo runs acme-agent/);

    // A good package, then the plan, then the upgrade.
    await page
      .locator('#upload-file')
      .setInputFiles({ name: 'acme-1.1.0.tar.gz', mimeType: 'application/gzip', buffer: packageArchive() });
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.locator('tr[data-package="1.1.0"]').waitFor();
    await page.locator('#new-upgrade').getByLabel('Failover policy').selectOption('backup-first');
    await page.getByRole('button', { name: 'Preview plan' }).click();
    await expectText(page, '#plan', /Plan: backup-first/);
    expect(await page.locator('#plan li').allTextContents()).toEqual(
      expect.arrayContaining([expect.stringMatching(/^switchover g1-backup after upgrade g1-backup/)]),
    );
    // A change after the preview asks for a new one before anything starts.
    await page.locator('#new-upgrade').getByLabel('Canary units (then pause)').fill('0');
    expect(await page.getByRole('button', { name: 'Start upgrade' }).isDisabled()).toBe(true);
    await expectText(page, '#plan', /preview the plan again/);
    await page.getByRole('button', { name: 'Preview plan' }).click();
    await expectText(page, '#plan', /Plan: backup-first/);
    await page.getByRole('button', { name: 'Start upgrade' }).click();
    await page.locator('#upgrade-status').waitFor();
    const upgradeId = page.url().split('#/upgrades/')[1];

    // The fake agents do the work; the page follows it over SSE.
    const fleet = new Fleet(t, members);
    await fleet.until(upgradeId, ['succeeded']);
    await expectText(page, '#upgrade-status', /succeeded 100%/);
    const steps = page.locator('.step');
    await page.waitForFunction(
      () => Array.from(document.querySelectorAll('.step')).filter((s) => s.dataset.status === 'succeeded').length === 4,
    );
    expect(
      await steps.evaluateAll((els) =>
        els.map((e) => [(e as unknown as PageElement).dataset.status, (e as unknown as PageElement).dataset.percent]),
      ),
    ).toEqual([
      ['succeeded', '100'],
      ['succeeded', '100'],
      ['succeeded', '100'],
      ['skipped', '0'], // the switchback that runs only if the main's upgrade fails
      ['succeeded', '100'],
    ]);
    await page.waitForFunction(() => document.querySelectorAll('#events .line').length > 5);
    expect(await accessibilityProblems(page)).toEqual([]);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'upgrade-view.png'), fullPage: true });

    // Viewers see no buttons that act; the server would refuse them anyway.
    const viewer = await t.tokenFor('viewer');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').fill(viewer);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.goto(`${t.baseUrl}/#/clusters/${cluster.id}`);
    await page.locator('tr[data-agent="solo"]').waitFor();
    expect(await page.locator('#upload-file').count()).toBe(0);
    expect(await page.locator('input[aria-label^="Auto-upgrade"]').count()).toBe(0);

    // Readable at phone width: nothing wider than the screen (wide tables scroll inside themselves).
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${t.baseUrl}/#/upgrades/${upgradeId}`);
    await page.locator('#upgrade-status').waitFor();
    expect(
      await page.evaluate(
        () => (document as unknown as { documentElement: { scrollWidth: number } }).documentElement.scrollWidth,
      ),
    ).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(ARTIFACTS, 'upgrade-view-phone.png'), fullPage: true });
    await page.goto(`${t.baseUrl}/#/clusters/${cluster.id}`);
    await page.locator('tr[data-agent="solo"]').waitFor();
    expect(
      await page.evaluate(
        () => (document as unknown as { documentElement: { scrollWidth: number } }).documentElement.scrollWidth,
      ),
    ).toBeLessThanOrEqual(390);
  }, 120_000);

  it("updates a cluster's badges live; a failed agent offers Retry, which reruns the upgrade it failed in", async () => {
    const cluster = await givenCluster(t, { name: 'retry-demo' });
    const { registered, agent } = await givenPairedAgent(t, cluster.id, { name: 'lonely' });
    const fleet = new Fleet(t, [{ name: 'lonely', agent }], (_name, command) => ({
      status: 'failed',
      error: `disk full while installing ${String(command.toVersion)}`,
    }));
    const upload = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', packageArchive(), 'p.tar.gz')
      .expect(201);

    await signIn(await t.tokenFor('operator', 'retry-operator'), `#/clusters/${cluster.id}`);
    await page.locator('tr[data-agent="lonely"]').waitFor();
    expect(await page.locator('tr[data-agent="lonely"] .badge').allTextContents()).toEqual(['idle', 'latest']);
    // (The read the stream's opening asks for, within half a second, is done before counting.)
    await new Promise((r) => setTimeout(r, 800));
    const agentReads: string[] = [];
    const countAgentReads = (r: { url(): string }) => void (/\/agents\?/.test(r.url()) && agentReads.push(r.url()));
    page.on('request', countAgentReads);

    // Started elsewhere (by automation, say): the open page learns of it from the cluster's stream.
    const upgrade = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId: upload.body.id, target: { all: true } })
      .expect(201);
    await fleet.until(upgrade.body.id, ['failed']);
    await expectText(page, 'tr[data-agent="lonely"]', /failed/);
    page.off('request', countAgentReads);
    // The row was redrawn from the agent.status events' data alone (the agent as the API shows it).
    expect(agentReads).toEqual([]);
    await expectText(page, '#upgrades-title + table', /failed/);
    expect(await page.locator('tr[data-agent="lonely"] button:visible').allTextContents()).toEqual([
      'Retry',
      'Upgrade now',
      'Commands',
    ]);

    // The clusters list says what wants a look.
    await page.getByRole('link', { name: '← Clusters' }).click();
    await expectText(page, 'tr[data-cluster="retry-demo"]', /1 \(1 failed\)/);
    await page.getByRole('link', { name: 'retry-demo' }).click();

    fleet.behaviour = obedient;
    await page.getByRole('button', { name: 'Retry lonely' }).click();
    await page.waitForURL(`**/#/upgrades/${upgrade.body.id}`);
    await expectText(page, '#events', /upgrade running/);
    // Pause and resume from the page; only the verbs the status allows are offered.
    await page.getByRole('button', { name: 'Pause' }).click();
    await expectText(page, '#upgrade-status', /paused/);
    expect(await page.locator('#view .actions button').allTextContents()).toEqual(['Resume', 'Cancel', 'Roll back']);
    await page.getByRole('button', { name: 'Resume' }).click();
    await expectText(page, '#upgrade-status', /running/);

    // The server drops every stream (as a replica restarting would) while the retry runs: the page
    // asks for a new ticket, resumes after the last event it had, and shows each event exactly once.
    t.app.get(EventStreams).beforeApplicationShutdown();
    await fleet.until(upgrade.body.id, ['succeeded']);
    await expectText(page, '#upgrade-status', /succeeded 100%/);
    const history = (await t.admin.get(`/api/v1/upgrades/${upgrade.body.id}/history`).expect(200)).body.items.map(
      (e: { id: number }) => e.id,
    );
    await page.waitForFunction(
      (count) => Number(document.getElementById('events')?.dataset.count) >= count,
      history.length,
    );
    const shown = await logLines(page);
    expect(shown.map((line) => line.id)).toEqual(history);
    expect(shown.map((line) => line.text).join('\n')).toMatch(/lonely upgrade failed[^]*lonely upgrade succeeded/);
    expect(await t.admin.get(`/api/v1/agents/${registered.id}`).then((r) => r.body)).toMatchObject({
      version: '1.1.0',
      versionStatus: 'latest',
    });
  }, 60_000);

  it('schedules an upgrade with options from "More options", then cancels it and gets the package back', async () => {
    const cluster = await givenCluster(t, { name: 'schedule-demo' });
    await givenPairedAgent(t, cluster.id, { name: 'night-shift' });
    const upload = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', packageArchive(), 'p.tar.gz')
      .expect(201);
    await signIn(await t.tokenFor('operator', 'schedule-operator'), `#/clusters/${cluster.id}`);
    await page.locator('tr[data-agent="night-shift"]').waitFor();

    const form = page.locator('#new-upgrade');
    await form.getByText('More options').click();
    await form.getByLabel("Back up the agent's data before stopping it").uncheck();
    await form.getByLabel('Longest phase or switchover wait (seconds)').fill('900');
    await form.getByLabel('Wait before starting the product again (seconds)').fill('45');
    await form.getByLabel("Ignore the package's fromVersion prerequisite").check();
    // The services box is checked in words, the field named, before anything is sent.
    await form.getByLabel('Services to stop during the upgrade').fill('snmpd, cron/d');
    await form.getByRole('button', { name: 'Preview plan' }).click();
    await expectText(page, '#plan', /Services to stop during the upgrade.*: "cron\/d" is not a service name/);
    await form.getByLabel('Services to stop during the upgrade').fill('snmpd,  postfix@main');
    await form.getByLabel('Options passed to the agent (JSON object)').fill('stopSnmp: yes');
    await form.getByRole('button', { name: 'Preview plan' }).click();
    await expectText(page, '#plan', /Options passed to the agent: not JSON/);
    await form.getByLabel('Options passed to the agent (JSON object)').fill('{"stopSnmp": true}');
    // Two hours from now, in the browser's own local time (what datetime-local means).
    const inTwoHours = await page.evaluate(() => {
      const d = new Date(Date.now() + 2 * 3600_000);
      const pad = (n: number) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
    });
    await form.getByLabel('Start at (your local time; empty = now)').fill(inTwoHours);
    await page.getByRole('button', { name: 'Preview plan' }).click();
    await expectText(page, '#plan', /Plan: simultaneous, 1 unit/);
    await expectText(
      page,
      '#plan',
      /Warning: options\.ignoreVersionCheck: the package's fromVersion \(>=1\.0\.0 <1\.1\.0\) is not enforced/,
    );
    expect(await accessibilityProblems(page)).toEqual([]);
    const sent = page.waitForRequest(
      (r) => r.method() === 'POST' && r.url().endsWith(`/api/v1/clusters/${cluster.id}/upgrades`),
    );
    await page.getByRole('button', { name: 'Start upgrade' }).click();
    await expectText(page, '#upgrade-status', /scheduled/);
    // The new options are sent only when set: the downgrade box was left alone.
    const body = (await sent).postDataJSON();
    expect(body.options).toMatchObject({
      delayedStartS: 45,
      stopServices: ['snmpd', 'postfix@main'],
      ignoreVersionCheck: true,
    });
    expect(body.options).not.toHaveProperty('allowDowngrade');

    const upgradeId = page.url().split('#/upgrades/')[1];
    const scheduled = (await t.admin.get(`/api/v1/upgrades/${upgradeId}`).expect(200)).body;
    expect(scheduled).toMatchObject({
      status: 'scheduled',
      options: expect.objectContaining({
        backup: false,
        phaseTimeoutS: 900,
        migrate: true,
        agentOptions: { stopSnmp: true },
        delayedStartS: 45,
        stopServices: ['snmpd', 'postfix@main'],
        ignoreVersionCheck: true,
        allowDowngrade: false,
      }),
    });
    expect(Math.abs(Date.parse(scheduled.scheduledAt) - (Date.now() + 2 * 3600_000))).toBeLessThan(120_000);
    expect((await t.admin.get(`/api/v1/packages/${upload.body.id}`).expect(200)).body.status).toBe('reserved');
    expect(await page.getByRole('button').allTextContents()).toEqual(expect.arrayContaining(['Cancel']));
    expect(await page.getByRole('button', { name: 'Pause' }).count()).toBe(0);

    await page.getByRole('button', { name: 'Cancel' }).click();
    await expectText(page, '#upgrade-status', /cancelled/);
    expect((await t.admin.get(`/api/v1/packages/${upload.body.id}`).expect(200)).body.status).toBe('available');
  }, 60_000);

  it('refuses a downgrade in words, and plans and starts it once "Allow a downgrade" is ticked', async () => {
    const cluster = await givenCluster(t, { name: 'downgrade-demo' });
    await givenPairedAgent(t, cluster.id, { name: 'ahead-one' });
    // Older than the 1.0.0 the agent runs, with no prerequisites: only the downgrade check stands in the way.
    await t.admin
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', packageArchive({ version: '0.9.0', prerequisites: {} }), 'old.tar.gz')
      .expect(201);
    await signIn(await t.tokenFor('operator', 'downgrade-operator'), `#/clusters/${cluster.id}`);
    await page.locator('tr[data-agent="ahead-one"]').waitFor();

    const form = page.locator('#new-upgrade');
    await form.getByRole('button', { name: 'Preview plan' }).click();
    await expectText(
      page,
      '#plan',
      /Refused: 0\.9\.0 is older than what 1 target\(s\) run \(ahead-one 1\.0\.0\): set options\.allowDowngrade to go back/,
    );
    expect(await form.getByRole('button', { name: 'Start upgrade' }).isDisabled()).toBe(true);
    expect(await accessibilityProblems(page)).toEqual([]);

    await form.getByText('More options').click();
    await form.getByLabel('Allow a downgrade').check();
    await form.getByRole('button', { name: 'Preview plan' }).click();
    await expectText(page, '#plan', /Plan: simultaneous, 1 unit/);
    await expectText(
      page,
      '#plan',
      /Warning: A downgrade: 1 target\(s\) go back from a newer version to 0\.9\.0 \(ahead-one\)/,
    );
    expect(await page.locator('#plan .refusal').count()).toBe(0);
    expect(await accessibilityProblems(page)).toEqual([]);
    await form.getByRole('button', { name: 'Start upgrade' }).click();
    await page.locator('#upgrade-status').waitFor();
    const upgradeId = page.url().split('#/upgrades/')[1];
    expect((await t.admin.get(`/api/v1/upgrades/${upgradeId}`).expect(200)).body.options).toMatchObject({
      allowDowngrade: true,
    });
    // No agent carries it out here: cancelled, so it leaves nothing running behind it.
    await t.admin.post(`/api/v1/upgrades/${upgradeId}/cancel`).expect(200);
  }, 60_000);

  it('uploads a package in install mode and follows the upgrade it started', async () => {
    const cluster = await givenCluster(t, { name: 'install-demo' });
    const { agent } = await givenPairedAgent(t, cluster.id, { name: 'eager' });
    await signIn(await t.tokenFor('operator', 'install-operator'), `#/clusters/${cluster.id}`);
    await page.locator('tr[data-agent="eager"]').waitFor();
    await page.getByLabel('Mode').selectOption('install');
    await page
      .locator('#upload-file')
      .setInputFiles({ name: 'acme-1.1.0.tar.gz', mimeType: 'application/gzip', buffer: packageArchive() });
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.waitForURL('**/#/upgrades/*');
    const upgradeId = page.url().split('#/upgrades/')[1];
    await new Fleet(t, [{ name: 'eager', agent }]).until(upgradeId, ['succeeded']);
    await expectText(page, '#upgrade-status', /succeeded 100%/);
    expect((await t.admin.get(`/api/v1/upgrades/${upgradeId}`).expect(200)).body).toMatchObject({
      origin: 'install',
      target: { all: true },
    });
  }, 60_000);

  it("moves the upgrade's header with its steps' progress, and shows what each agent says", async () => {
    const cluster = await givenCluster(t, { name: 'progress-demo' });
    const talker = await givenPairedAgent(t, cluster.id, { name: 'talker' });
    const quiet = await givenPairedAgent(t, cluster.id, { name: 'quiet' });
    const upload = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', packageArchive(), 'p.tar.gz')
      .expect(201);
    const upgrade = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId: upload.body.id, target: { all: true }, options: { maxParallel: 0 } })
      .expect(201);
    await signIn(await t.tokenFor('viewer', 'progress-viewer'), `#/upgrades/${upgrade.body.id}`);
    await page.locator('.step[data-agent="talker"]').waitFor();

    // Both commands go out; one agent reports half its download, with a message.
    const fleet = new Fleet(t, [
      { name: 'talker', agent: talker.agent },
      { name: 'quiet', agent: quiet.agent },
    ]);
    await fleet.pass();
    await expectText(page, '.step[data-agent="talker"] .detail', /waiting for the agent to fetch its command/);
    const [talkerCommand] = (await talker.agent.heartbeat()).body.commands as Command[];
    const [quietCommand] = (await quiet.agent.heartbeat()).body.commands as Command[];
    expect((await talker.agent.progress(talkerCommand.id, 'download', 50, 'downloaded 50%')).status).toBe(200);
    const { percent } = (await t.admin.get(`/api/v1/upgrades/${upgrade.body.id}`).expect(200)).body;
    expect(percent).toBeGreaterThan(0);
    // The header follows the steps' events: no upgrade.status event carried this figure.
    const history = (await t.admin.get(`/api/v1/upgrades/${upgrade.body.id}/history`).expect(200)).body.items as Array<{
      type: string;
      data: { percent: number };
    }>;
    expect(history.filter((e) => e.type === 'upgrade.status').map((e) => e.data.percent)).not.toContain(percent);
    await expectText(page, '#upgrade-status', new RegExp(`running ${percent}%`));
    expect(await page.locator('#upgrade-progress').evaluate((bar) => (bar as unknown as { value: number }).value)).toBe(
      percent,
    );
    await expectText(page, '.step[data-agent="talker"] .detail', /downloaded 50%/);

    // One agent ends with a note of what it did not apply: shown on its step, in its words.
    const note = 'rebootAfter not applied: this agent has no --reboot-command';
    await t
      .as(talker.agent.token)
      .post(`/api/v1/agent/commands/${talkerCommand.id}/complete`)
      .send({ status: 'succeeded', version: '1.1.0', notes: [note] })
      .expect(200);
    talker.agent.state.version = '1.1.0';
    await fleet.answer({ name: 'quiet', agent: quiet.agent }, quietCommand, { status: 'succeeded', version: '1.1.0' });
    await fleet.until(upgrade.body.id, ['succeeded']);
    await expectText(page, '#upgrade-status', /succeeded 100%/);
    expect(await page.locator('.step[data-agent="talker"] .agent-notes li').allTextContents()).toEqual([note]);
    await expectText(page, '#events', /talker upgrade command succeeded 1\.1\.0/);
    expect(await accessibilityProblems(page)).toEqual([]);
  }, 60_000);

  it('shows the step of an agent that stayed busy as missed, and the upgrade still succeeds for the others', async () => {
    const cluster = await givenCluster(t, { name: 'missed-demo' });
    const eager = await givenPairedAgent(t, cluster.id, { name: 'keen' });
    const sleepy = await givenPairedAgent(t, cluster.id, { name: 'sleepy' }, { busy: true });
    const upload = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', packageArchive(), 'p.tar.gz')
      .expect(201);
    const upgrade = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({
        packageId: upload.body.id,
        target: { all: true },
        options: { maxParallel: 0, waitForIdle: true, idleTimeoutS: 1 },
      })
      .expect(201);
    await signIn(await t.tokenFor('viewer', 'missed-viewer'), `#/upgrades/${upgrade.body.id}`);
    await page.locator('.step[data-agent="sleepy"]').waitFor();

    const fleet = new Fleet(t, [
      { name: 'keen', agent: eager.agent },
      { name: 'sleepy', agent: sleepy.agent },
    ]);
    await fleet.round();
    await new Promise((resolve) => setTimeout(resolve, 1500)); // past idleTimeoutS
    expect((await fleet.until(upgrade.body.id, ['succeeded', 'completed-with-errors', 'failed'])).status).toBe(
      'succeeded',
    );

    await page.waitForFunction(() => document.querySelector('.step[data-agent="sleepy"]')?.dataset.status === 'missed');
    expect(await page.locator('.step[data-agent="sleepy"] .badge').textContent()).toBe('missed');
    await expectText(page, '.step[data-agent="sleepy"] .detail', /sleepy stayed busy/);
    await expectText(page, '#upgrade-status', /succeeded 100%/);
    await expectText(page, '#upgrade-reason', /missed their turn/);
    expect(await accessibilityProblems(page)).toEqual([]);
  }, 60_000);

  it('closes an ended upgrade’s stream on its `end` event instead of reconnecting (stream.js)', async () => {
    const cluster = await givenCluster(t, { name: 'end-demo' });
    await givenPairedAgent(t, cluster.id, { name: 'done-one' });
    const upload = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', packageArchive(), 'p.tar.gz')
      .expect(201);
    const later = new Date(Date.now() + 3600_000).toISOString();
    const upgrade = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId: upload.body.id, target: { all: true }, scheduledAt: later })
      .expect(201);
    await t.admin.post(`/api/v1/upgrades/${upgrade.body.id}/cancel`).expect(200); // ended at once: nothing was running
    await signIn(TEST_ADMIN_TOKEN, '#/tokens'); // a view that follows no stream of its own
    await page.locator('#view h1').waitFor();
    const connections: string[] = [];
    const count = (r: { url(): string }) =>
      void (
        /\/stream-tickets$|\/events\?/.test(r.url()) && connections.push(r.url().replace(/ticket=[^&]+/, 'ticket=…'))
      );
    page.on('request', count);
    try {
      // The dashboard's own stream module, without follow: what any page client gets.
      const ended = await page.evaluate(`(async () => {
        const { follow } = await import('/stream.js');
        return new Promise((resolve) => {
          const types = [];
          follow('upgrade', ${JSON.stringify(upgrade.body.id)}, { onEvent: (e) => types.push(e.type), onEnd: (end) => resolve({ types, status: end.status }) });
        });
      })()`);
      expect(ended).toEqual({ types: ['upgrade.status', 'task.progress', 'upgrade.status'], status: 'cancelled' });
      // An EventSource left open would reconnect after the server's retry (3 s): nothing may follow.
      await new Promise((r) => setTimeout(r, 4000));
      expect(connections).toEqual(
        ['/api/v1/stream-tickets', `/api/v1/upgrades/${upgrade.body.id}/events?ticket=…&lastEventId=0`].map(
          (p) => `${t.baseUrl}${p}`,
        ),
      );
    } finally {
      page.off('request', count);
    }
  }, 60_000);

  it('listens for every event type the server writes (lib.js EVENT_TYPES, read by stream.js)', async () => {
    await signIn(TEST_ADMIN_TOKEN, '#/tokens');
    await page.locator('#view h1').waitFor();
    const types = await page.evaluate(`import('/lib.js').then((lib) => lib.EVENT_TYPES)`);
    expect(types).toEqual([...EVENT_TYPES]);
  });

  it('rolls an upgrade back from its page: previewed, confirmed, the rollback drawn as its own batches until rolled back', async () => {
    const cluster = await givenCluster(t, { name: 'rollback-demo' });
    const { agent } = await givenPairedAgent(t, cluster.id, { name: 'steady' });
    const fleet = new Fleet(t, [{ name: 'steady', agent }]);
    const upload = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', packageArchive(), 'p.tar.gz')
      .expect(201);
    const upgrade = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId: upload.body.id, target: { all: true } })
      .expect(201);
    await fleet.until(upgrade.body.id, ['succeeded']);

    await signIn(await t.tokenFor('operator', 'rollback-operator'), `#/upgrades/${upgrade.body.id}`);
    await expectText(page, '#upgrade-status', /succeeded/);
    const asked: string[] = [];
    page.once('dialog', (dialog) => {
      asked.push(dialog.message());
      void dialog.accept();
    });
    await page.getByRole('button', { name: 'Roll back' }).click();
    await expectText(page, '#upgrade-status', /rolling-back/);
    expect(asked).toEqual([
      expect.stringMatching(/^Roll back this upgrade\? 1 agent\(s\) go back to their old version/),
    ]);
    // The rollback's step appears under its own heading as the page learns of it.
    await expectText(page, '#view', /Rollback, batch 1/);
    await fleet.until(upgrade.body.id, ['rolled-back']);
    await expectText(page, '#upgrade-status', /rolled-back/);
    await page.waitForFunction(() => document.querySelectorAll('.step').length === 2);
    expect(await page.locator('#view .actions button').allTextContents()).toEqual([]);
  }, 60_000);

  it('draws the new plan when a retry started elsewhere replaces the steps it runs again', async () => {
    const cluster = await givenCluster(t, { name: 'replan-demo' });
    const { agent } = await givenPairedAgent(t, cluster.id, { name: 'flaky' });
    const fleet = new Fleet(t, [{ name: 'flaky', agent }], () => ({ status: 'failed', error: 'disk full' }));
    const upload = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', packageArchive(), 'p.tar.gz')
      .expect(201);
    const upgrade = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId: upload.body.id, target: { all: true } })
      .expect(201);
    await fleet.until(upgrade.body.id, ['failed']);
    await signIn(await t.tokenFor('viewer', 'replan-viewer'), `#/upgrades/${upgrade.body.id}`);
    await expectText(page, '#upgrade-status', /failed/);
    const stepIds = () =>
      page.locator('.step').evaluateAll((els) => els.map((e) => (e as unknown as PageElement).dataset.step));
    const before = await stepIds();

    fleet.behaviour = obedient;
    await t.admin.post(`/api/v1/upgrades/${upgrade.body.id}/retry`).expect(200);
    const done = await fleet.until(upgrade.body.id, ['succeeded']);
    await expectText(page, '#upgrade-status', /succeeded 100%/);
    const now = (done.steps as Array<{ id: string }>).map((s) => s.id);
    expect(now).not.toEqual(before);
    await page.waitForFunction(
      (ids) =>
        JSON.stringify(Array.from(document.querySelectorAll('.step')).map((e) => e.dataset.step)) ===
        JSON.stringify(ids),
      now,
    );
    expect(
      await page.locator('.step').evaluateAll((els) => els.map((e) => (e as unknown as PageElement).dataset.status)),
    ).toEqual(done.steps.map((s: { status: string }) => s.status));
  }, 60_000);

  it('keeps a long history in a virtual log: only the lines in sight drawn, older ones reached by keys, live ones added, none lost or shown twice between the history read and the stream', async () => {
    const cluster = await givenCluster(t, { name: 'long-log-demo' });
    const { agent } = await givenPairedAgent(t, cluster.id, { name: 'chatty' });
    const upload = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', packageArchive(), 'p.tar.gz')
      .expect(201);
    const upgrade = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId: upload.body.id, target: { all: true } })
      .expect(201);
    const fleet = new Fleet(t, [{ name: 'chatty', agent }], () => 'later');
    for (let i = 0; i < 5 && fleet.later.length === 0; i++) await fleet.round();
    const [{ command }] = fleet.later;
    let reports = 0;
    const report = async (count: number) => {
      for (const end = reports + count; reports < end; reports++)
        expect((await agent.progress(command.id, 'install', reports % 100, `chunk ${reports}`)).status).toBe(200);
    };
    // More than one page of history (the page reads 1,000 events at a time).
    await report(1100);

    // Ten events land after the history's last page was read and before the stream opens: the page
    // gets that page only once they are written. The stream must bring them, and nothing twice.
    const historyPages: string[] = [];
    let lastPageServed: () => void = () => {};
    const served = new Promise<void>((resolve) => (lastPageServed = resolve));
    const historyPage = (url: URL) => url.pathname === `/api/v1/upgrades/${upgrade.body.id}/history`;
    await page.route(historyPage, async (route) => {
      historyPages.push(new URL(route.request().url()).search);
      const response = await route.fetch();
      const last = (await response.json()).nextAfterId === null;
      if (last) await report(10);
      await route.fulfill({ response });
      if (last) lastPageServed();
    });
    try {
      await signIn(await t.tokenFor('viewer', 'long-log-viewer'), `#/upgrades/${upgrade.body.id}`);
      await page.locator('.step[data-agent="chatty"]').waitFor();
      await served;
      const expected = await historyIds(upgrade.body.id);
      expect(expected.length).toBeGreaterThan(1110);
      await page.waitForFunction(
        (count) => Number(document.getElementById('events')?.dataset.count) === count,
        expected.length,
      );
    } finally {
      await page.unroute(historyPage);
    }
    // The view's own reads (signIn may first show the view of the session a test before left open).
    expect(historyPages.slice(-2)).toEqual([
      '?afterId=0&limit=1000',
      expect.stringMatching(/^\?afterId=\d+&limit=1000$/),
    ]);
    let ids = await historyIds(upgrade.body.id);
    await expectText(
      page,
      '#events-summary',
      new RegExp(`^${ids.length.toLocaleString('en-US')} event\\(s\\), oldest first$`),
    );
    // Virtual: a screenful of lines and a few either side in the DOM, the newest in sight.
    expect(await page.locator('#events .line').count()).toBeLessThan(80);
    expect(await visibleIds(page)).toContain(ids[ids.length - 1]);
    // Every line, scrolled through: the history exactly, in order, none twice.
    expect((await logLines(page)).map((line) => line.id)).toEqual(ids);

    // By keyboard: Home shows the oldest line, End the newest.
    await page.locator('#events').focus();
    await page.keyboard.press('Home');
    await page.waitForFunction(
      (first) => document.querySelector('#events .line')?.dataset.id === String(first),
      ids[0],
    );
    expect(await visibleIds(page)).toContain(ids[0]);
    expect(await page.locator('#events .line').first().textContent()).toMatch(
      // The person who caused it, when one did (docs/audit.md).
      new RegExp(`^#${ids[0]} .* upgrade \\w+ \\d+%( \\(by [^)]+\\))?$`),
    );

    // A live event while the reader is up there: counted, but the view stays where it was.
    await report(1);
    ids = await historyIds(upgrade.body.id);
    await page.waitForFunction(
      (count) => Number(document.getElementById('events')?.dataset.count) === count,
      ids.length,
    );
    expect(await visibleIds(page)).toContain(ids[0]);
    await page.keyboard.press('End');
    await page.waitForFunction(
      (last) => document.querySelector('#events .line:last-child')?.dataset.id === String(last),
      ids[ids.length - 1],
    );
    expect(await visibleIds(page)).toContain(ids[ids.length - 1]);
    await expectText(page, '#events .line:last-child', /chatty upgrade running install \d+% \(chunk 1110\)$/);

    // At the bottom, the log follows: the next live line comes into sight by itself.
    await report(1);
    ids = await historyIds(upgrade.body.id);
    await page.waitForFunction(
      (last) => document.querySelector('#events .line:last-child')?.dataset.id === String(last),
      ids[ids.length - 1],
    );
    expect(await visibleIds(page)).toContain(ids[ids.length - 1]);
    expect((await logLines(page)).map((line) => line.id)).toEqual(ids);
    expect(await accessibilityProblems(page)).toEqual([]);
    await t.admin.post(`/api/v1/upgrades/${upgrade.body.id}/cancel`).expect(200);
  }, 90_000);

  /** Every event id of an upgrade's history, read from the API page by page. */
  async function historyIds(upgradeId: string): Promise<number[]> {
    const ids: number[] = [];
    for (let after = 0; ;) {
      const { items, nextAfterId } = (
        await t.admin.get(`/api/v1/upgrades/${upgradeId}/history?afterId=${after}&limit=1000`).expect(200)
      ).body as { items: Array<{ id: number }>; nextAfterId: number | null };
      ids.push(...items.map((e) => e.id));
      if (nextAfterId === null) return ids;
      after = nextAfterId;
    }
  }

  it("greys out a legacy agent's auto-upgrade and offers its package for download instead of upgrading it", async () => {
    const cluster = await givenCluster(t, { name: 'legacy-demo' });
    const modern = await givenPairedAgent(t, cluster.id, { name: 'modern' });
    const legacy = await givenPairedAgent(
      t,
      cluster.id,
      { name: 'old-timer', address: '10.0.9.9' },
      { capabilities: { remoteUpgrade: false } },
    );
    const archive = packageArchive();
    const upload = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', archive, 'p.tar.gz')
      .expect(201);
    const upgrade = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId: upload.body.id, target: { all: true } })
      .expect(201);
    await new Fleet(t, [
      { name: 'modern', agent: modern.agent },
      { name: 'old-timer', agent: legacy.agent },
    ]).until(upgrade.body.id, ['succeeded', 'completed-with-errors']);
    expect((await t.admin.get(`/api/v1/clusters/${cluster.id}`).expect(200)).body).toMatchObject({
      targetVersion: '1.1.0',
      targetPackageId: upload.body.id,
    });

    await signIn(TEST_ADMIN_TOKEN, `#/clusters/${cluster.id}`);
    const row = page.locator('tr[data-agent="old-timer"]');
    await row.waitFor();
    await expectText(page, '#view h1', /target 1\.1\.0/);
    const legacySwitch = page.getByLabel('Auto-upgrade for old-timer');
    expect(await legacySwitch.isDisabled()).toBe(true);
    expect(
      await legacySwitch.evaluate(
        (el) => document.getElementById((el as unknown as PageElement).getAttribute('aria-describedby')!)?.textContent,
      ),
    ).toMatch(/^legacy agent: cannot upgrade remotely; reinstall it by hand/);
    expect(await page.getByLabel('Auto-upgrade for modern').isDisabled()).toBe(false);
    await t.admin.put(`/api/v1/agents/${legacy.registered.id}/auto-upgrade`).send({ enabled: false }).expect(409);

    // No "Upgrade now": the package to install by hand, fetched with the signed-in token.
    expect(await row.locator('button:visible').allTextContents()).toEqual(['Download package', 'Commands']);
    await expectText(page, 'tr[data-agent="old-timer"]', /install 1\.1\.0 on 10\.0\.9\.9, then pair it again/);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download package 1.1.0 for old-timer' }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/1\.1\.0.*\.tar\.gz$/);
    expect(fs.readFileSync((await download.path())!).equals(archive)).toBe(true);
    await expectText(page, '#toast', /install it on 10\.0\.9\.9 by hand/);
    expect(await page.locator('tr[data-agent="modern"] button:visible').allTextContents()).toEqual(['Commands']);
    expect(await accessibilityProblems(page)).toEqual([]);

    // A web-apps package upgraded on all agents (while the page is open) is a second target, shown
    // beside the core one, and a second package for the legacy agent.
    const webapps = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', packageArchive({ version: '1.1.5', kind: 'webapps', prerequisites: {} }), 'w.tar.gz')
      .expect(201);
    const webUpgrade = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId: webapps.body.id, target: { all: true } })
      .expect(201);
    const byHand = new Fleet(
      t,
      [
        { name: 'modern', agent: modern.agent },
        { name: 'old-timer', agent: legacy.agent },
      ],
      () => 'later',
    );
    for (let i = 0; i < 5 && byHand.later.length === 0; i++) await byHand.round();
    for (const { member, command } of byHand.later.splice(0)) {
      expect((await member.agent.complete(command.id, 'succeeded', '1.1.5')).status).toBe(200);
      member.agent.state.webappsVersion = '1.1.5';
    }
    await byHand.until(webUpgrade.body.id, ['succeeded', 'completed-with-errors']);
    await expectText(page, '#view h1', /target 1\.1\.0, web apps target 1\.1\.5/);
    await expectText(page, 'tr[data-agent="old-timer"]', /Download web-apps package/);
    expect(await row.locator('button:visible').allTextContents()).toEqual([
      'Download package',
      'Download web-apps package',
      'Commands',
    ]);
    await expectText(page, 'tr[data-agent="old-timer"]', /install 1\.1\.0 and 1\.1\.5 on 10\.0\.9\.9/);

    // The upgrade's view says the same: the plan's warning, and the manual step's instructions.
    await page.goto(`${t.baseUrl}/#/upgrades/${upgrade.body.id}`);
    await expectText(page, '#view', /1 legacy agent\(s\) \(old-timer\) cannot upgrade remotely/);
    await expectText(page, '.step[data-agent="old-timer"] .detail', /install 1\.1\.0 on 10\.0\.9\.9 by hand/);
  }, 60_000);

  it('says on the row why auto-upgrade leaves an agent alone, the whole reason one click away', async () => {
    const cluster = await givenCluster(t, { name: 'held-demo' });
    // Busy: the upgrade starts, and its step waits for the agent to be idle.
    const { agent } = await givenPairedAgent(t, cluster.id, { name: 'left-out' }, { busy: true });
    const upload = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', packageArchive(), 'p.tar.gz')
      .expect(201);
    const upgrade = await t.admin
      .post(`/api/v1/clusters/${cluster.id}/upgrades`)
      .send({ packageId: upload.body.id, target: { all: true } })
      .expect(201);
    await signIn(await t.tokenFor('viewer', 'held-viewer'), `#/clusters/${cluster.id}`);
    const row = page.locator('tr[data-agent="left-out"]');
    await row.waitFor();
    expect(await row.locator('details.held').count()).toBe(0);

    // Cancelled elsewhere once it started: the row learns it from the cluster's stream.
    await t.admin.post(`/api/v1/upgrades/${upgrade.body.id}/cancel`).expect(200);
    const reason = `left behind by upgrade ${upgrade.body.id}: it was cancelled; retry it, upgrade it now, or start a new upgrade`;
    await expectText(page, 'tr[data-agent="left-out"] details.held summary', /^auto-upgrade held$/);
    expect(await row.locator('details.held summary').getAttribute('title')).toBe(reason);
    expect(await row.locator('details.held p').isVisible()).toBe(false);
    await row.locator('details.held summary').click();
    expect(await row.locator('details.held p').textContent()).toBe(reason);
    expect(await accessibilityProblems(page)).toEqual([]);

    // Still open after a live update redraws the row.
    await agent.heartbeat({ busy: false });
    await expectText(page, 'tr[data-agent="left-out"]', /idle/);
    expect(await row.locator('details.held p').isVisible()).toBe(true);
  }, 60_000);

  it("shows agents' labels, edits them under Manage, registers with labels, and previews an upgrade of the agents with a label", async () => {
    const cluster = await givenCluster(t, { name: 'labels-demo' });
    const { registered } = await givenPairedAgent(t, cluster.id, {
      name: 'eu-db',
      labels: { site: 'eu-1', tier: 'db' },
    });
    await givenPairedAgent(t, cluster.id, { name: 'us-db', labels: { site: 'us-2', tier: 'db' } });
    await t.admin
      .post(`/api/v1/clusters/${cluster.id}/packages`)
      .field('mode', 'upload-only')
      .attach('file', packageArchive(), 'p.tar.gz')
      .expect(201);
    await signIn(await t.tokenFor('operator', 'labels-operator'), `#/clusters/${cluster.id}`);
    const row = page.locator('tr[data-agent="eu-db"]');
    await row.waitFor();
    expect(await row.locator('.label-chip').allTextContents()).toEqual(['site=eu-1', 'tier=db']);

    // Under Manage: what the box holds replaces every label; the row follows the agent.status event.
    await page.getByLabel('Manage eu-db').click();
    await page.getByLabel('Labels of eu-db').fill('site=eu-2, rack=7');
    await row.getByRole('button', { name: 'Save labels' }).click();
    await expectText(page, '#toast', /Labels of eu-db saved/);
    await expectText(page, 'tr[data-agent="eu-db"] .labels', /site=eu-2/);
    expect(await row.locator('.label-chip').allTextContents()).toEqual(['site=eu-2', 'rack=7']);
    expect((await t.admin.get(`/api/v1/agents/${registered.id}`).expect(200)).body.labels).toEqual({
      site: 'eu-2',
      rack: '7',
    });
    // A refusal in words, nothing changed.
    await page.getByLabel('Labels of eu-db').fill('Site=x');
    await row.getByRole('button', { name: 'Save labels' }).click();
    await expectText(page, '#toast', /labels has keys that are not label keys: "Site"/);
    expect((await t.admin.get(`/api/v1/agents/${registered.id}`).expect(200)).body.labels).toEqual({
      site: 'eu-2',
      rack: '7',
    });
    expect(await accessibilityProblems(page)).toEqual([]);

    // Registered with labels.
    await page.getByLabel('Agent name').fill('web-1');
    await page.getByLabel('Address', { exact: true }).fill('10.0.9.1');
    await page.getByLabel('Labels (key=value').fill('site=eu-2 tier=web');
    await page.getByRole('button', { name: 'Register' }).click();
    await page.locator('#secret-value').waitFor();
    await page.getByRole('button', { name: 'I have copied it' }).click();
    await expectText(page, 'tr[data-agent="web-1"] .labels', /tier=web/);

    // The new-upgrade form targets the agents carrying every label given.
    const form = page.locator('#new-upgrade');
    await form.getByLabel('Labels the agents carry').fill('tier=db');
    expect(await form.getByLabel('Agents with labels').isChecked()).toBe(true);
    await page.getByRole('button', { name: 'Preview plan' }).click();
    await expectText(page, '#plan', /Plan: /);
    expect(await page.locator('#plan li').allTextContents()).toEqual(['upgrade us-db']);
    await form.getByLabel('Labels the agents carry').fill('site=eu-9');
    await page.getByRole('button', { name: 'Preview plan' }).click();
    await expectText(page, '#plan', /No agent of this cluster has labels site=eu-9/);
    expect(await page.getByRole('button', { name: 'Start upgrade' }).isDisabled()).toBe(true);
  }, 60_000);

  it("lists an agent's commands when asked, and a manual migration's outcome as it ends", async () => {
    const cluster = await givenCluster(t, { name: 'migrate-demo' });
    const { registered, agent } = await givenPairedAgent(t, cluster.id, { name: 'migrator' });
    await signIn(await t.tokenFor('operator', 'migrate-operator'), `#/clusters/${cluster.id}`);
    const toggle = page.getByRole('button', { name: 'Commands of migrator' });
    await toggle.click();
    await expectText(page, 'tr[data-commands-of="migrator"]', /No command sent to this agent yet/);
    expect(await toggle.getAttribute('aria-expanded')).toBe('true');

    // A migration run by hand through the API: the open history shows it end, in the agent's words.
    const statuses = () =>
      page
        .locator('tr[data-commands-of="migrator"] li[data-command]')
        .evaluateAll((els) =>
          els.map(
            (e) => `${(e as unknown as PageElement).dataset.type} ${(e as unknown as PageElement).dataset.status}`,
          ),
        );
    const run = async (outcome: 'succeeded' | 'failed', error?: string) => {
      const queued = await t.admin.post(`/api/v1/agents/${registered.id}/migrate`).expect(202);
      const [command] = (await agent.heartbeat()).body.commands as Command[];
      expect(command).toMatchObject({ id: queued.body.commandId, type: 'migrate' });
      expect((await agent.progress(command.id, 'migrate', 50, 'migrated 2 of 4 tables')).status).toBe(200);
      expect(
        (await agent.complete(command.id, outcome, outcome === 'succeeded' ? '1.0.0' : undefined, error)).status,
      ).toBe(200);
    };
    await run('failed', 'migration failed: table orders is locked');
    await page.waitForFunction(
      () => document.querySelector('tr[data-commands-of="migrator"] li[data-command]')?.dataset.status === 'failed',
    );
    await expectText(page, 'tr[data-commands-of="migrator"]', /migration failed: table orders is locked/);
    await run('succeeded');
    await page.waitForFunction(
      () =>
        Array.from(document.querySelectorAll('tr[data-commands-of="migrator"] li[data-command]'))
          .map((e) => e.dataset.status)
          .join() === 'succeeded,failed',
    );
    expect(await statuses()).toEqual(['migrate succeeded', 'migrate failed']);
    expect(await accessibilityProblems(page)).toEqual([]);

    // The agent's row redrawn by a live update keeps its history (and Manage) open; the button closes it.
    await page.getByLabel('Manage migrator').click();
    await agent.heartbeat({ busy: true });
    await expectText(page, 'tr[data-agent="migrator"]', /busy/);
    expect(await statuses()).toEqual(['migrate succeeded', 'migrate failed']);
    expect(await toggle.getAttribute('aria-expanded')).toBe('true');
    expect(await page.getByRole('button', { name: 'New pairing key' }).isVisible()).toBe(true);
    await toggle.click();
    expect(await page.locator('tr[data-commands-of="migrator"]').count()).toBe(0);
  }, 60_000);

  it('lets an admin create a cluster, register and pair an agent with the key it shows, remove it, and issue and revoke a token', async () => {
    await signIn(TEST_ADMIN_TOKEN, '#/');
    page.on('dialog', (dialog) => void dialog.accept());

    await page.getByLabel('Cluster name').fill('onboarding');
    await page.getByLabel('Product (what its packages must name)').fill('acme-agent');
    await page.getByRole('button', { name: 'Create cluster' }).click();
    await expectText(page, '#view h1', /onboarding/);
    expect(await accessibilityProblems(page)).toEqual([]);

    // Register: the pairing key is shown once, and it is the real one.
    await page.getByLabel('Agent name').fill('edge-7');
    await page.getByLabel('Address', { exact: true }).fill('10.0.7.7');
    await page.getByRole('button', { name: 'Register' }).click();
    await page.locator('#secret-value').waitFor();
    const pairingKey = (await page.locator('#secret-value').textContent())!;
    expect(await page.locator('.secret').textContent()).toContain(`--pairing-key ${pairingKey}`);
    const agent = await FakeAgent.pair(t, pairingKey, { version: '1.0.0' });
    await agent.heartbeat();
    await expectText(page, 'tr[data-agent="edge-7"]', /idle/); // live, from the cluster's stream
    await page.getByRole('button', { name: 'I have copied it' }).click();

    // A refusal in words: the same name twice.
    await page.getByLabel('Agent name').fill('edge-7');
    await page.getByLabel('Address', { exact: true }).fill('10.0.7.8');
    await page.getByRole('button', { name: 'Register' }).click();
    await expectText(page, '#register-agent-result', /edge-7/);

    // Settings: new defaults saved; deleting a cluster that still has an agent is refused in words.
    await page.getByText('Cluster settings').click();
    const settings = page.locator('#cluster-settings');
    await settings.getByLabel('Default failover policy').selectOption('backup-first');
    await settings.getByLabel('Canary units (then pause)').fill('1');
    await settings.getByRole('button', { name: 'Save defaults' }).click();
    await expectText(page, '#toast', /Defaults saved/);
    const clusterId = page.url().split('#/clusters/')[1];
    expect((await t.admin.get(`/api/v1/clusters/${clusterId}`).expect(200)).body).toMatchObject({
      defaultPolicy: 'backup-first',
      defaultOptions: expect.objectContaining({ canary: 1 }),
    });
    await page.getByText('Cluster settings').click();
    await page.getByRole('button', { name: 'Delete cluster' }).click();
    await expectText(page, '#toast', /1 agent/);

    await page.getByText('Manage').click();
    await page.getByRole('button', { name: 'Remove' }).click();
    await page.locator('tr[data-agent="edge-7"]').waitFor({ state: 'detached' });
    expect((await agent.heartbeat()).status).toBe(401);

    // Tokens: issue one (its secret shown once, and it signs in), then revoke it.
    await page.getByRole('link', { name: 'API tokens' }).click();
    await page.getByLabel('What it is for').fill('wallboard');
    await page.getByRole('button', { name: 'Issue token' }).click();
    await page.locator('#secret-value').waitFor();
    const secret = (await page.locator('#secret-value').textContent())!;
    expect((await t.as(secret).get('/api/v1/session').expect(200)).body).toMatchObject({
      name: 'wallboard',
      role: 'viewer',
    });
    await page.getByRole('button', { name: 'Revoke wallboard' }).click();
    await expectText(page, 'tr[data-token="wallboard"]', /revoked/);
    await t.as(secret).get('/api/v1/session').expect(401);
    expect(await accessibilityProblems(page)).toEqual([]);

    // The audit trail: what was just done, newest first, the refusal too, and filtered by action.
    await page.getByRole('link', { name: 'Audit trail' }).click();
    await expectText(page, '#audit-records tbody tr:first-child', /token\.revoke.*revoked viewer token "wallboard"/);
    await expectText(page, '#audit-records', /cluster\.delete.*refused 409.*CLUSTER_NOT_EMPTY/);
    await page.getByLabel('Action').fill('agent.register');
    await page.locator('#audit-cluster').selectOption({ label: 'onboarding' });
    await page.getByRole('button', { name: 'Show' }).click();
    await expectText(page, '#audit-records tbody tr:first-child', /refused 409/);
    expect(await page.locator('#audit-records tbody tr').count()).toBe(2);
    await page.getByLabel('Action').fill('not an action');
    await page.getByRole('button', { name: 'Show' }).click();
    await expectText(page, '#audit-error', /action must be an action/);
    expect(await accessibilityProblems(page)).toEqual([]);
  }, 60_000);
});

/** What a scrolled box and its drawn lines look like from the page (the callbacks below run there). */
type LogBox = PageElement & {
  scrollTop: number;
  scrollHeight: number;
  clientHeight: number;
  querySelectorAll(selector: string): ArrayLike<PageElement & { getBoundingClientRect(): Box }>;
  getBoundingClientRect(): Box;
};
type Box = { top: number; bottom: number };
declare function requestAnimationFrame(callback: () => void): void;

/**
 * Every line of the virtual event log, read by scrolling it from top to bottom a screenful at a
 * time (and put back where it was): each line's place in the log, its event id and its text.
 * A place seen twice must hold the same line; the places must run 0, 1, 2... with no gap.
 */
async function logLines(page: Page): Promise<Array<{ index: number; id: number; text: string }>> {
  const lines = await page.evaluate(async () => {
    const log = document.getElementById('events') as unknown as LogBox;
    const frame = () => new Promise<void>((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    const seen: Array<[number, number, string]> = [];
    const back = log.scrollTop;
    log.scrollTop = 0;
    for (let screens = 0; screens < 10_000; screens++) {
      await frame();
      for (const line of Array.from(log.querySelectorAll('.line')))
        seen.push([Number(line.dataset.index), Number(line.dataset.id), line.textContent ?? '']);
      if (log.scrollTop + log.clientHeight >= log.scrollHeight - 1) break;
      log.scrollTop += log.clientHeight;
    }
    log.scrollTop = back;
    await frame();
    return seen;
  });
  const byIndex = new Map<number, { index: number; id: number; text: string }>();
  for (const [index, id, text] of lines) {
    const known = byIndex.get(index);
    if (known && (known.id !== id || known.text !== text))
      throw new Error(`log line ${index} read as ${known.text} and as ${text}`);
    byIndex.set(index, { index, id, text });
  }
  const all = [...byIndex.values()].sort((a, b) => a.index - b.index);
  expect(all.map((line) => line.index)).toEqual(all.map((_, i) => i));
  for (const line of all) expect(line.text.startsWith(`#${line.id} `)).toBe(true);
  return all;
}

/** The ids of the log's lines wholly inside its visible box. */
function visibleIds(page: Page): Promise<number[]> {
  return page.evaluate(() => {
    const log = document.getElementById('events') as unknown as LogBox;
    const box = log.getBoundingClientRect();
    return Array.from(log.querySelectorAll('.line'))
      .filter(
        (line) =>
          line.getBoundingClientRect().top >= box.top - 0.5 && line.getBoundingClientRect().bottom <= box.bottom + 0.5,
      )
      .map((line) => Number(line.dataset.id));
  });
}

/**
 * WCAG 2 A and AA problems axe-core finds on the page as it is now. axe is served from the page's
 * own origin (a routed URL) so the dashboard's Content-Security-Policy stays on in these tests.
 */
async function accessibilityProblems(page: Page): Promise<string[]> {
  const url = new URL('/__test/axe.min.js', page.url()).href;
  await page.route(url, (route) =>
    route.fulfill({
      contentType: 'text/javascript',
      body: fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'),
    }),
  );
  await page.addScriptTag({ url });
  const outcome = await page.evaluate(async () => {
    const axe = (
      globalThis as unknown as {
        axe: {
          run(
            context: unknown,
            options: unknown,
          ): Promise<{
            passes: unknown[];
            violations: Array<{ id: string; help: string; nodes: Array<{ target: string[] }> }>;
          }>;
        };
      }
    ).axe;
    const result = await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return {
      passed: result.passes.length,
      problems: result.violations.map(
        (v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`,
      ),
    };
  });
  if (outcome.passed === 0) throw new Error('axe-core checked nothing: is the page empty?');
  return outcome.problems;
}

async function expectText(page: Page, selector: string, pattern: RegExp): Promise<void> {
  await page
    .waitForFunction(
      ([sel, source]) => new RegExp(source).test(document.querySelector(sel)?.textContent ?? ''),
      [selector, pattern.source] as const,
      { timeout: 15_000 },
    )
    .catch(async (error: Error) => {
      throw new Error(
        `${selector} never matched ${pattern}: it reads ${JSON.stringify(
          await page
            .locator(selector)
            .textContent()
            .catch(() => null),
        )} (${error.message.split('\n')[0]})`,
      );
    });
}
