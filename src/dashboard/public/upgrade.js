// One upgrade, live: the plan by batch with a progress bar per step, the controls, the event history.
import { act, api, badge, can, describeError, h, localDateTime, localTime, toast } from './lib.js';
import { follow } from './stream.js';

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
  const upgrade = await api('GET', `/api/v1/upgrades/${upgradeId}`);
  const agents = await api('GET', `/api/v1/clusters/${upgrade.clusterId}/agents?limit=5000`);
  const name = new Map(agents.items.map((a) => [a.id, a.name]));
  const rows = new Map();
  // Screen readers hear the upgrade's status as it changes, not every step of a thousand-agent plan
  // nor every percent: only the status word is a live region.
  const statusWord = h('span', { 'aria-live': 'polite' });
  const percentText = h('span', {});
  const status = h('span', { id: 'upgrade-status' }, statusWord, percentText);
  const overall = h('progress', { id: 'upgrade-progress', max: 100, value: upgrade.percent, 'aria-label': 'Upgrade progress' });
  const reason = h('p', { class: 'muted', id: 'upgrade-reason' });
  const buttons = h('div', { class: 'actions' });
  // The plan's summary and warnings above the buttons, its steps below: both redrawn after a retry.
  const planHead = h('div', {});
  const planSteps = h('div', {});
  const log = h('div', { class: 'events', id: 'events', tabindex: 0, 'aria-label': 'Event history' });
  let pendingLines = null;
  let shownStatus = null;

  function setStatus(u) {
    reason.textContent = u.reason || '';
    setPercent(u.percent);
    if (u.status === shownStatus) return; // the buttons stay, and keep a keyboard user's focus
    shownStatus = u.status;
    statusWord.replaceChildren(badge(u.status));
    buttons.replaceChildren();
    if (!can('operator')) return;
    const verbs = { pause: ['running'], resume: ['paused'], cancel: ['scheduled', 'running', 'paused'], retry: ['failed', 'completed-with-errors'] };
    for (const [verb, allowed] of Object.entries(verbs)) {
      if (allowed.includes(u.status)) buttons.append(h('button', { type: 'button', class: verb === 'cancel' ? 'secondary' : '', onclick: () => act(`/api/v1/upgrades/${upgradeId}/${verb}`, `${verb} done`, null) }, verb[0].toUpperCase() + verb.slice(1)));
    }
  }

  function setPercent(percent) {
    if (typeof percent !== 'number') return;
    percentText.textContent = ` ${percent}%`;
    overall.value = percent;
  }

  function stepRow(s) {
    const bar = h('progress', { max: 100, value: s.status === 'succeeded' ? 100 : s.percent, 'aria-label': `${s.kind} ${name.get(s.agentId) || ''}` });
    const st = h('span', {});
    const detail = h('div', { class: 'detail' });
    const row = h('div', { class: 'step', 'data-step': s.id, 'data-agent': name.get(s.agentId) || s.agentId }, h('div', { class: 'what' }, h('strong', {}, name.get(s.agentId) || s.agentId), ` ${s.kind}`), bar, st, detail);
    // The note comes with the plan (GET), not with task.progress events: it is kept from the first draw.
    let known = s;
    const update = (x) => {
      known = { ...known, ...x };
      bar.value = known.status === 'succeeded' ? 100 : known.percent;
      st.replaceChildren(badge(known.status), known.status === 'running' && known.phase ? ` ${known.phase}` : '');
      const said = [
        known.waitingFor ? WAITING[known.waitingFor] || `waiting for ${known.waitingFor}` : '',
        known.message || '',
        known.error || '',
        known.note && NOTED.includes(known.status) ? known.note : '',
      ];
      const notes = Array.isArray(known.agentNotes) ? known.agentNotes : [];
      detail.replaceChildren(said.filter(Boolean).join(' · '));
      if (notes.length) detail.append(h('ul', { class: 'agent-notes', 'aria-label': 'What the agent reported' }, notes.map((n) => h('li', {}, n))));
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
      h('p', { class: 'muted' }, `${u.resolvedPolicy}, ${u.units} unit(s)`, u.scheduledAt ? `, scheduled for ${localDateTime(u.scheduledAt)}` : ''),
      ...u.warnings.map((w) => h('p', { class: 'notice' }, w.message)),
    );
    planSteps.replaceChildren(
      h('section', { 'aria-labelledby': 'steps-title' }, h('h2', { id: 'steps-title' }, 'Plan and progress'),
        [...batches].sort((a, b) => a[0] - b[0]).map(([b, steps]) => h('div', { class: 'batch' }, h('h3', {}, `Batch ${b + 1}`), steps.map(stepRow)))),
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
    overall, reason, planHead, buttons, planSteps,
    h('h2', {}, 'Events'), log,
  );
  drawPlan(upgrade);
  setStatus(upgrade);
  if (!isCurrent()) return; // a later render took over: do not open a stream for this one
  let streamStatus = null;
  // follow: the stream stays open after the upgrade ended, so a retry started elsewhere shows here.
  follow('upgrade', upgradeId, {
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
      const who = (id) => name.get(id) || id;
      const line =
        e.type === 'task.progress' ? `${who(d.agentId)} ${d.kind} ${d.status}${d.phase ? ' ' + d.phase : ''} ${d.percent}%${d.message ? ` (${d.message})` : ''}`
        : e.type === 'upgrade.status' ? `upgrade ${d.status} ${d.percent}%`
        : e.type === 'pair.switchover' ? `${who(d.activeAgentId)} took over from ${who(d.standbyAgentId)} (${d.failoverGroup})`
        : e.type === 'command.status' ? `${who(d.agentId)} ${d.type} command ${d.status}${d.version ? ' ' + d.version : ''}${d.error ? `: ${d.error}` : ''}`
        : `${e.type} ${JSON.stringify(d)}`;
      addLine(`#${e.id} ${localTime(e.createdAt)} ${line}`);
    },
  }, { follow: true });

  // Lines go in at most four times a second, so replaying a long history costs a few layouts rather
  // than one per event or frame; the log follows the newest line unless the reader scrolled up.
  function addLine(text) {
    if (!pendingLines) {
      pendingLines = document.createDocumentFragment();
      setTimeout(() => {
        const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        log.append(pendingLines);
        pendingLines = null;
        if (atBottom) log.scrollTop = log.scrollHeight;
      }, 250);
    }
    pendingLines.append(h('div', {}, text));
  }
}
