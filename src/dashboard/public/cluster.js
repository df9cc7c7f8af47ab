// One cluster: its agents (live), packages and upgrades, upload, and the forms that act on it.
import { commandHistories } from './commands.js';
import {
  act,
  api,
  ApiError,
  apiForm,
  badge,
  can,
  describeError,
  download,
  field,
  h,
  labelsText,
  localDateTime,
  windowsText,
  parseLabels,
  POLICIES,
  redraw,
  secretPanel,
  showSecret,
  state,
  toast,
  VERSION_LABEL,
} from './lib.js';
import { follow } from './stream.js';
import { newUpgradeForm, optionFields } from './upgrade-form.js';

export async function clusterView(view, clusterId, isCurrent) {
  const [cluster, agents, packages, upgrades] = await Promise.all([
    api('GET', `/api/v1/clusters/${clusterId}`),
    api('GET', `/api/v1/clusters/${clusterId}/agents?limit=5000`),
    api('GET', `/api/v1/clusters/${clusterId}/packages`),
    api('GET', `/api/v1/clusters/${clusterId}/upgrades`),
  ]);
  // What the agent rows read besides the agent: the cluster's targets as last read, and what is open
  // in them (command histories, reasons, Manage), kept when a row is drawn again.
  const rowContext = { cluster, histories: commandHistories(isCurrent, COLUMNS), opened: new Set() };
  const heading = (c) =>
    h(
      'h1',
      {},
      `${c.name} `,
      h(
        'span',
        { class: 'muted' },
        `${c.product}, target ${c.targetVersion || 'none yet'}`,
        c.webappsTargetVersion ? `, web apps target ${c.webappsTargetVersion}` : '',
        c.windows?.length ? `, maintenance windows ${windowsText(c.windows)}` : '',
      ),
    );
  const parts = {
    heading: heading(cluster),
    agents: agentsTable(agents.items, agents.total, rowContext),
    packages: packagesSection(clusterId, packages.items),
    upgrades: upgradesSection(upgrades.items),
  };
  view.append(
    h('p', {}, h('a', { href: '#/' }, '← Clusters')),
    parts.heading,
    parts.agents.section,
    parts.packages,
    parts.upgrades,
    can('operator') ? uploadForm(clusterId) : null,
    can('operator') ? newUpgradeForm(clusterId, agents.items, packages.items, cluster) : null,
    can('operator') ? registerAgentForm(clusterId) : null,
    can('admin') ? clusterSettings(cluster) : null,
  );
  if (!isCurrent()) return;

  const replace = (key, next) => {
    parts[key].replaceWith(next);
    parts[key] = next;
  };
  async function refreshAgents() {
    const listed = await api('GET', `/api/v1/clusters/${clusterId}/agents?limit=5000`);
    const fresh = agentsTable(listed.items, listed.total, rowContext);
    parts.agents.section.replaceWith(fresh.section);
    parts.agents = fresh;
  }
  async function refreshLists() {
    const [c, p, u] = await Promise.all([
      api('GET', `/api/v1/clusters/${clusterId}`),
      api('GET', `/api/v1/clusters/${clusterId}/packages`),
      api('GET', `/api/v1/clusters/${clusterId}/upgrades`),
    ]);
    // New targets change what a legacy agent's row offers to download.
    const targetsMoved =
      c.targetPackageId !== rowContext.cluster.targetPackageId ||
      c.webappsTargetPackageId !== rowContext.cluster.webappsTargetPackageId;
    rowContext.cluster = c;
    if (targetsMoved) refreshAgentsSoon();
    replace('heading', heading(c));
    replace('packages', packagesSection(clusterId, p.items));
    replace('upgrades', upgradesSection(u.items));
  }
  // A burst of events (an upgrade starting, many agents registering) reads each list once, at most
  // every half second, while this view is still shown; a failed read is retried by the next event
  // or reconnection.
  const soon = (read) => {
    let timer = null;
    return () =>
      (timer ??= setTimeout(() => {
        timer = null;
        if (isCurrent()) read().catch(() => {});
      }, 500));
  };
  const refreshAgentsSoon = soon(refreshAgents);
  const refreshListsSoon = soon(refreshLists);
  // What each event type (lib.js EVENT_TYPES) changes on this page; pair.switchover comes with agent.status events.
  const onEventOfType = {
    'agent.status': (agent) => parts.agents.update(agent) || refreshAgentsSoon(),
    'upgrade.status': refreshListsSoon,
    'package.status': refreshListsSoon,
    'command.status': (command) => rowContext.histories.ended(command),
    'task.progress': (step) => rowContext.histories.touched(step.agentId),
  };
  follow('cluster', clusterId, {
    // Opened live (not resuming): catch up with whatever changed between the first read and now.
    onOpen(resumed) {
      if (!resumed) {
        refreshAgentsSoon();
        refreshListsSoon();
      }
    },
    onEvent(e) {
      onEventOfType[e.type]?.(e.data);
    },
  });
}

/** The agents table's columns: Agent, Address, Role, State, Version, Auto-upgrade, actions. */
const COLUMNS = 7;

/** The agents grouped by failover pair; update(agent) redraws one agent's row from an agent.status event. */
function agentsTable(agents, total, ctx) {
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
    rows.push(h('tr', { class: 'group' }, h('td', { colspan: COLUMNS }, group)));
    for (const a of members) {
      const row = agentRow(a, ctx);
      byId.set(a.id, { agent: a, row });
      rows.push(row, ctx.histories.panel(a));
    }
  }
  ctx.histories.keepOnly(new Set(byId.keys()));
  const section = h(
    'section',
    { class: 'card', 'aria-labelledby': 'agents-title' },
    h('h2', { id: 'agents-title' }, `Agents (${total})`),
    total > agents.length
      ? h(
          'p',
          { class: 'notice' },
          `Showing the first ${agents.length} agents (by pair, role and name); the API lists them all (GET /api/v1/clusters/…/agents with offset).`,
        )
      : null,
    agents.length === 0
      ? h('p', { class: 'muted' }, 'No agent registered.')
      : h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Agent', 'Address', 'Role', 'State', 'Version', 'Auto-upgrade', ''].map((t, i) =>
                h('th', { scope: 'col', class: i === 1 || i === 5 ? 'opt' : '' }, t),
              ),
            ),
          ),
          h('tbody', {}, rows),
        ),
  );
  /** `agent` is an agent.status event's data: the agent as the API lists it (AgentDto). */
  function update(agent) {
    const known = byId.get(agent.id);
    // A new agent, a removed one or a new grouping: redraw the table.
    if (!known || agent.removed || (agent.failoverGroup ?? null) !== (known.agent.failoverGroup ?? null)) return false;
    const row = agentRow(agent, ctx);
    // A keyboard user whose focus is in the row keeps it on the same control of the new row.
    const controls = (r) => [...r.querySelectorAll('button, input, a, summary')];
    const focused = controls(known.row).indexOf(document.activeElement);
    known.row.replaceWith(row);
    if (focused >= 0) controls(row)[Math.min(focused, controls(row).length - 1)]?.focus();
    byId.set(agent.id, { agent, row });
    return true;
  }
  return { section, update };
}

/** Why a legacy agent has no auto-upgrade nor "Upgrade now". */
const LEGACY = 'legacy agent: cannot upgrade remotely; reinstall it by hand';

/** One agent's row: name, address, role, state, version, auto-upgrade, and what can be done with it. */
function agentRow(a, ctx) {
  const legacy = a.remoteUpgrade === false;
  const whyId = `why-${a.id}`;
  const downloads = legacy && can('operator') ? packagesToInstall(a, ctx.cluster) : [];
  return h(
    'tr',
    { class: a.state === 'terminating' ? 'terminating' : '', 'data-agent': a.name },
    h(
      'th',
      { scope: 'row' },
      a.name,
      a.failoverGroup && a.active ? h('span', { class: 'active-mark', title: 'active member' }, ' ● active') : null,
      labelChips(a.labels),
    ),
    h('td', { class: 'opt' }, a.address),
    h('td', {}, a.role),
    h('td', {}, badge(a.state)),
    versionCell(a, ctx, legacy ? { whyId, downloads } : null),
    h('td', { class: 'opt' }, autoUpgradeCell(a, legacy, whyId)),
    h(
      'td',
      {},
      agentActions(a, legacy, downloads, whyId),
      ctx.histories.toggle(a),
      can('operator') ? manageAgent(a, ctx.opened) : null,
    ),
  );
}

/** Version, its status, the web apps; for a legacy agent why it has no remote upgrade (`legacy`: its id and packages). */
function versionCell(a, ctx, legacy) {
  return h(
    'td',
    {},
    a.version || '—',
    ' ',
    badge(a.versionStatus, VERSION_LABEL[a.versionStatus]),
    a.webappsVersion ? h('span', { class: 'muted' }, ` web apps ${a.webappsVersion}`) : null,
    legacy ? legacyWhy(a, legacy.whyId, legacy.downloads) : null,
    a.autoUpgradeBlocked ? heldReason(a, ctx.opened) : null,
  );
}

/** Why a legacy agent is not upgraded remotely, and what to install on it by hand. */
function legacyWhy(a, whyId, downloads) {
  return h(
    'div',
    { class: 'why', id: whyId },
    LEGACY,
    downloads.length
      ? h(
          'span',
          { class: 'muted' },
          ` (install ${downloads.map((p) => p.version).join(' and ')} on ${a.address}, then pair it again with a new pairing key)`,
        )
      : null,
  );
}

/** What an operator can do about the agent's version: download for a legacy agent, retry a failed one, upgrade one left behind. */
function agentActions(a, legacy, downloads, whyId) {
  if (legacy) return downloads.map((p) => downloadButton(a, p, whyId));
  if (!can('operator')) return [];
  if (a.versionStatus === 'failed') {
    return [
      h(
        'button',
        { type: 'button', class: 'secondary', 'aria-label': `Retry ${a.name}`, onclick: () => retryFailed(a) },
        'Retry',
      ),
      upgradeNowButton(a),
    ];
  }
  // Auto-upgrade is off, or holds this agent until someone acts: the operator can.
  if (a.versionStatus === 'outdated' && (!a.autoUpgrade || a.autoUpgradeBlocked)) return [upgradeNowButton(a)];
  return [];
}

/** The auto-upgrade switch for an admin (off and explained for a legacy agent); on or off in words for others. */
function autoUpgradeCell(a, legacy, whyId) {
  if (!can('admin')) return a.autoUpgrade ? 'on' : 'off';
  return h(
    'label',
    { class: 'switch' },
    h('input', {
      type: 'checkbox',
      checked: a.autoUpgrade,
      disabled: legacy,
      'aria-label': `Auto-upgrade for ${a.name}`,
      'aria-describedby': legacy ? whyId : null,
      onchange: async (e) => {
        try {
          await api('PUT', `/api/v1/agents/${a.id}/auto-upgrade`, { enabled: e.target.checked });
          toast(`Auto-upgrade ${e.target.checked ? 'on' : 'off'} for ${a.name}`);
        } catch (error) {
          e.target.checked = !e.target.checked;
          toast(describeError(error));
        }
      },
    }),
    ' auto',
  );
}

/** A <details> of an agent's row that stays open (or closed) when a live update draws the row again. */
function remembered(opened, key) {
  return { open: opened.has(key), ontoggle: (e) => (e.currentTarget.open ? opened.add(key) : opened.delete(key)) };
}

/** Why auto-upgrade leaves the agent alone for now: short in the row, the whole reason when opened. */
function heldReason(a, opened) {
  const short = a.autoUpgradeRetryAt
    ? `auto-upgrade held until ${localDateTime(a.autoUpgradeRetryAt)}`
    : 'auto-upgrade held';
  return h(
    'details',
    { class: 'why held', ...remembered(opened, `held:${a.id}`) },
    h('summary', { title: a.autoUpgradeBlocked }, short),
    h('p', {}, a.autoUpgradeBlocked),
  );
}

/** The cluster's target packages a legacy agent is not on yet: it is installed by hand. */
function packagesToInstall(a, cluster) {
  const wanted = [];
  if (
    cluster.targetPackageId &&
    cluster.targetVersion &&
    a.version !== cluster.targetVersion &&
    a.versionStatus !== 'ahead'
  ) {
    wanted.push({
      id: cluster.targetPackageId,
      version: cluster.targetVersion,
      label: 'Download package',
      file: `${cluster.product}-${cluster.targetVersion}.tar.gz`,
    });
  }
  if (
    cluster.webappsTargetPackageId &&
    cluster.webappsTargetVersion &&
    a.webappsVersion !== cluster.webappsTargetVersion
  ) {
    wanted.push({
      id: cluster.webappsTargetPackageId,
      version: cluster.webappsTargetVersion,
      label: 'Download web-apps package',
      file: `${cluster.product}-webapps-${cluster.webappsTargetVersion}.tar.gz`,
    });
  }
  return wanted;
}

function downloadButton(agent, pkg, whyId) {
  let busy = false;
  return h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      'aria-label': `${pkg.label} ${pkg.version} for ${agent.name}`,
      'aria-describedby': whyId,
      onclick: async () => {
        if (busy) return;
        busy = true;
        toast(`Downloading package ${pkg.version}…`);
        try {
          await download(`/api/v1/packages/${pkg.id}/content`, pkg.file);
          toast(
            `Package ${pkg.version} saved: install it on ${agent.address} by hand, then pair ${agent.name} again with a new pairing key (under Manage).`,
          );
        } catch (error) {
          toast(describeError(error));
        } finally {
          busy = false;
        }
      },
    },
    pkg.label,
  );
}

/** An agent's labels under its name, one chip each ("site=eu-1"); nothing when it has none. */
function labelChips(labels) {
  const entries = Object.entries(labels || {});
  if (entries.length === 0) return null;
  return h(
    'span',
    { class: 'labels', title: `Labels: ${labelsText(labels)}` },
    entries.map(([key, value]) => h('span', { class: 'label-chip' }, `${key}=${value}`)),
  );
}

/** The agent's labels in a box, saved with PATCH: what the box holds replaces all of them (empty removes them). */
function labelsEditor(agent) {
  const input = h('input', {
    id: `labels-${agent.id}`,
    type: 'text',
    value: labelsText(agent.labels),
    placeholder: 'site=eu-1, tier=db',
    'aria-label': `Labels of ${agent.name}`,
  });
  const save = async () => {
    try {
      const labels = parseLabels(`Labels of ${agent.name}`, input.value);
      await api('PATCH', `/api/v1/agents/${agent.id}`, { labels });
      toast(`Labels of ${agent.name} saved`);
    } catch (error) {
      toast(describeError(error));
    }
  };
  return h(
    'div',
    { class: 'labels-editor' },
    input,
    h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        onclick: save,
      },
      'Save labels',
    ),
  );
}

/** Less frequent actions on an agent, folded away: its labels, a new pairing key, removal. */
function manageAgent(agent, opened) {
  return h(
    'details',
    { class: 'manage', ...remembered(opened, `manage:${agent.id}`) },
    h('summary', { 'aria-label': `Manage ${agent.name}` }, 'Manage'),
    labelsEditor(agent),
    h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        onclick: async () => {
          if (!confirm(`Issue a new pairing key for ${agent.name}? Its current token stops working at once.`)) return;
          try {
            const pairing = await api('POST', `/api/v1/agents/${agent.id}/pairing-key`);
            showSecret(pairingPanel(agent.name, pairing));
          } catch (error) {
            toast(describeError(error));
          }
        },
      },
      'New pairing key',
    ),
    h(
      'button',
      {
        type: 'button',
        class: 'secondary danger',
        onclick: async () => {
          if (!confirm(`Remove ${agent.name}? It is removed at once if idle or offline, else when its work ends.`))
            return;
          try {
            const result = await api('DELETE', `/api/v1/agents/${agent.id}`);
            toast(result.removed ? `${agent.name} removed` : `${agent.name} is terminating: it goes once idle`);
          } catch (error) {
            toast(describeError(error));
          }
        },
      },
      'Remove',
    ),
  );
}

function pairingPanel(name, pairing) {
  const server = location.origin;
  return secretPanel(`Pairing key for ${name}`, pairing.pairingKey, [
    `It pairs once, until ${localDateTime(pairing.pairingKeyExpiresAt)}. Start the agent with it, for example the reference agent:`,
    h(
      'pre',
      {},
      h('code', {}, `npm run agent -- --server ${server} --pairing-key ${pairing.pairingKey} --home /var/lib/${name}`),
    ),
  ]);
}

/** Admins: the defaults new upgrades start from, and deleting an empty cluster. */
function clusterSettings(cluster) {
  const policy = h(
    'select',
    { id: 'settings-policy' },
    POLICIES.map((p) => h('option', { value: p, selected: p === cluster.defaultPolicy }, p)),
  );
  const options = optionFields('settings', cluster.defaultOptions);
  const remove = h(
    'button',
    {
      type: 'button',
      class: 'secondary danger',
      onclick: async () => {
        if (!confirm(`Delete cluster ${cluster.name}? Only an empty cluster can be deleted.`)) return;
        try {
          await api('DELETE', `/api/v1/clusters/${cluster.id}`);
          toast(`Cluster ${cluster.name} deleted`);
          location.hash = '#/';
        } catch (error) {
          toast(describeError(error));
        }
      },
    },
    'Delete cluster',
  );
  return h(
    'details',
    { class: 'card settings' },
    h('summary', {}, 'Cluster settings'),
    apiForm(
      {
        id: 'cluster-settings',
        title: 'Defaults for new upgrades',
        method: 'PATCH',
        submit: 'Save defaults',
        path: () => `/api/v1/clusters/${cluster.id}`,
        body: () => ({ defaultPolicy: policy.value, defaultOptions: options.read() }),
        done: () => {
          toast('Defaults saved');
          redraw();
        },
      },
      field('Default failover policy', policy),
      h('fieldset', {}, h('legend', {}, 'Default options'), options.nodes),
    ),
    h('div', { class: 'actions' }, remove),
  );
}

const AGENT_LABELS = 'Labels (key=value, separated by commas or spaces)';

function registerAgentForm(clusterId) {
  const name = h('input', { id: 'agent-name', type: 'text', required: true, placeholder: 'db-a1' });
  const address = h('input', {
    id: 'agent-address',
    type: 'text',
    required: true,
    placeholder: '10.0.4.17 or db-a1.lan',
  });
  const role = h(
    'select',
    { id: 'agent-role' },
    ['standalone', 'main', 'backup'].map((r) => h('option', { value: r }, r)),
  );
  const group = h('input', { id: 'agent-group', type: 'text', placeholder: 'pair-a (for main and backup)' });
  const labels = h('input', { id: 'agent-labels', type: 'text', placeholder: 'site=eu-1, tier=db' });
  return apiForm(
    {
      id: 'register-agent',
      title: 'Register an agent',
      submit: 'Register',
      path: () => `/api/v1/clusters/${clusterId}/agents`,
      body: () => ({
        name: name.value.trim(),
        address: address.value.trim(),
        role: role.value,
        ...(group.value.trim() ? { failoverGroup: group.value.trim() } : {}),
        ...(labels.value.trim() ? { labels: parseLabels(AGENT_LABELS, labels.value) } : {}),
      }),
      done: (agent) => {
        showSecret(pairingPanel(agent.name, agent));
        name.value = '';
        address.value = '';
        group.value = '';
        labels.value = '';
      },
    },
    field('Agent name', name),
    field('Address', address),
    field('Role', role),
    field('Failover pair (main and backup share one)', group),
    field(AGENT_LABELS, labels),
  );
}

function upgradeNowButton(agent) {
  return h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      'aria-label': `Upgrade ${agent.name} now`,
      onclick: () => act(`/api/v1/agents/${agent.id}/upgrade-now`, 'Upgrade started', (u) => `#/upgrades/${u.id}`),
    },
    'Upgrade now',
  );
}

/** Retries the upgrade in which this agent failed: the newest one with a step for it. */
async function retryFailed(agent) {
  try {
    const { items } = await api('GET', `/api/v1/clusters/${agent.clusterId}/upgrades?agentId=${agent.id}&limit=1`);
    if (items.length === 0) return toast(`No upgrade of ${agent.name} is on record; use "Upgrade now".`);
    await act(
      `/api/v1/upgrades/${items[0].id}/retry`,
      `Retry of ${agent.name}'s upgrade started`,
      `#/upgrades/${items[0].id}`,
    );
  } catch (error) {
    toast(describeError(error));
  }
}

function packagesSection(clusterId, packages) {
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'packages-title' },
    h('h2', { id: 'packages-title' }, 'Packages'),
    packages.length === 0
      ? h('p', { class: 'muted' }, 'No package uploaded.')
      : h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'Version'),
              h('th', { scope: 'col' }, 'Kind'),
              h('th', { scope: 'col' }, 'Status'),
              h('th', { scope: 'col', class: 'opt' }, 'Uploaded'),
              h('th', { scope: 'col' }, 'Used by'),
            ),
          ),
          h(
            'tbody',
            {},
            packages.map((p) =>
              h(
                'tr',
                { 'data-package': p.version },
                h('td', {}, p.version),
                h('td', {}, p.kind),
                h('td', {}, badge(p.status)),
                h(
                  'td',
                  { class: 'opt' },
                  localDateTime(p.uploadedAt),
                  p.uploadedBy
                    ? h('span', { class: 'muted' }, ` by ${p.uploadedBy.name ?? p.uploadedBy.tokenId}`)
                    : null,
                ),
                h('td', {}, p.usedByUpgradeId ? h('a', { href: `#/upgrades/${p.usedByUpgradeId}` }, 'upgrade') : '—'),
              ),
            ),
          ),
        ),
  );
}

function upgradesSection(upgrades) {
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'upgrades-title' },
    h('h2', { id: 'upgrades-title' }, 'Upgrades'),
    upgrades.length === 0
      ? h('p', { class: 'muted' }, 'No upgrade yet.')
      : h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'Upgrade'),
              h('th', { scope: 'col' }, 'Status'),
              h('th', { scope: 'col' }, 'Progress'),
              h('th', { scope: 'col', class: 'opt' }, 'Policy'),
            ),
          ),
          h(
            'tbody',
            {},
            upgrades.map((u) =>
              h(
                'tr',
                {},
                h(
                  'td',
                  {},
                  h('a', { href: `#/upgrades/${u.id}` }, `to ${u.packageVersion}`),
                  ' ',
                  h('span', { class: 'muted' }, localDateTime(u.createdAt)),
                ),
                h('td', {}, badge(u.status)),
                h('td', {}, `${u.percent}%`),
                h('td', { class: 'opt' }, u.resolvedPolicy),
              ),
            ),
          ),
        ),
  );
}

function uploadForm(clusterId) {
  const file = h('input', { id: 'upload-file', type: 'file', accept: '.tar.gz,.tgz,application/gzip', required: true });
  const mode = h(
    'select',
    { id: 'upload-mode' },
    h('option', { value: 'upload-only' }, 'Upload only'),
    h('option', { value: 'install' }, 'Upload and upgrade every agent now'),
  );
  const bar = h('progress', {
    id: 'upload-progress',
    max: 100,
    value: 0,
    hidden: true,
    'aria-label': 'Upload progress',
  });
  const result = h('p', { id: 'upload-result', role: 'alert', class: 'error' });
  const form = h(
    'form',
    {
      class: 'card',
      'aria-labelledby': 'upload-title',
      onsubmit: (e) => {
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
          try {
            json = JSON.parse(xhr.responseText);
          } catch {
            /* not JSON */
          }
          if (xhr.status >= 400) {
            result.textContent = describeError(new ApiError(xhr.status, json));
            return;
          }
          toast(
            json.upgrade
              ? `Package ${json.package.version} uploaded; its upgrade started`
              : `Package ${json.version} ${xhr.status === 200 ? 'was already uploaded' : 'uploaded'}`,
          );
          if (json.upgrade) location.hash = `#/upgrades/${json.upgrade.id}`;
          else redraw();
        };
        xhr.send(body);
      },
    },
    h('h2', { id: 'upload-title' }, 'Upload a package'),
    h('label', { for: 'upload-file' }, 'Package (.tar.gz)'),
    file,
    h('label', { for: 'upload-mode' }, 'Mode'),
    mode,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Upload')),
    bar,
    result,
  );
  return form;
}
