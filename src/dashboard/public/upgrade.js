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
  window: 'waiting for a maintenance window long enough for its unit',
};

/** Step statuses whose note says why (already on the version, what to do by hand, why it was missed). */
const NOTED = ['skipped', 'manual', 'missed'];

/**
 * The view: the history starts being read at once; then the upgrade and its agents' names are read,
 * the header (status, percent, controls) and the plan are drawn, and the live part (followLive)
 * carries on behind them.
 */
export async function upgradeView(view, upgradeId, isCurrent) {
  const name = new Map();
  const history = startHistory(upgradeId, isCurrent, (id) => name.get(id) || id);
  const upgrade = await api('GET', `/api/v1/upgrades/${upgradeId}`);
  const agents = await api('GET', `/api/v1/clusters/${upgrade.clusterId}/agents?limit=5000`);
  for (const a of agents.items) name.set(a.id, a.name);
  const header = upgradeHeader(upgradeId, upgrade.percent);
  const plan = planView(name);
  const reloader = planReloader(upgradeId, isCurrent, plan);
  view.append(
    h('p', {}, h('a', { href: `#/clusters/${upgrade.clusterId}` }, '← Cluster')),
    h('h1', {}, `Upgrade to ${upgrade.packageVersion} `, header.status),
    header.overall,
    header.reason,
    plan.head,
    header.buttons,
    plan.steps,
    h('h2', {}, 'Events'),
    history.log.element,
    history.log.caption,
  );
  plan.draw(upgrade);
  header.setStatus(upgrade);
  // The view is shown now; the history's last pages and the stream carry on behind it.
  void followLive({ upgradeId, isCurrent, upgrade, history, header, plan, reloader });
}

/**
 * The event log, and the history's pages read into it (and folded) while the upgrade is fetched
 * and drawn: they wait for nothing else. `done` resolves as readHistory does; `markRead` is for
 * once it did (the caption then stops saying it is reading).
 */
function startHistory(upgradeId, isCurrent, who) {
  let read = false;
  const log = eventLog({
    id: 'events',
    label: 'Event history',
    format: (e) => `#${e.id} ${localTime(e.createdAt)} ${describeEvent(e, who)}`,
    summary: (count) => `${count.toLocaleString()} event(s), oldest first${read ? '' : '; reading the history…'}`,
  });
  const fold = historyFold();
  const done = readHistory(upgradeId, isCurrent, (items) => {
    fold.take(items);
    log.add(items);
  });
  done.catch(() => {}); // awaited in followLive; a failure there falls back on the stream
  const markRead = () => {
    read = true;
    log.add([]); // the caption says the history is read
  };
  return { log, fold, done, markRead };
}

/** The status, the percent, the reason and the controls the status allows. */
function upgradeHeader(upgradeId, percent) {
  // Screen readers hear the upgrade's status as it changes, not every step of a thousand-agent plan
  // nor every percent: only the status word is a live region.
  const statusWord = h('span', { 'aria-live': 'polite' });
  const percentText = h('span', {});
  const status = h('span', { id: 'upgrade-status' }, statusWord, percentText);
  const overall = h('progress', { id: 'upgrade-progress', max: 100, value: percent, 'aria-label': 'Upgrade progress' });
  const reason = h('p', { class: 'muted', id: 'upgrade-reason' });
  const buttons = h('div', { class: 'actions' });
  let shownStatus = null;

  function setPercent(value) {
    if (typeof value !== 'number') return;
    percentText.textContent = ` ${value}%`;
    overall.value = value;
  }

  function setStatus(u) {
    reason.textContent = u.reason || '';
    setPercent(u.percent);
    if (u.status === shownStatus) return; // the buttons stay, and keep a keyboard user's focus
    shownStatus = u.status;
    statusWord.replaceChildren(badge(u.status));
    buttons.replaceChildren();
    if (can('operator')) buttons.append(...controls(upgradeId, u.status));
  }

  return { status, overall, reason, buttons, setStatus, setPercent };
}

/** What an operator may do to an upgrade in each status. */
const VERBS = {
  pause: ['running'],
  resume: ['paused'],
  cancel: ['scheduled', 'running', 'paused', 'rolling-back'],
  retry: ['failed', 'completed-with-errors'],
  rollback: ['running', 'paused', 'succeeded', 'failed', 'completed-with-errors', 'cancelled', 'rollback-failed'],
};

const LABELS = { rollback: 'Roll back' };

function controls(upgradeId, status) {
  return Object.entries(VERBS)
    .filter(([, allowed]) => allowed.includes(status))
    .map(([verb]) =>
      h(
        'button',
        {
          type: 'button',
          class: verb === 'cancel' || verb === 'rollback' ? 'secondary' : '',
          onclick: () =>
            verb === 'rollback'
              ? rollBack(upgradeId)
              : act(`/api/v1/upgrades/${upgradeId}/${verb}`, `${verb} done`, null),
        },
        LABELS[verb] || verb[0].toUpperCase() + verb.slice(1),
      ),
    );
}

/**
 * A rollback is previewed first: refused (no backup, changed since...) it says why and does
 * nothing; else the operator confirms what it will do (docs/rollback.md).
 */
async function rollBack(upgradeId) {
  let preview;
  try {
    preview = await api('POST', `/api/v1/upgrades/${upgradeId}/rollback/preview`);
  } catch (error) {
    toast(describeError(error));
    return;
  }
  if (preview.refusals.length) {
    toast(`It cannot be rolled back: ${preview.refusals.map((r) => r.message).join('; ')}`);
    return;
  }
  const agents = preview.steps.filter((s) => s.kind === 'rollback').length;
  const switches = preview.steps.filter((s) => s.kind === 'switchover').length;
  const what = `${agents} agent(s) go back to their old version with the data of their backup${switches ? `, with ${switches} switchover(s) so that no serving member stops` : ''}`;
  if (!confirm(`Roll back this upgrade? ${what}.`)) return;
  await act(`/api/v1/upgrades/${upgradeId}/rollback`, 'rollback started', null);
}

/**
 * The plan by batch: its summary and warnings (`head`, above the buttons), its steps (`steps`,
 * below them), both redrawn after a retry. `rows` updates a drawn step from an event's data.
 */
function planView(name) {
  const head = h('div', {});
  const steps = h('div', {});
  const rows = new Map();

  /** The plan as the server has it now: a retry replaces the steps it runs again, so all are redrawn. */
  function draw(u) {
    rows.clear();
    // Batches of the upgrade, then those of each rollback round (docs/rollback.md), in that order.
    const batches = new Map();
    for (const s of u.steps) {
      const key = (s.round || 0) * 1e6 + s.batch;
      if (!batches.has(key)) batches.set(key, []);
      batches.get(key).push(s);
    }
    head.replaceChildren(
      h(
        'p',
        { class: 'muted' },
        `${u.resolvedPolicy}, ${u.units} unit(s)`,
        u.scheduledAt ? `, scheduled for ${localDateTime(u.scheduledAt)}` : '',
        u.createdBy ? `, created by ${u.createdBy.name ?? u.createdBy.tokenId}` : `, created by Lockstep (${u.origin})`,
      ),
      ...u.warnings.map((w) => h('p', { class: 'notice' }, w.message)),
    );
    const row = (s) => {
      const drawn = stepRow(s, name.get(s.agentId));
      rows.set(s.id, drawn.update);
      return drawn.row;
    };
    steps.replaceChildren(
      h(
        'section',
        { 'aria-labelledby': 'steps-title' },
        h('h2', { id: 'steps-title' }, 'Plan and progress'),
        [...batches]
          .sort((a, b) => a[0] - b[0])
          .map(([key, batch]) => h('div', { class: 'batch' }, h('h3', {}, batchTitle(key)), batch.map(row))),
      ),
    );
  }

  return { head, steps, rows, draw };
}

function batchTitle(key) {
  const round = Math.floor(key / 1e6);
  const batch = (key % 1e6) + 1;
  return round === 0 ? `Batch ${batch}` : `Rollback${round > 1 ? ` ${round}` : ''}, batch ${batch}`;
}

/** A step's row, and `update`, which applies a task.progress event's data (or the plan's step) to it. */
function stepRow(s, agentName) {
  const bar = h('progress', {
    max: 100,
    value: s.status === 'succeeded' ? 100 : s.percent,
    'aria-label': `${s.kind} ${agentName || ''}`,
  });
  const st = h('span', {});
  const detail = h('div', { class: 'detail' });
  const row = h(
    'div',
    { class: 'step', 'data-step': s.id, 'data-agent': agentName || s.agentId },
    h('div', { class: 'what' }, h('strong', {}, agentName || s.agentId), ` ${s.kind}`),
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
      known.windowOpensAt,
      known.message,
      known.error,
      known.note,
      notes,
    ]);
    if (key === shown) return;
    shown = key;
    bar.value = known.status === 'succeeded' ? 100 : known.percent;
    st.replaceChildren(badge(known.status), known.status === 'running' && known.phase ? ` ${known.phase}` : '');
    detail.replaceChildren(stepDetail(known));
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
  return { row, update };
}

/** What a step waits for, its last message, its error and its note where its status has one, in a line. */
function stepDetail(step) {
  const said = [
    step.waitingFor ? WAITING[step.waitingFor] || `waiting for ${step.waitingFor}` : '',
    step.waitingFor === 'window' && step.windowOpensAt ? `opens ${localDateTime(step.windowOpensAt)}` : '',
    step.message || '',
    step.error || '',
    step.note && NOTED.includes(step.status) ? step.note : '',
  ];
  return said.filter(Boolean).join(' · ');
}

/**
 * Reads the plan again (after a retry). While it is read, step events are kept too: once it is
 * drawn they are applied in order, so each step ends at its newest state whether that came with
 * the read or after it. `keep` takes such an event; a reload asked for during one runs after it.
 */
function planReloader(upgradeId, isCurrent, plan) {
  let reading = null;
  async function reload() {
    if (reading) return void (reading.again = true);
    reading = { events: [], again: false };
    try {
      const fresh = await api('GET', `/api/v1/upgrades/${upgradeId}`);
      if (!isCurrent()) return;
      plan.draw(fresh);
      for (const d of reading.events) plan.rows.get(d.stepId)?.(d);
    } catch (error) {
      toast(`The upgrade's new plan could not be read: ${describeError(error)}`);
    } finally {
      const again = reading.again;
      reading = null;
      if (again && isCurrent()) reload();
    }
  }
  const keep = (d) => reading?.events.push(d);
  return { reload, keep };
}

/**
 * Once the history is read: each step at its newest state in it, the header at the newest status
 * and percent, then the stream from the last event read.
 */
async function followLive({ upgradeId, isCurrent, upgrade, history, header, plan, reloader }) {
  const { fold, log } = history;
  // A history that could not be read to its end is not lost: the stream replays what follows the
  // last event read (everything, if none was).
  const lastId = await history.done.catch((error) => {
    if (isCurrent())
      toast(`The upgrade's history could not be read (${describeError(error)}): it comes over the stream instead.`);
    return fold.lastId;
  });
  if (!isCurrent()) return; // a later render took over: do not open a stream for this one
  history.markRead();
  for (const [stepId, e] of fold.steps) plan.rows.get(stepId)?.(e.data);
  if (fold.status) header.setStatus(fold.status.data);
  header.setPercent(fold.percent);
  let streamStatus = fold.status?.data.status ?? upgrade.status;
  // A retry read in the history after the plan was: its new steps are not drawn yet.
  if (
    fold.retriedAfter !== null &&
    [...fold.steps].some(([stepId, e]) => e.id > fold.retriedAfter && !plan.rows.has(stepId))
  )
    reloader.reload();
  const onEvent = (e) => {
    const d = e.data;
    if (e.type === 'task.progress') {
      // A step not drawn is a new one (a retry's, or a rollback's): the plan is read again.
      if (plan.rows.has(d.stepId)) plan.rows.get(d.stepId)(d);
      else reloader.reload();
      reloader.keep(d);
      header.setPercent(d.upgradePercent);
    }
    if (e.type === 'upgrade.status') {
      header.setStatus(d);
      // A retry: its steps are new ones (a switchover may come first), so the plan is read again.
      if (ENDED.includes(streamStatus) && d.status === 'running') reloader.reload();
      streamStatus = d.status;
    }
    log.add([e]);
  };
  // follow: the stream stays open after the upgrade ended, so a retry started elsewhere shows here.
  follow('upgrade', upgradeId, { onEvent }, { follow: true, afterId: lastId });
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
  // The person whose call caused it (docs/audit.md); Lockstep's own events and agents' reports name nobody.
  return e.actor ? `${describeData(e, who)} (by ${e.actor})` : describeData(e, who);
}

function describeData(e, who) {
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
