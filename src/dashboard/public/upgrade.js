// One upgrade, live: the plan by batch with a progress bar per step, the controls, the event history.
// The plan comes from one read of the upgrade, the history from its JSON pages (read meanwhile), and
// only events newer than the last one read come over the stream; the log is virtual (event-log.js).
import { act, api, badge, can, describeError, h, localDateTime, localTime, toast } from './lib.js';
import { eventLog } from './event-log.js';
import { follow } from './stream.js';

/** Events per history page: the most the API gives at once. */
const HISTORY_PAGE = 1000;

/** An upgrade that has ended; a retry takes it from one of these back to running. */
const ENDED = ['succeeded', 'failed', 'completed-with-errors', 'cancelled'];

/** What a waiting step waits for, in words. */
const WAITING = {
  online: 'waiting for the agent to come online',
  idle: 'waiting for the agent to be idle',
  pickup: 'waiting for the agent to fetch its command',
  gate: 'waiting for the agent taking over to be ready',
  peer: 'waiting until its peer can take over',
  dependencies: 'waiting for the steps before it',
};

/** Step statuses whose note says why (already on the version, what to do by hand, why it was missed). */
const NOTED = ['skipped', 'manual', 'missed'];

export async function upgradeView(view, upgradeId, isCurrent) {
  const name = new Map();
  const who = (id) => name.get(id) || id;
  let historyRead = false;
  const log = eventLog({
    id: 'events',
    label: 'Event history',
    format: (e) => `#${e.id} ${localTime(e.createdAt)} ${describeEvent(e, who)}`,
    summary: (count) =>
      `${count.toLocaleString()} event(s), oldest first${historyRead ? '' : '; reading the history…'}`,
  });
  // The history's pages are read while the upgrade is fetched and drawn: they wait for nothing else.
  const fold = historyFold();
  const history = readHistory(upgradeId, isCurrent, (items) => {
    fold.take(items);
    log.add(items);
  });
  history.catch(() => {}); // awaited below; a failure there falls back on the stream
  const upgrade = await api('GET', `/api/v1/upgrades/${upgradeId}`);
  const agents = await api('GET', `/api/v1/clusters/${upgrade.clusterId}/agents?limit=5000`);
  for (const a of agents.items) name.set(a.id, a.name);
  const rows = new Map();
  // Screen readers hear the upgrade's status as it changes, not every step of a thousand-agent plan
  // nor every percent: only the status word is a live region.
  const statusWord = h('span', { 'aria-live': 'polite' });
  const percentText = h('span', {});
  const status = h('span', { id: 'upgrade-status' }, statusWord, percentText);
  const overall = h('progress', {
    id: 'upgrade-progress',
    max: 100,
    value: upgrade.percent,
    'aria-label': 'Upgrade progress',
  });
  const reason = h('p', { class: 'muted', id: 'upgrade-reason' });
  const buttons = h('div', { class: 'actions' });
  // The plan's summary and warnings above the buttons, its steps below: both redrawn after a retry.
  const planHead = h('div', {});
  const planSteps = h('div', {});
  let shownStatus = null;

  function setStatus(u) {
    reason.textContent = u.reason || '';
    setPercent(u.percent);
    if (u.status === shownStatus) return; // the buttons stay, and keep a keyboard user's focus
    shownStatus = u.status;
    statusWord.replaceChildren(badge(u.status));
    buttons.replaceChildren();
    if (!can('operator')) return;
    const verbs = {
      pause: ['running'],
      resume: ['paused'],
      cancel: ['scheduled', 'running', 'paused'],
      retry: ['failed', 'completed-with-errors'],
    };
    for (const [verb, allowed] of Object.entries(verbs)) {
      if (allowed.includes(u.status))
        buttons.append(
          h(
            'button',
            {
              type: 'button',
              class: verb === 'cancel' ? 'secondary' : '',
              onclick: () => act(`/api/v1/upgrades/${upgradeId}/${verb}`, `${verb} done`, null),
            },
            verb[0].toUpperCase() + verb.slice(1),
          ),
        );
    }
  }

  function setPercent(percent) {
    if (typeof percent !== 'number') return;
    percentText.textContent = ` ${percent}%`;
    overall.value = percent;
  }

  function stepRow(s) {
    const bar = h('progress', {
      max: 100,
      value: s.status === 'succeeded' ? 100 : s.percent,
      'aria-label': `${s.kind} ${name.get(s.agentId) || ''}`,
    });
    const st = h('span', {});
    const detail = h('div', { class: 'detail' });
    const row = h(
      'div',
      { class: 'step', 'data-step': s.id, 'data-agent': name.get(s.agentId) || s.agentId },
      h('div', { class: 'what' }, h('strong', {}, name.get(s.agentId) || s.agentId), ` ${s.kind}`),
      bar,
      st,
      detail,
    );
    // The note comes with the plan (GET), not with task.progress events: it is kept from the first draw.
    let known = s;
    let shown = null;
    const update = (x) => {
      known = { ...known, ...x };
      const notes = Array.isArray(known.agentNotes) ? known.agentNotes : [];
      // What the row shows, as one key: an event that changes none of it (the history's newest
      // state of a step the plan already had) costs no DOM work.
      const key = JSON.stringify([
        known.status,
        known.percent,
        known.phase,
        known.waitingFor,
        known.message,
        known.error,
        known.note,
        notes,
      ]);
      if (key === shown) return;
      shown = key;
      bar.value = known.status === 'succeeded' ? 100 : known.percent;
      st.replaceChildren(badge(known.status), known.status === 'running' && known.phase ? ` ${known.phase}` : '');
      const said = [
        known.waitingFor ? WAITING[known.waitingFor] || `waiting for ${known.waitingFor}` : '',
        known.message || '',
        known.error || '',
        known.note && NOTED.includes(known.status) ? known.note : '',
      ];
      detail.replaceChildren(said.filter(Boolean).join(' · '));
      if (notes.length)
        detail.append(
          h(
            'ul',
            { class: 'agent-notes', 'aria-label': 'What the agent reported' },
            notes.map((n) => h('li', {}, n)),
          ),
        );
      row.dataset.status = known.status;
      row.dataset.percent = String(bar.value);
    };
    update(s);
    rows.set(s.id, update);
    return row;
  }

  /** The plan as the server has it now: a retry replaces the steps it runs again, so all are redrawn. */
  function drawPlan(u) {
    rows.clear();
    const batches = new Map();
    for (const s of u.steps) {
      if (!batches.has(s.batch)) batches.set(s.batch, []);
      batches.get(s.batch).push(s);
    }
    planHead.replaceChildren(
      h(
        'p',
        { class: 'muted' },
        `${u.resolvedPolicy}, ${u.units} unit(s)`,
        u.scheduledAt ? `, scheduled for ${localDateTime(u.scheduledAt)}` : '',
      ),
      ...u.warnings.map((w) => h('p', { class: 'notice' }, w.message)),
    );
    planSteps.replaceChildren(
      h(
        'section',
        { 'aria-labelledby': 'steps-title' },
        h('h2', { id: 'steps-title' }, 'Plan and progress'),
        [...batches]
          .sort((a, b) => a[0] - b[0])
          .map(([b, steps]) => h('div', { class: 'batch' }, h('h3', {}, `Batch ${b + 1}`), steps.map(stepRow))),
      ),
    );
  }

  // While the plan is read again, step events are kept too: once it is drawn they are applied in
  // order, so each step ends at its newest state whether that came with the read or after it.
  let reading = null;
  async function reloadPlan() {
    if (reading) return void (reading.again = true);
    reading = { events: [], again: false };
    try {
      const fresh = await api('GET', `/api/v1/upgrades/${upgradeId}`);
      if (!isCurrent()) return;
      drawPlan(fresh);
      for (const d of reading.events) rows.get(d.stepId)?.(d);
    } catch (error) {
      toast(`The upgrade's new plan could not be read: ${describeError(error)}`);
    } finally {
      const again = reading.again;
      reading = null;
      if (again && isCurrent()) reloadPlan();
    }
  }

  view.append(
    h('p', {}, h('a', { href: `#/clusters/${upgrade.clusterId}` }, '← Cluster')),
    h('h1', {}, `Upgrade to ${upgrade.packageVersion} `, status),
    overall,
    reason,
    planHead,
    buttons,
    planSteps,
    h('h2', {}, 'Events'),
    log.element,
    log.caption,
  );
  drawPlan(upgrade);
  setStatus(upgrade);
  // The view is shown now; the history's last pages and the stream carry on behind it.
  void (async () => {
    // A history that could not be read to its end is not lost: the stream replays what follows the
    // last event read (everything, if none was).
    const lastId = await history.catch((error) => {
      if (isCurrent())
        toast(`The upgrade's history could not be read (${describeError(error)}): it comes over the stream instead.`);
      return fold.lastId;
    });
    if (!isCurrent()) return; // a later render took over: do not open a stream for this one
    historyRead = true;
    log.add([]); // the caption says the history is read
    // Each step at its newest state in the history, the header at the newest status and percent.
    for (const [stepId, e] of fold.steps) rows.get(stepId)?.(e.data);
    if (fold.status) setStatus(fold.status.data);
    setPercent(fold.percent);
    let streamStatus = fold.status?.data.status ?? upgrade.status;
    // A retry read in the history after the plan was: its new steps are not drawn yet.
    if (
      fold.retriedAfter !== null &&
      [...fold.steps].some(([stepId, e]) => e.id > fold.retriedAfter && !rows.has(stepId))
    )
      reloadPlan();
    // follow: the stream stays open after the upgrade ended, so a retry started elsewhere shows here.
    follow(
      'upgrade',
      upgradeId,
      {
        onEvent(e) {
          const d = e.data;
          if (e.type === 'task.progress') {
            rows.get(d.stepId)?.(d);
            reading?.events.push(d);
            setPercent(d.upgradePercent);
          }
          if (e.type === 'upgrade.status') {
            setStatus(d);
            // A retry: its steps are new ones (a switchover may come first), so the plan is read again.
            if (ENDED.includes(streamStatus) && d.status === 'running') reloadPlan();
            streamStatus = d.status;
          }
          log.add([e]);
        },
      },
      { follow: true, afterId: lastId },
    );
  })();
}

/**
 * Reads an upgrade's history as JSON pages, oldest first, handing each page's events to onPage;
 * resolves with the id of the last event read (0 when there is none), or null if the view went.
 */
async function readHistory(upgradeId, isCurrent, onPage) {
  let after = 0;
  for (;;) {
    const page = await api('GET', `/api/v1/upgrades/${upgradeId}/history?afterId=${after}&limit=${HISTORY_PAGE}`);
    if (!isCurrent()) return null;
    onPage(page.items);
    if (page.items.length) after = page.items[page.items.length - 1].id;
    if (page.nextAfterId === null) return after;
    after = page.nextAfterId;
  }
}

/**
 * What the history says now, gathered as its pages arrive without touching the page: each step's
 * newest task.progress event (it carries the step's whole state), the newest upgrade.status event,
 * the newest percent (either kind carries one), the last id read, and where the last retry began
 * (the id of the ended status it followed), to tell whether the plan read may predate it.
 */
function historyFold() {
  const fold = { steps: new Map(), status: null, percent: null, lastId: 0, retriedAfter: null };
  fold.take = (items) => {
    for (const e of items) {
      fold.lastId = e.id;
      if (e.type === 'task.progress') {
        fold.steps.set(e.data.stepId, e);
        if (typeof e.data.upgradePercent === 'number') fold.percent = e.data.upgradePercent;
      } else if (e.type === 'upgrade.status') {
        if (fold.status && ENDED.includes(fold.status.data.status) && e.data.status === 'running')
          fold.retriedAfter = fold.status.id;
        fold.status = e;
        if (typeof e.data.percent === 'number') fold.percent = e.data.percent;
      }
    }
  };
  return fold;
}

/** An event as a line of the log (without its id and time). */
function describeEvent(e, who) {
  const d = e.data;
  return e.type === 'task.progress'
    ? `${who(d.agentId)} ${d.kind} ${d.status}${d.phase ? ' ' + d.phase : ''} ${d.percent}%${d.message ? ` (${d.message})` : ''}`
    : e.type === 'upgrade.status'
      ? `upgrade ${d.status} ${d.percent}%`
      : e.type === 'pair.switchover'
        ? `${who(d.activeAgentId)} took over from ${who(d.standbyAgentId)} (${d.failoverGroup})`
        : e.type === 'command.status'
          ? `${who(d.agentId)} ${d.type} command ${d.status}${d.version ? ' ' + d.version : ''}${d.error ? `: ${d.error}` : ''}`
          : `${e.type} ${JSON.stringify(d)}`;
}
