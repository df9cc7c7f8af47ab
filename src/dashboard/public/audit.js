// The audit trail (admins): who did what, refused calls too, newest first (docs/audit.md).
import { api, badge, can, describeError, field, h, localDateTime } from './lib.js';

const OUTCOMES = ['', 'ok', 'refused', 'failed'];
const PAGE = 100;

/** An actor in words: a token's name and role, an agent, "Lockstep (scheduler)", or anonymous. */
function actorText(a) {
  if (a.kind === 'user') return `${a.name} (${a.role})`;
  if (a.kind === 'agent') return `agent ${a.agentId}`;
  if (a.kind === 'system') return `Lockstep (${a.name})`;
  return 'anonymous';
}

/** Where a record's target can be seen in the dashboard, if anywhere. */
function targetLink(r) {
  if (r.targetType === 'upgrade' && r.targetId) return h('a', { href: `#/upgrades/${r.targetId}` }, 'upgrade');
  if (r.targetType === 'cluster' && r.targetId && r.action !== 'cluster.delete')
    return h('a', { href: `#/clusters/${r.targetId}` }, 'cluster');
  if (r.clusterId) return h('a', { href: `#/clusters/${r.clusterId}` }, r.targetType);
  return r.targetType;
}

export async function auditView(view) {
  view.append(h('h1', {}, 'Audit trail'));
  if (!can('admin')) {
    view.append(h('p', { class: 'muted' }, 'Only admins read the audit trail; ask an admin.'));
    return;
  }
  const actor = h('input', { id: 'audit-actor', type: 'text', placeholder: 'token name or id' });
  const action = h('input', { id: 'audit-action', type: 'text', placeholder: 'upgrade, or upgrade.pause' });
  const outcome = h(
    'select',
    { id: 'audit-outcome' },
    OUTCOMES.map((o) => h('option', { value: o }, o || 'any')),
  );
  const clusters = await api('GET', '/api/v1/clusters');
  const cluster = h(
    'select',
    { id: 'audit-cluster' },
    h('option', { value: '' }, 'any'),
    clusters.map((c) => h('option', { value: c.id }, c.name)),
  );
  const target = h('input', { id: 'audit-target', type: 'text', placeholder: 'an upgrade, agent or package id' });
  const from = h('input', { id: 'audit-from', type: 'date' });
  const to = h('input', { id: 'audit-to', type: 'date' });
  const error = h('p', { class: 'error', role: 'alert', id: 'audit-error' });
  const rows = h('tbody', {});
  const more = h('button', { type: 'button', class: 'secondary', id: 'audit-older', hidden: true }, 'Older');
  let nextBeforeId = null;

  const query = (beforeId) => {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (actor.value.trim()) q.set('actor', actor.value.trim());
    if (action.value.trim()) q.set('action', action.value.trim());
    if (outcome.value) q.set('outcome', outcome.value);
    if (cluster.value) q.set('clusterId', cluster.value);
    if (target.value.trim()) q.set('targetId', target.value.trim());
    if (from.value) q.set('from', new Date(`${from.value}T00:00:00`).toISOString());
    // Until the end of that day (local time).
    if (to.value) q.set('to', new Date(new Date(`${to.value}T00:00:00`).getTime() + 86_400_000).toISOString());
    if (beforeId) q.set('beforeId', String(beforeId));
    return `/api/v1/audit?${q}`;
  };
  const row = (r) =>
    h(
      'tr',
      { 'data-audit': r.id },
      h('td', {}, localDateTime(r.createdAt)),
      h('td', {}, actorText(r.actor)),
      h('td', {}, h('code', {}, r.action)),
      h('td', {}, targetLink(r)),
      h(
        'td',
        {},
        badge(r.outcome === 'ok' ? 'succeeded' : 'failed', r.status ? `${r.outcome} ${r.status}` : r.outcome),
      ),
      h('td', {}, r.summary),
    );
  async function load(append) {
    error.textContent = '';
    try {
      const page = await api('GET', query(append ? nextBeforeId : null));
      if (!append) rows.replaceChildren();
      rows.append(...page.items.map(row));
      if (!append && page.items.length === 0)
        rows.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'Nothing recorded matches.')));
      nextBeforeId = page.nextBeforeId;
      more.hidden = nextBeforeId === null;
    } catch (e) {
      error.textContent = describeError(e);
    }
  }
  more.onclick = () => load(true);

  view.append(
    h(
      'form',
      {
        class: 'card',
        id: 'audit-filters',
        'aria-labelledby': 'audit-filters-title',
        onsubmit: (e) => {
          e.preventDefault();
          return load(false);
        },
      },
      h('h2', { id: 'audit-filters-title' }, 'Filter'),
      field('Who', actor),
      field('Action', action),
      field('Outcome', outcome),
      field('Cluster', cluster),
      field('Target id', target),
      field('From (day)', from),
      field('Until (day)', to),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show')),
      error,
    ),
    h(
      'table',
      { id: 'audit-records' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['When', 'Who', 'Action', 'Target', 'Outcome', 'What'].map((t) => h('th', { scope: 'col' }, t)),
        ),
      ),
      rows,
    ),
    more,
  );
  await load(false);
}
