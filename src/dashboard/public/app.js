// Lockstep's dashboard: plain browser JavaScript on the public API and its SSE streams.
// Everything shown is built as DOM nodes from text (never HTML strings), so nothing an agent or a
// package reports can inject markup.
'use strict';

const TOKEN_KEY = 'lockstep.token';
const state = { token: sessionStorage.getItem(TOKEN_KEY), me: null, stream: null, seq: 0 };
const RANK = { viewer: 1, operator: 2, admin: 3 };
const can = (role) => state.me && RANK[state.me.role] >= RANK[role];
const $ = (id) => document.getElementById(id);

/** h('tag', {attr, onclick}, ...children): a DOM element; strings become text nodes, arrays (nested too) their items. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const child of children.flat(Infinity)) if (child !== null && child !== undefined && child !== false) el.append(child instanceof Node ? child : String(child));
  return el;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${state.token}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => ({}));
  if (res.status === 401) signOut('Your token was refused: ' + (json.message || 'sign in again.'));
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

/** A refusal in words, with per-agent prerequisite failures and per-field problems spelled out. */
function describeError(error) {
  const lines = [error.message];
  const d = error.body && error.body.details;
  if (d && Array.isArray(d.failures)) for (const f of d.failures) lines.push(`• ${f.agentName}: ${f.check} requires ${f.required}, it has ${f.actual}`);
  if (d && Array.isArray(d.refusals)) for (const r of d.refusals) lines.push(`• ${r.message}`);
  if (Array.isArray(d)) for (const p of d) if (p.field) lines.push(`• ${p.field}: ${(p.problems || []).join('; ')}`);
  return lines.join('\n');
}

function toast(text) {
  $('toast').textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => ($('toast').textContent = ''), 5000);
}

function badge(status, label) {
  return h('span', { class: `badge ${status}` }, status === 'upgrading' || status === 'running' ? h('span', { class: 'spinner', 'aria-hidden': 'true' }) : null, label || status);
}

/** A labelled control: [label, control], the label tied to the control's id. */
function field(text, control) {
  return [h('label', { for: control.id }, text), control];
}

/**
 * A form card whose submit sends `body()` with `method` to `path()`; a refusal is shown in the
 * form in words, a success goes to `done(result)`.
 */
function apiForm({ id, title, method = 'POST', path, body, submit, done }, ...fields) {
  const result = h('p', { class: 'error', role: 'alert', id: `${id}-result` });
  return h('form', { class: 'card', id, 'aria-labelledby': `${id}-title`, onsubmit: async (e) => {
    e.preventDefault();
    result.textContent = '';
    try {
      done(await api(method, path(), body()));
    } catch (error) {
      result.textContent = describeError(error);
    }
  } }, h('h2', { id: `${id}-title` }, title), fields, h('div', { class: 'actions' }, h('button', { type: 'submit' }, submit)), result);
}

/** A secret shown once (a pairing key, a token), with what to do with it; it stays until dismissed. */
function secretPanel(title, secret, lines) {
  const panel = h('section', { class: 'card secret', role: 'alert', tabindex: -1, 'aria-labelledby': 'secret-title' },
    h('h2', { id: 'secret-title' }, title),
    h('p', {}, 'Shown only now: Lockstep keeps only its hash. Copy it before you close this panel.'),
    h('pre', {}, h('code', { id: 'secret-value' }, secret)),
    lines.map((line) => (line instanceof Node ? line : h('p', {}, line))),
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => panel.remove() }, 'I have copied it')));
  return panel;
}

/** Puts a secret panel at the top of the view and moves focus to it. */
function showSecret(panel) {
  document.querySelector('.secret')?.remove();
  $('view').prepend(panel);
  panel.focus();
}

const VERSION_LABEL = { latest: 'latest', outdated: 'out of date', unknown: 'unknown', upgrading: 'upgrading', failed: 'failed', ahead: 'ahead' };

// ---------------------------------------------------------------- sign-in and routing

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  closeStream();
  $('toast').textContent = '';
  render();
  if (message) $('sign-in-error').textContent = message;
}

$('sign-in-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  state.token = $('token').value.trim();
  try {
    state.me = await api('GET', '/api/v1/session');
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $('token').value = '';
    $('sign-in-error').textContent = '';
    render();
  } catch (error) {
    state.token = null;
    $('sign-in-error').textContent = error.message;
  }
});
$('sign-out').addEventListener('click', () => signOut());
window.addEventListener('hashchange', () => render());

/**
 * Draws the view the address asks for. Renders can overlap (sign-in, then a hash change); each
 * builds into its own detached element and only the latest one is shown, so none draws twice.
 */
async function render() {
  const seq = ++state.seq;
  closeStream();
  const signedIn = Boolean(state.token);
  $('sign-in').hidden = signedIn;
  $('sign-out').hidden = !signedIn;
  if (!signedIn) {
    $('view').replaceChildren();
    $('who').textContent = '';
    $('nav-tokens').hidden = true;
    $('token').focus();
    return;
  }
  if (!state.me) {
    try {
      state.me = await api('GET', '/api/v1/session');
    } catch {
      return;
    }
  }
  $('who').textContent = `${state.me.name} (${state.me.role})`;
  $('nav-tokens').hidden = !can('admin');
  const view = h('div');
  const route = location.hash.replace(/^#\/?/, '').split('/');
  try {
    if (route[0] === 'clusters' && route[1]) await clusterView(view, route[1], () => seq === state.seq);
    else if (route[0] === 'upgrades' && route[1]) await upgradeView(view, route[1], () => seq === state.seq);
    else if (route[0] === 'tokens') await tokensView(view);
    else await clustersView(view);
  } catch (error) {
    view.append(h('p', { class: 'error', role: 'alert' }, describeError(error)));
  }
  if (seq !== state.seq) return; // a later render took over
  $('view').replaceChildren(view);
  $('main').focus({ preventScroll: true });
}

// ---------------------------------------------------------------- clusters

async function clustersView(view) {
  const clusters = await api('GET', '/api/v1/clusters');
  view.append(
    h('h1', {}, 'Clusters'),
    clusters.length === 0
      ? h('p', { class: 'muted' }, can('admin') ? 'No cluster yet: create the first one below.' : 'No cluster yet: an admin creates them.')
      : h('table', {},
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Cluster'), h('th', { scope: 'col' }, 'Product'), h('th', { scope: 'col' }, 'Target'), h('th', { scope: 'col' }, 'Versions'), h('th', { scope: 'col' }, 'Consistent'))),
          h('tbody', {}, clusters.map((c) => h('tr', {},
            h('td', {}, h('a', { href: `#/clusters/${c.id}` }, c.name)),
            h('td', {}, c.product),
            h('td', {}, c.targetVersion || '—'),
            h('td', {}, Object.entries(c.versions).map(([v, n]) => `${v}: ${n}`).join(', ') || 'none reported'),
            h('td', {}, c.consistent ? badge('latest', 'one version') : badge('outdated', 'mixed')),
          )))),
    can('admin') ? newClusterForm() : null,
  );
}

function newClusterForm() {
  const name = h('input', { id: 'cluster-name', type: 'text', required: true, placeholder: 'db-eu-west' });
  const product = h('input', { id: 'cluster-product', type: 'text', required: true, placeholder: 'acme-agent' });
  const policy = h('select', { id: 'cluster-policy' }, ['simultaneous', 'backup-first', 'backup-first-switchback'].map((p) => h('option', { value: p }, p)));
  return apiForm({
    id: 'new-cluster', title: 'New cluster', submit: 'Create cluster',
    path: () => '/api/v1/clusters',
    body: () => ({ name: name.value.trim(), product: product.value.trim(), defaultPolicy: policy.value }),
    done: (cluster) => { toast(`Cluster ${cluster.name} created`); location.hash = `#/clusters/${cluster.id}`; },
  }, field('Cluster name', name), field('Product (what its packages must name)', product), field('Default failover policy', policy));
}

// ---------------------------------------------------------------- API tokens (admins)

async function tokensView(view) {
  view.append(h('h1', {}, 'API tokens'));
  if (!can('admin')) {
    view.append(h('p', { class: 'muted' }, 'Only admins manage API tokens; ask an admin for one.'));
    return;
  }
  const tokens = await api('GET', '/api/v1/tokens?includeRevoked=true');
  const name = h('input', { id: 'token-name', type: 'text', required: true, placeholder: 'ci-uploader' });
  const role = h('select', { id: 'token-role' }, ['viewer', 'operator', 'admin'].map((r) => h('option', { value: r }, r)));
  view.append(
    h('table', {},
      h('thead', {}, h('tr', {}, ['Name', 'Role', 'Starts with', 'Created', 'Status', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, tokens.map((t) => h('tr', { 'data-token': t.name },
        h('th', { scope: 'row' }, t.name, t.id === state.me.tokenId ? h('span', { class: 'muted' }, ' (you)') : null),
        h('td', {}, t.role), h('td', {}, h('code', {}, t.prefix)),
        h('td', {}, new Date(t.createdAt).toLocaleString()),
        h('td', {}, t.revokedAt ? badge('cancelled', `revoked ${new Date(t.revokedAt).toLocaleString()}`) : badge('available', 'active')),
        h('td', {}, t.revokedAt ? null : h('button', { type: 'button', class: 'secondary danger', 'aria-label': `Revoke ${t.name}`, onclick: async () => {
          const warning = t.id === state.me.tokenId ? ' It is the token you are signed in with: you will be signed out.' : '';
          if (!confirm(`Revoke ${t.name}? Whoever uses it is refused at once.${warning}`)) return;
          try {
            await api('DELETE', `/api/v1/tokens/${t.id}`);
            toast(`${t.name} revoked`);
            render();
          } catch (error) {
            toast(describeError(error));
          }
        } }, 'Revoke')),
      )))),
    apiForm({
      id: 'new-token', title: 'Issue a token', submit: 'Issue token',
      path: () => '/api/v1/tokens',
      body: () => ({ name: name.value.trim(), role: role.value }),
      done: (issued) => { render().then(() => showSecret(secretPanel(`Token ${issued.name} (${issued.role})`, issued.secret, ['Send it as "Authorization: Bearer <token>", or sign in here with it.']))); },
    }, field('What it is for', name), field('Role', role)),
  );
}

// ---------------------------------------------------------------- one cluster

async function clusterView(view, clusterId, isCurrent) {
  const [cluster, agents, packages, upgrades] = await Promise.all([
    api('GET', `/api/v1/clusters/${clusterId}`),
    api('GET', `/api/v1/clusters/${clusterId}/agents?limit=5000`),
    api('GET', `/api/v1/clusters/${clusterId}/packages`),
    api('GET', `/api/v1/clusters/${clusterId}/upgrades`),
  ]);
  const heading = (c) => h('h1', {}, `${c.name} `, h('span', { class: 'muted' }, `${c.product}, target ${c.targetVersion || 'none yet'}`));
  const parts = {
    heading: heading(cluster),
    agents: agentsTable(agents.items, agents.total),
    packages: packagesSection(clusterId, packages.items),
    upgrades: upgradesSection(upgrades.items),
  };
  view.append(
    h('p', {}, h('a', { href: '#/' }, '← Clusters')),
    parts.heading, parts.agents.section, parts.packages, parts.upgrades,
    can('operator') ? uploadForm(clusterId) : null,
    can('operator') ? newUpgradeForm(clusterId, agents.items, packages.items, cluster) : null,
    can('operator') ? registerAgentForm(clusterId) : null,
    can('admin') ? clusterSettings(cluster) : null,
  );
  if (!isCurrent()) return;

  const replace = (key, next) => { parts[key].replaceWith(next); parts[key] = next; };
  async function refreshAgents() {
    const page = await api('GET', `/api/v1/clusters/${clusterId}/agents?limit=5000`);
    const fresh = agentsTable(page.items, page.total);
    parts.agents.section.replaceWith(fresh.section);
    parts.agents = fresh;
  }
  async function refreshLists() {
    const [c, p, u] = await Promise.all([api('GET', `/api/v1/clusters/${clusterId}`), api('GET', `/api/v1/clusters/${clusterId}/packages`), api('GET', `/api/v1/clusters/${clusterId}/upgrades`)]);
    replace('heading', heading(c));
    replace('packages', packagesSection(clusterId, p.items));
    replace('upgrades', upgradesSection(u.items));
  }
  // A burst of events (an upgrade starting, many agents registering) reads each list once, at most
  // every half second; a failed read is retried by the next event or reconnection.
  const soon = (read) => {
    let timer = null;
    return () => (timer ??= setTimeout(() => { timer = null; read().catch(() => {}); }, 500));
  };
  const refreshAgentsSoon = soon(refreshAgents);
  const refreshListsSoon = soon(refreshLists);
  follow('cluster', clusterId, {
    // Opened live (not resuming): catch up with whatever changed between the first read and now.
    onOpen(resumed) { if (!resumed) { refreshAgentsSoon(); refreshListsSoon(); } },
    onEvent(e) {
      if (e.type === 'agent.status' && !parts.agents.update(e.data)) refreshAgentsSoon();
      if (e.type === 'upgrade.status' || e.type === 'package.status') refreshListsSoon();
    },
  });
}

/** The agents grouped by failover pair; update(data) redraws one agent's row from an agent.status event. */
function agentsTable(agents, total = agents.length) {
  const groups = new Map();
  for (const a of agents) {
    const key = a.failoverGroup ? `Failover pair ${a.failoverGroup}` : 'Standalone';
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(a);
  }
  const rows = [];
  const byId = new Map();
  // Pairs by name, then the standalone agents.
  const ordered = [...groups].sort(([a], [b]) => (a === 'Standalone') - (b === 'Standalone') || a.localeCompare(b));
  for (const [group, members] of ordered) {
    rows.push(h('tr', { class: 'group' }, h('td', { colspan: 7 }, group)));
    for (const a of members) {
      const row = agentRow(a);
      byId.set(a.id, { agent: a, row });
      rows.push(row);
    }
  }
  const section = h('section', { class: 'card', 'aria-labelledby': 'agents-title' },
    h('h2', { id: 'agents-title' }, `Agents (${total})`),
    total > agents.length ? h('p', { class: 'notice' }, `Showing the first ${agents.length} agents (by pair, role and name); the API lists them all (GET /api/v1/clusters/…/agents with offset).`) : null,
    agents.length === 0 ? h('p', { class: 'muted' }, 'No agent registered.') : h('table', {},
      h('thead', {}, h('tr', {}, ['Agent', 'Address', 'Role', 'State', 'Version', 'Auto-upgrade', ''].map((t, i) => h('th', { scope: 'col', class: i === 1 || i === 5 ? 'opt' : '' }, t)))),
      h('tbody', {}, rows)));
  function update(data) {
    const known = byId.get(data.agentId);
    // A new agent, a removed one or a new grouping: redraw the table.
    if (!known || data.removed || (data.failoverGroup ?? null) !== (known.agent.failoverGroup ?? null)) return false;
    const { agentId, ...fields } = data;
    const agent = { ...known.agent, ...fields };
    const row = agentRow(agent);
    // A keyboard user whose focus is in the row keeps it on the same control of the new row.
    const controls = (r) => [...r.querySelectorAll('button, input, a')];
    const focused = controls(known.row).indexOf(document.activeElement);
    known.row.replaceWith(row);
    if (focused >= 0) controls(row)[Math.min(focused, controls(row).length - 1)]?.focus();
    byId.set(agentId, { agent, row });
    return true;
  }
  return { section, update };
}

function agentRow(a) {
  const actions = [];
  if (a.versionStatus === 'failed' && can('operator')) {
    actions.push(h('button', { type: 'button', class: 'secondary', 'aria-label': `Retry ${a.name}`, onclick: () => retryFailed(a) }, 'Retry'));
    actions.push(upgradeNowButton(a));
  } else if (a.versionStatus === 'outdated' && can('operator') && !a.autoUpgrade) {
    actions.push(upgradeNowButton(a));
  }
  const auto = can('admin')
    ? h('label', { class: 'switch' }, h('input', { type: 'checkbox', checked: a.autoUpgrade, 'aria-label': `Auto-upgrade for ${a.name}`, onchange: async (e) => {
        try { await api('PUT', `/api/v1/agents/${a.id}/auto-upgrade`, { enabled: e.target.checked }); toast(`Auto-upgrade ${e.target.checked ? 'on' : 'off'} for ${a.name}`); }
        catch (error) { e.target.checked = !e.target.checked; toast(describeError(error)); }
      } }), ' auto')
    : (a.autoUpgrade ? 'on' : 'off');
  return h('tr', { class: a.state === 'terminating' ? 'terminating' : '', 'data-agent': a.name },
    h('th', { scope: 'row' }, a.name, a.failoverGroup && a.active ? h('span', { class: 'active-mark', title: 'active member' }, ' ● active') : null),
    h('td', { class: 'opt' }, a.address),
    h('td', {}, a.role),
    h('td', {}, badge(a.state)),
    h('td', {}, a.version || '—', ' ', badge(a.versionStatus, VERSION_LABEL[a.versionStatus])),
    h('td', { class: 'opt' }, auto),
    h('td', {}, actions, can('operator') ? manageAgent(a) : null),
  );
}

/** Less frequent actions on an agent, folded away: a new pairing key, removal. */
function manageAgent(agent) {
  return h('details', { class: 'manage' }, h('summary', { 'aria-label': `Manage ${agent.name}` }, 'Manage'),
    h('button', { type: 'button', class: 'secondary', onclick: async () => {
      if (!confirm(`Issue a new pairing key for ${agent.name}? Its current token stops working at once.`)) return;
      try {
        const pairing = await api('POST', `/api/v1/agents/${agent.id}/pairing-key`);
        showSecret(pairingPanel(agent.name, pairing));
      } catch (error) {
        toast(describeError(error));
      }
    } }, 'New pairing key'),
    h('button', { type: 'button', class: 'secondary danger', onclick: async () => {
      if (!confirm(`Remove ${agent.name}? It is removed at once if idle or offline, else when its work ends.`)) return;
      try {
        const result = await api('DELETE', `/api/v1/agents/${agent.id}`);
        toast(result.removed ? `${agent.name} removed` : `${agent.name} is terminating: it goes once idle`);
      } catch (error) {
        toast(describeError(error));
      }
    } }, 'Remove'));
}

function pairingPanel(name, pairing) {
  const server = location.origin;
  return secretPanel(`Pairing key for ${name}`, pairing.pairingKey, [
    `It pairs once, until ${new Date(pairing.pairingKeyExpiresAt).toLocaleString()}. Start the agent with it, for example the reference agent:`,
    h('pre', {}, h('code', {}, `npm run agent -- --server ${server} --pairing-key ${pairing.pairingKey} --home /var/lib/${name}`)),
  ]);
}

/** Admins: the defaults new upgrades start from, and deleting an empty cluster. */
function clusterSettings(cluster) {
  const policy = h('select', { id: 'settings-policy' }, ['simultaneous', 'backup-first', 'backup-first-switchback'].map((p) => h('option', { value: p, selected: p === cluster.defaultPolicy }, p)));
  const options = optionFields('settings', cluster.defaultOptions);
  const remove = h('button', { type: 'button', class: 'secondary danger', onclick: async () => {
    if (!confirm(`Delete cluster ${cluster.name}? Only an empty cluster can be deleted.`)) return;
    try {
      await api('DELETE', `/api/v1/clusters/${cluster.id}`);
      toast(`Cluster ${cluster.name} deleted`);
      location.hash = '#/';
    } catch (error) {
      toast(describeError(error));
    }
  } }, 'Delete cluster');
  return h('details', { class: 'card settings' }, h('summary', {}, 'Cluster settings'),
    apiForm({
      id: 'cluster-settings', title: 'Defaults for new upgrades', method: 'PATCH', submit: 'Save defaults',
      path: () => `/api/v1/clusters/${cluster.id}`,
      body: () => ({ defaultPolicy: policy.value, defaultOptions: options.read() }),
      done: () => { toast('Defaults saved'); render(); },
    }, field('Default failover policy', policy), h('fieldset', {}, h('legend', {}, 'Default options'), options.nodes)),
    h('div', { class: 'actions' }, remove));
}

function registerAgentForm(clusterId) {
  const name = h('input', { id: 'agent-name', type: 'text', required: true, placeholder: 'db-a1' });
  const address = h('input', { id: 'agent-address', type: 'text', required: true, placeholder: '10.0.4.17 or db-a1.lan' });
  const role = h('select', { id: 'agent-role' }, ['standalone', 'main', 'backup'].map((r) => h('option', { value: r }, r)));
  const group = h('input', { id: 'agent-group', type: 'text', placeholder: 'pair-a (for main and backup)' });
  return apiForm({
    id: 'register-agent', title: 'Register an agent', submit: 'Register',
    path: () => `/api/v1/clusters/${clusterId}/agents`,
    body: () => ({ name: name.value.trim(), address: address.value.trim(), role: role.value, ...(group.value.trim() ? { failoverGroup: group.value.trim() } : {}) }),
    done: (agent) => { showSecret(pairingPanel(agent.name, agent)); name.value = ''; address.value = ''; group.value = ''; },
  }, field('Agent name', name), field('Address', address), field('Role', role), field('Failover pair (main and backup share one)', group));
}

function upgradeNowButton(agent) {
  return h('button', { type: 'button', class: 'secondary', 'aria-label': `Upgrade ${agent.name} now`, onclick: () => act(`/api/v1/agents/${agent.id}/upgrade-now`, 'Upgrade started', (u) => `#/upgrades/${u.id}`) }, 'Upgrade now');
}

/** Retries the upgrade in which this agent failed: the newest one with a step for it. */
async function retryFailed(agent) {
  try {
    const { items } = await api('GET', `/api/v1/clusters/${agent.clusterId}/upgrades?agentId=${agent.id}&limit=1`);
    if (items.length === 0) return toast(`No upgrade of ${agent.name} is on record; use "Upgrade now".`);
    await act(`/api/v1/upgrades/${items[0].id}/retry`, `Retry of ${agent.name}'s upgrade started`, `#/upgrades/${items[0].id}`);
  } catch (error) {
    toast(describeError(error));
  }
}

async function act(path, done, next) {
  try {
    const result = await api('POST', path);
    toast(done);
    const target = typeof next === 'function' ? next(result) : next;
    if (target && location.hash !== target) location.hash = target;
    else render();
  } catch (error) {
    toast(describeError(error));
  }
}

function packagesSection(clusterId, packages) {
  return h('section', { class: 'card', 'aria-labelledby': 'packages-title' },
    h('h2', { id: 'packages-title' }, 'Packages'),
    packages.length === 0 ? h('p', { class: 'muted' }, 'No package uploaded.') : h('table', {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Version'), h('th', { scope: 'col' }, 'Kind'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col', class: 'opt' }, 'Uploaded'), h('th', { scope: 'col' }, 'Used by'))),
      h('tbody', {}, packages.map((p) => h('tr', { 'data-package': p.version },
        h('td', {}, p.version), h('td', {}, p.kind), h('td', {}, badge(p.status)),
        h('td', { class: 'opt' }, new Date(p.uploadedAt).toLocaleString()),
        h('td', {}, p.usedByUpgradeId ? h('a', { href: `#/upgrades/${p.usedByUpgradeId}` }, 'upgrade') : '—'))))));
}

function upgradesSection(upgrades) {
  return h('section', { class: 'card', 'aria-labelledby': 'upgrades-title' },
    h('h2', { id: 'upgrades-title' }, 'Upgrades'),
    upgrades.length === 0 ? h('p', { class: 'muted' }, 'No upgrade yet.') : h('table', {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Upgrade'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Progress'), h('th', { scope: 'col', class: 'opt' }, 'Policy'))),
      h('tbody', {}, upgrades.map((u) => h('tr', {},
        h('td', {}, h('a', { href: `#/upgrades/${u.id}` }, `to ${u.packageVersion}`), ' ', h('span', { class: 'muted' }, new Date(u.createdAt).toLocaleString())),
        h('td', {}, badge(u.status)), h('td', {}, `${u.percent}%`), h('td', { class: 'opt' }, u.resolvedPolicy))))));
}

function uploadForm(clusterId) {
  const file = h('input', { id: 'upload-file', type: 'file', accept: '.tar.gz,.tgz,application/gzip', required: true });
  const mode = h('select', { id: 'upload-mode' }, h('option', { value: 'upload-only' }, 'Upload only'), h('option', { value: 'install' }, 'Upload and upgrade every agent now'));
  const bar = h('progress', { id: 'upload-progress', max: 100, value: 0, hidden: true, 'aria-label': 'Upload progress' });
  const result = h('p', { id: 'upload-result', role: 'alert', class: 'error' });
  const form = h('form', { class: 'card', 'aria-labelledby': 'upload-title', onsubmit: (e) => {
    e.preventDefault();
    if (!file.files[0]) return;
    const body = new FormData();
    body.set('mode', mode.value);
    body.set('file', file.files[0]);
    // XMLHttpRequest, not fetch: it reports upload progress for large packages.
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/v1/clusters/${clusterId}/packages`);
    xhr.setRequestHeader('Authorization', `Bearer ${state.token}`);
    bar.hidden = false;
    bar.value = 0;
    result.textContent = '';
    xhr.upload.onprogress = (p) => p.lengthComputable && (bar.value = Math.floor((p.loaded / p.total) * 100));
    xhr.onerror = () => (result.textContent = 'The upload was cut off; try again.');
    xhr.onload = () => {
      let json = {};
      try { json = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 400) {
        result.textContent = describeError(new ApiError(xhr.status, json));
        return;
      }
      toast(json.upgrade ? `Package ${json.package.version} uploaded; its upgrade started` : `Package ${json.version} ${xhr.status === 200 ? 'was already uploaded' : 'uploaded'}`);
      if (json.upgrade) location.hash = `#/upgrades/${json.upgrade.id}`;
      else render();
    };
    xhr.send(body);
  } },
    h('h2', { id: 'upload-title' }, 'Upload a package'),
    h('label', { for: 'upload-file' }, 'Package (.tar.gz)'), file,
    h('label', { for: 'upload-mode' }, 'Mode'), mode,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Upload')),
    bar, result);
  return form;
}

/**
 * The upgrade options as form controls, starting at `defaults` (the cluster's): the common ones in
 * view, the rarer ones under "More options". read() gives the options object the API takes.
 */
function optionFields(prefix, defaults) {
  const text = (key, type = 'text') => h('input', { id: `${prefix}-${key}`, type, value: String(defaults[key]) });
  const flag = (key) => h('input', { id: `${prefix}-${key}`, type: 'checkbox', checked: Boolean(defaults[key]) });
  const common = [
    ['maxParallel', 'Units at once (count or %, 0 = all)', text('maxParallel')],
    ['failureThreshold', 'Failed units before no new one starts (0 = no limit)', text('failureThreshold')],
    ['canary', 'Canary units (then pause)', text('canary', 'number')],
  ];
  const flags = [
    ['waitForIdle', 'Wait for busy agents to be idle'],
    ['backup', 'Back up the agent\'s data before stopping it'],
    ['migrate', 'Run the package\'s data migration'],
    ['startAfterUpgrade', 'Start the product after the upgrade'],
    ['rebootAfter', 'Reboot the host afterwards'],
    ['switchBackOnFailure', 'A serving member whose upgrade failed takes back over'],
    ['allowLegacyPolicyOnMajor', 'Allow a backup-first policy on a major upgrade'],
  ].map(([key, label]) => [key, label, flag(key)]);
  const timeouts = [
    ['idleTimeoutS', 'Wait for a busy agent (seconds)'],
    ['offlineTimeoutS', 'Wait for an offline agent (seconds)'],
    ['phaseTimeoutS', 'Longest phase or switchover wait (seconds)'],
  ].map(([key, label]) => [key, label, text(key, 'number')]);
  const agentOptions = h('textarea', { id: `${prefix}-agentOptions`, rows: 2, placeholder: '{"stopSnmp": true, "delayedStartS": 30}' }, Object.keys(defaults.agentOptions || {}).length ? JSON.stringify(defaults.agentOptions) : '');
  const checkbox = ([, label, input]) => h('label', { for: input.id }, input, ` ${label}`);
  const countOrPercent = (v) => (/^\d+%$/.test(v.trim()) ? v.trim() : Number(v));
  return {
    nodes: [
      common.map(([, label, input]) => field(label, input)),
      checkbox(flags[0]),
      h('details', {}, h('summary', {}, 'More options'),
        flags.slice(1).map(checkbox),
        timeouts.map(([, label, input]) => field(label, input)),
        field('Options passed to the agent (JSON object)', agentOptions)),
    ],
    read: () => ({
      maxParallel: countOrPercent(common[0][2].value),
      failureThreshold: countOrPercent(common[1][2].value),
      canary: Number(common[2][2].value),
      ...Object.fromEntries(flags.map(([key, , input]) => [key, input.checked])),
      ...Object.fromEntries(timeouts.map(([key, , input]) => [key, Number(input.value)])),
      // What the box shows is what is sent: emptied, the agent gets no options.
      agentOptions: agentOptions.value.trim() ? parseAgentOptions(agentOptions.value) : {},
    }),
  };
}

/** The agent options box: a JSON object, refused in words before anything is sent. */
function parseAgentOptions(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`Options passed to the agent: not JSON (${error.message}). Write an object such as {"stopSnmp": true}.`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('Options passed to the agent: write a JSON object such as {"stopSnmp": true}.');
  return value;
}

function newUpgradeForm(clusterId, agents, packages, cluster) {
  const usable = packages.filter((p) => p.status === 'available');
  const pkg = h('select', { id: 'upgrade-package', required: true }, usable.map((p) => h('option', { value: p.id }, `${p.version} (${p.kind})`)));
  const targetAll = h('input', { type: 'radio', name: 'target', id: 'target-all', value: 'all', checked: true });
  const targetSome = h('input', { type: 'radio', name: 'target', id: 'target-some', value: 'some' });
  const picks = agents.map((a) => h('label', {}, h('input', { type: 'checkbox', value: a.id, 'data-pick': '' }), ` ${a.name} (${a.address})`));
  const addresses = h('input', { id: 'target-addresses', type: 'text', placeholder: '10.0.4.17, db-a2.lan' });
  const policy = h('select', { id: 'upgrade-policy' }, ['default', 'simultaneous', 'backup-first', 'backup-first-switchback'].map((p) => h('option', { value: p }, p === 'default' ? `default (${cluster.defaultPolicy})` : p)));
  const options = optionFields('opt', cluster.defaultOptions);
  const startAt = h('input', { id: 'upgrade-start-at', type: 'datetime-local' });
  const plan = h('div', { id: 'plan', 'aria-live': 'polite' });
  const start = h('button', { type: 'button', id: 'start-upgrade', disabled: true, onclick: async () => {
    try {
      const u = await api('POST', `/api/v1/clusters/${clusterId}/upgrades`, request());
      location.hash = `#/upgrades/${u.id}`;
    } catch (error) {
      plan.append(h('p', { class: 'error', role: 'alert' }, describeError(error)));
    }
  } }, 'Start upgrade');

  function request() {
    const some = targetSome.checked;
    const agentIds = picks.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
    const addr = addresses.value.split(/[\s,]+/).filter(Boolean);
    return {
      packageId: pkg.value,
      target: some ? { ...(agentIds.length ? { agentIds } : {}), ...(addr.length ? { addresses: addr } : {}) } : { all: true },
      policy: policy.value,
      options: options.read(),
      // datetime-local is the viewer's local time; the API wants an instant.
      ...(startAt.value ? { scheduledAt: new Date(startAt.value).toISOString() } : {}),
    };
  }

  async function preview() {
    plan.replaceChildren();
    start.disabled = true;
    try {
      const p = await api('POST', `/api/v1/clusters/${clusterId}/upgrades/preview`, request());
      const name = new Map(agents.map((a) => [a.id, a.name]));
      const batches = new Map();
      for (const s of p.steps) {
        if (!batches.has(s.batch)) batches.set(s.batch, []);
        batches.get(s.batch).push(s);
      }
      plan.append(h('h3', {}, `Plan: ${p.resolvedPolicy}, ${p.units} unit(s) in ${p.batches} batch(es)`));
      for (const [batch, steps] of [...batches].sort((a, b) => a[0] - b[0])) {
        plan.append(h('div', { class: 'batch' }, h('h3', {}, `Batch ${batch + 1}`), h('ol', {}, steps.map((s) =>
          h('li', {}, `${s.kind} ${name.get(s.agentId) || s.agentId}`, s.dependsOn.length ? h('span', { class: 'muted' }, ` after ${s.dependsOn.map((d) => d.replace(/^(\w+):(.*)$/, (_, k, who) => `${k} ${name.get(who) || who}`)).join(', ')}`) : null, s.status !== 'pending' ? ` — ${s.status}` : '', s.note ? h('span', { class: 'muted' }, ` (${s.note})`) : null)))));
      }
      for (const w of p.warnings) plan.append(h('p', { class: 'notice' }, `Warning: ${w.message}`));
      for (const r of p.refusals) plan.append(h('p', { class: 'notice refusal', role: 'alert' }, `Refused: ${r.message}`));
      for (const f of p.prerequisites.failures) plan.append(h('p', { class: 'notice refusal' }, `${f.agentName}: ${f.check} requires ${f.required}, it has ${f.actual}`));
      start.disabled = p.refusals.length > 0;
    } catch (error) {
      plan.append(h('p', { class: 'error', role: 'alert' }, describeError(error)));
    }
  }

  return h('form', { class: 'card', id: 'new-upgrade', 'aria-labelledby': 'new-upgrade-title', onsubmit: (e) => { e.preventDefault(); preview(); } },
    h('h2', { id: 'new-upgrade-title' }, 'New upgrade'),
    usable.length === 0 ? h('p', { class: 'muted' }, 'Upload a package first: only an available package can start an upgrade.') : [
      h('label', { for: 'upgrade-package' }, 'Package'), pkg,
      h('fieldset', {}, h('legend', {}, 'Target'),
        h('label', { for: 'target-all' }, targetAll, ' Every agent of the cluster'),
        h('label', { for: 'target-some' }, targetSome, ' Chosen agents'),
        h('div', { role: 'group', 'aria-label': 'Agents to upgrade' }, picks),
        h('label', { for: 'target-addresses' }, 'Add agents by address'), addresses),
      h('label', { for: 'upgrade-policy' }, 'Failover policy'), policy,
      h('fieldset', {}, h('legend', {}, 'Options'), options.nodes),
      h('label', { for: 'upgrade-start-at' }, 'Start at (your local time; empty = now)'), startAt,
      h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'preview-upgrade', class: 'secondary' }, 'Preview plan'), start),
      plan,
    ]);
}

// ---------------------------------------------------------------- one upgrade, live

function closeStream() {
  if (state.stream) state.stream.close();
  state.stream = null;
}

async function upgradeView(view, upgradeId, isCurrent) {
  const upgrade = await api('GET', `/api/v1/upgrades/${upgradeId}`);
  const agents = await api('GET', `/api/v1/clusters/${upgrade.clusterId}/agents?limit=5000`);
  const name = new Map(agents.items.map((a) => [a.id, a.name]));
  const rows = new Map();
  const status = h('span', { id: 'upgrade-status' });
  const overall = h('progress', { id: 'upgrade-progress', max: 100, value: upgrade.percent, 'aria-label': 'Upgrade progress' });
  const reason = h('p', { class: 'muted', id: 'upgrade-reason' });
  const buttons = h('div', { class: 'actions' });
  const log = h('div', { class: 'events', id: 'events', tabindex: 0, 'aria-label': 'Event history' });

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
    h('p', { class: 'muted' }, `${upgrade.resolvedPolicy}, ${upgrade.units} unit(s)`, upgrade.scheduledAt ? `, scheduled for ${new Date(upgrade.scheduledAt).toLocaleString()}` : ''),
    upgrade.warnings.map((w) => h('p', { class: 'notice' }, w.message)),
    buttons,
    h('section', { 'aria-labelledby': 'steps-title', 'aria-live': 'polite' }, h('h2', { id: 'steps-title' }, 'Plan and progress'),
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
      log.append(h('div', {}, `#${e.id} ${new Date(e.createdAt).toLocaleTimeString()} ${line}`));
      log.scrollTop = log.scrollHeight;
    },
  });
}

/**
 * Follows a stream ('upgrade' or 'cluster'). EventSource cannot send a token, so each connection
 * uses a fresh single-use stream ticket; after a drop it asks for another and resumes after the
 * last event received, so nothing is lost or shown twice. An upgrade's stream starts from its first
 * event (its history); a cluster's starts live, and onOpen(false) lets the page read what it shows
 * again rather than replay the cluster's whole log.
 */
function follow(kind, id, handlers) {
  let lastId = 0;
  let closed = false;
  let source = null;
  let retryMs = 500;
  const stream = { close: () => { closed = true; if (source) source.close(); } };
  state.stream = stream;
  async function open() {
    if (closed || state.stream !== stream) return;
    try {
      const ticket = await api('POST', '/api/v1/stream-tickets', { stream: kind, id });
      if (closed) return;
      const resumed = lastId > 0 || kind === 'upgrade';
      source = new EventSource(resumed ? `${ticket.url}&lastEventId=${lastId}` : ticket.url);
      source.onopen = () => handlers.onOpen && handlers.onOpen(resumed);
      for (const type of ['upgrade.status', 'task.progress', 'pair.switchover', 'agent.status', 'package.status']) {
        source.addEventListener(type, (m) => {
          const eventId = Number(m.lastEventId);
          if (eventId <= lastId) return;
          lastId = eventId;
          retryMs = 500;
          const event = JSON.parse(m.data);
          handlers.onEvent({ id: eventId, type, createdAt: event.createdAt, data: event.data });
        });
      }
      source.addEventListener('reset', () => { stream.close(); render(); });
      source.onerror = () => {
        source.close();
        if (!closed) setTimeout(open, retryMs);
        retryMs = Math.min(retryMs * 2, 10_000);
      };
    } catch {
      if (!closed) setTimeout(open, (retryMs = Math.min(retryMs * 2, 10_000)));
    }
  }
  open();
}

render();
