// One upgrade, live: the plan by batch with a progress bar per step, the controls, the event history.
import { act, api, badge, can, h, localDateTime, localTime } from './lib.js';
import { follow } from './stream.js';

export async function upgradeView(view, upgradeId, isCurrent) {
  const upgrade = await api('GET', `/api/v1/upgrades/${upgradeId}`);
  const agents = await api('GET', `/api/v1/clusters/${upgrade.clusterId}/agents?limit=5000`);
  const name = new Map(agents.items.map((a) => [a.id, a.name]));
  const rows = new Map();
  // Screen readers hear the upgrade's status as it changes, not every step of a thousand-agent plan.
  const status = h('span', { id: 'upgrade-status', 'aria-live': 'polite' });
  const overall = h('progress', { id: 'upgrade-progress', max: 100, value: upgrade.percent, 'aria-label': 'Upgrade progress' });
  const reason = h('p', { class: 'muted', id: 'upgrade-reason' });
  const buttons = h('div', { class: 'actions' });
  const log = h('div', { class: 'events', id: 'events', tabindex: 0, 'aria-label': 'Event history' });
  let pendingLines = null;

  function setUpgrade(u) {
    status.replaceChildren(badge(u.status), ` ${u.percent}%`);
    overall.value = u.percent;
    reason.textContent = u.reason || '';
    buttons.replaceChildren();
    if (!can('operator')) return;
    const verbs = { pause: ['running'], resume: ['paused'], cancel: ['scheduled', 'running', 'paused'], retry: ['failed', 'completed-with-errors'] };
    for (const [verb, allowed] of Object.entries(verbs)) {
      if (allowed.includes(u.status)) buttons.append(h('button', { type: 'button', class: verb === 'cancel' ? 'secondary' : '', onclick: () => act(`/api/v1/upgrades/${upgradeId}/${verb}`, `${verb} done`, null) }, verb[0].toUpperCase() + verb.slice(1)));
    }
  }

  function stepRow(s) {
    const bar = h('progress', { max: 100, value: s.status === 'succeeded' ? 100 : s.percent, 'aria-label': `${s.kind} ${name.get(s.agentId) || ''}` });
    const st = h('span', {});
    const detail = h('div', { class: 'detail' });
    const row = h('div', { class: 'step', 'data-step': s.id, 'data-agent': name.get(s.agentId) || s.agentId }, h('div', { class: 'what' }, h('strong', {}, name.get(s.agentId) || s.agentId), ` ${s.kind}`), bar, st, detail);
    const update = (x) => {
      bar.value = x.status === 'succeeded' ? 100 : x.percent;
      st.replaceChildren(badge(x.status), x.status === 'running' && x.phase ? ` ${x.phase}` : '');
      detail.textContent = [x.waitingFor ? `waiting for ${x.waitingFor}` : '', x.message || '', x.error || '', x.note && x.status === 'skipped' ? x.note : ''].filter(Boolean).join(' · ');
      row.dataset.status = x.status;
      row.dataset.percent = String(bar.value);
    };
    update(s);
    rows.set(s.id, update);
    return row;
  }

  const batches = new Map();
  for (const s of upgrade.steps) {
    if (!batches.has(s.batch)) batches.set(s.batch, []);
    batches.get(s.batch).push(s);
  }
  view.append(
    h('p', {}, h('a', { href: `#/clusters/${upgrade.clusterId}` }, '← Cluster')),
    h('h1', {}, `Upgrade to ${upgrade.packageVersion} `, status),
    overall, reason,
    h('p', { class: 'muted' }, `${upgrade.resolvedPolicy}, ${upgrade.units} unit(s)`, upgrade.scheduledAt ? `, scheduled for ${localDateTime(upgrade.scheduledAt)}` : ''),
    upgrade.warnings.map((w) => h('p', { class: 'notice' }, w.message)),
    buttons,
    h('section', { 'aria-labelledby': 'steps-title' }, h('h2', { id: 'steps-title' }, 'Plan and progress'),
      [...batches].sort((a, b) => a[0] - b[0]).map(([b, steps]) => h('div', { class: 'batch' }, h('h3', {}, `Batch ${b + 1}`), steps.map(stepRow)))),
    h('h2', {}, 'Events'), log,
  );
  setUpgrade(upgrade);
  if (!isCurrent()) return; // a later render took over: do not open a stream for this one
  follow('upgrade', upgradeId, {
    onEvent(e) {
      const d = e.data;
      if (e.type === 'task.progress' && rows.has(d.stepId)) rows.get(d.stepId)(d);
      if (e.type === 'upgrade.status') setUpgrade({ ...upgrade, ...d });
      if (e.type === 'task.progress' && typeof d.upgradePercent === 'number') overall.value = d.upgradePercent;
      const who = (id) => name.get(id) || id;
      const line =
        e.type === 'task.progress' ? `${who(d.agentId)} ${d.kind} ${d.status}${d.phase ? ' ' + d.phase : ''} ${d.percent}%`
        : e.type === 'upgrade.status' ? `upgrade ${d.status} ${d.percent}%`
        : e.type === 'pair.switchover' ? `${who(d.activeAgentId)} took over from ${who(d.standbyAgentId)} (${d.failoverGroup})`
        : `${e.type} ${JSON.stringify(d)}`;
      addLine(`#${e.id} ${localTime(e.createdAt)} ${line}`);
    },
  });

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
