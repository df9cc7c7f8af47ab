// The new-upgrade form and the option controls it shares with the cluster settings.
import { api, describeError, field, h, localDateTime, parseLabels, POLICIES } from './lib.js';

/**
 * The upgrade options as form controls, starting at `defaults` (the cluster's): the common ones in
 * view, the rarer ones under "More options". read() gives the options object the API takes, or
 * throws, in words naming the field, for what the API would refuse.
 */
export function optionFields(prefix, defaults) {
  const text = (key, type = 'text') => h('input', { id: `${prefix}-${key}`, type, value: String(defaults[key]) });
  const flag = (key) => h('input', { id: `${prefix}-${key}`, type: 'checkbox', checked: Boolean(defaults[key]) });
  // A control's description: a hint under it, read out with the control (aria-describedby).
  const hint = (key, words) => h('p', { class: 'hint', id: `${prefix}-${key}-hint` }, words);
  const described = (input, key) => {
    input.setAttribute('aria-describedby', `${prefix}-${key}-hint`);
    return input;
  };
  const common = [
    ['maxParallel', 'Units at once (count or %, 0 = all)', text('maxParallel')],
    ['failureThreshold', 'Failed units before no new one starts (0 = no limit)', text('failureThreshold')],
    ['canary', 'Canary units (then pause)', text('canary', 'number')],
  ];
  const flags = [
    ['waitForIdle', 'Wait for busy agents to be idle'],
    ['backup', "Back up the agent's data before stopping it"],
    ['migrate', "Run the package's data migration"],
    ['startAfterUpgrade', 'Start the product after the upgrade'],
    ['rebootAfter', 'Reboot the host afterwards'],
    ['switchBackOnFailure', 'A serving member whose upgrade failed takes back over'],
    ['allowLegacyPolicyOnMajor', 'Allow a backup-first policy on a major upgrade'],
    ['respectWindows', "Start units only inside their agents' maintenance windows"],
  ].map(([key, label]) => [key, label, flag(key)]);
  // The operator's overrides, each with what it means.
  const overrides = [
    [
      'ignoreVersionCheck',
      "Ignore the package's fromVersion prerequisite",
      'Agents on a version the package does not start from are upgraded anyway; the plan and the upgrade carry a warning.',
    ],
    [
      'allowDowngrade',
      'Allow a downgrade (a package older than what an agent runs)',
      "Without it such a plan is refused; with it, planned with a warning. The agents' data must suit the older version.",
    ],
  ].map(([key, label, words]) => [key, label, described(flag(key), key), hint(key, words)]);
  const timeouts = [
    ['idleTimeoutS', 'Wait for a busy agent (seconds)'],
    ['offlineTimeoutS', 'Wait for an offline agent (seconds)'],
    ['phaseTimeoutS', 'Longest phase or switchover wait (seconds)'],
  ].map(([key, label]) => [key, label, text(key, 'number')]);
  const delayedStart = described(
    h('input', { id: `${prefix}-delayedStartS`, type: 'number', value: String(defaults.delayedStartS ?? 0) }),
    'delayedStartS',
  );
  const stopServices = described(
    h('input', {
      id: `${prefix}-stopServices`,
      type: 'text',
      placeholder: 'snmpd, cron',
      value: (defaults.stopServices || []).join(', '),
    }),
    'stopServices',
  );
  const agentOptions = h(
    'textarea',
    { id: `${prefix}-agentOptions`, rows: 2, placeholder: '{"stopSnmp": true}' },
    Object.keys(defaults.agentOptions || {}).length ? JSON.stringify(defaults.agentOptions) : '',
  );
  const checkbox = ([, label, input]) => h('label', { for: input.id }, input, ` ${label}`);
  const countOrPercent = (v) => (/^\d+%$/.test(v.trim()) ? v.trim() : Number(v));
  // Sent only when set, or when clearing what the defaults set: what the controls show is what is sent.
  const isSet = (v) => (Array.isArray(v) ? v.length > 0 : Boolean(v));
  const whenSet = (entries) =>
    Object.fromEntries(entries.filter(([key, value]) => isSet(value) || isSet(defaults[key])));
  return {
    nodes: [
      common.map(([, label, input]) => field(label, input)),
      checkbox(flags[0]),
      h(
        'details',
        {},
        h('summary', {}, 'More options'),
        flags.slice(1).map(checkbox),
        overrides.map((o) => [checkbox(o), o[3]]),
        timeouts.map(([, label, input]) => field(label, input)),
        field(DELAYED_START, delayedStart),
        hint(
          'delayedStartS',
          'Seconds the agent waits, once the upgrade is installed, before it starts the product again: 0 to 3600.',
        ),
        field(STOP_SERVICES, stopServices),
        hint(
          'stopServices',
          'The agent stops them before the upgrade and starts them after it, also after a rollback. At most 20 names of letters, digits, "_", ".", "@" or "-", such as snmpd.',
        ),
        field('Options passed to the agent (JSON object)', agentOptions),
      ),
    ],
    read: () => ({
      maxParallel: countOrPercent(common[0][2].value),
      failureThreshold: countOrPercent(common[1][2].value),
      canary: Number(common[2][2].value),
      ...Object.fromEntries(flags.map(([key, , input]) => [key, input.checked])),
      ...Object.fromEntries(timeouts.map(([key, , input]) => [key, Number(input.value)])),
      ...whenSet([
        ['delayedStartS', parseDelayedStart(delayedStart.value)],
        ['stopServices', parseServices(stopServices.value)],
        ...overrides.map(([key, , input]) => [key, input.checked]),
      ]),
      // What the box shows is what is sent: emptied, the agent gets no options.
      agentOptions: agentOptions.value.trim() ? parseAgentOptions(agentOptions.value) : {},
    }),
  };
}

/** Where a batch is expected to run with respectWindows (the preview's batchWindows). */
function batchWindowText(w) {
  if (!w.expectedStartAt) return `No maintenance window is long enough for its ${w.predictedMinutes} min.`;
  const when = `Expected ${localDateTime(w.expectedStartAt)} to ${localDateTime(w.expectedEndAt)} (${w.predictedMinutes} min)`;
  return w.window
    ? `${when}, in the window until ${localDateTime(w.window.closesAt)}.`
    : `${when}; no window limits it.`;
}

const DELAYED_START = 'Wait before starting the product again (seconds)';
const STOP_SERVICES = 'Services to stop during the upgrade (separated by commas or spaces)';

/** The delayed start box: whole seconds from 0 to 3600 (empty = 0), refused in words otherwise. */
function parseDelayedStart(text) {
  const value = text.trim() === '' ? 0 : Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 3600)
    throw new Error(`${DELAYED_START}: write a whole number of seconds from 0 to 3600.`);
  return value;
}

/** The services box: names separated by commas or spaces, at most 20, each a service name. */
function parseServices(text) {
  const names = [...new Set(text.split(/[\s,]+/).filter(Boolean))];
  const bad = names.filter((n) => !/^[A-Za-z0-9_.@-]{1,64}$/.test(n));
  if (bad.length)
    throw new Error(
      `${STOP_SERVICES}: ${bad.map((n) => JSON.stringify(n)).join(', ')} ${bad.length === 1 ? 'is not a service name' : 'are not service names'}. A name is 1 to 64 letters, digits, "_", ".", "@" or "-", such as snmpd.`,
    );
  if (names.length > 20) throw new Error(`${STOP_SERVICES}: at most 20 services, this lists ${names.length}.`);
  return names;
}

/** The agent options box: a JSON object, refused in words before anything is sent. */
function parseAgentOptions(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(
      `Options passed to the agent: not JSON (${error.message}). Write an object such as {"stopSnmp": true}.`,
      { cause: error },
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new Error('Options passed to the agent: write a JSON object such as {"stopSnmp": true}.');
  return value;
}

const TARGET_LABELS = 'Labels the agents carry (key=value, separated by commas or spaces)';

export function newUpgradeForm(clusterId, agents, packages, cluster) {
  const usable = packages.filter((p) => p.status === 'available');
  const pkg = h(
    'select',
    { id: 'upgrade-package', required: true },
    usable.map((p) => h('option', { value: p.id }, `${p.version} (${p.kind})`)),
  );
  const targetAll = h('input', { type: 'radio', name: 'target', id: 'target-all', value: 'all', checked: true });
  const targetSome = h('input', { type: 'radio', name: 'target', id: 'target-some', value: 'some' });
  const picks = agents.map((a) =>
    h('label', {}, h('input', { type: 'checkbox', value: a.id, 'data-pick': '' }), ` ${a.name} (${a.address})`),
  );
  const addresses = h('input', { id: 'target-addresses', type: 'text', placeholder: '10.0.4.17, db-a2.lan' });
  const targetLabels = h('input', { type: 'radio', name: 'target', id: 'target-labels', value: 'labels' });
  const labels = h('input', {
    id: 'target-labels-text',
    type: 'text',
    placeholder: 'site=eu-1, tier=db',
    'aria-describedby': 'target-labels-hint',
  });
  // Typing labels chooses that target.
  labels.addEventListener('input', () => (targetLabels.checked = true));
  const policy = h(
    'select',
    { id: 'upgrade-policy' },
    ['default', ...POLICIES].map((p) =>
      h('option', { value: p }, p === 'default' ? `default (${cluster.defaultPolicy})` : p),
    ),
  );
  const options = optionFields('opt', cluster.defaultOptions);
  const startAt = h('input', { id: 'upgrade-start-at', type: 'datetime-local' });
  const plan = h('div', { id: 'plan', 'aria-live': 'polite' });
  const start = h(
    'button',
    {
      type: 'button',
      id: 'start-upgrade',
      disabled: true,
      onclick: async () => {
        try {
          const u = await api('POST', `/api/v1/clusters/${clusterId}/upgrades`, request());
          location.hash = `#/upgrades/${u.id}`;
        } catch (error) {
          plan.append(h('p', { class: 'error', role: 'alert' }, describeError(error)));
        }
      },
    },
    'Start upgrade',
  );

  function request() {
    const some = targetSome.checked;
    const agentIds = picks
      .map((l) => l.querySelector('input'))
      .filter((i) => i.checked)
      .map((i) => i.value);
    const addr = addresses.value.split(/[\s,]+/).filter(Boolean);
    return {
      packageId: pkg.value,
      target: targetLabels.checked
        ? { labels: parseLabels(TARGET_LABELS, labels.value) }
        : some
          ? { ...(agentIds.length ? { agentIds } : {}), ...(addr.length ? { addresses: addr } : {}) }
          : { all: true },
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
      // dependsOn names steps by id: say which step, as "upgrade g1-backup".
      const byId = new Map(p.steps.map((s) => [s.id, s]));
      const title = (id) => {
        const d = byId.get(id);
        return d ? `${d.kind} ${name.get(d.agentId) || d.agentId}` : id;
      };
      const batches = new Map();
      for (const s of p.steps) {
        if (!batches.has(s.batch)) batches.set(s.batch, []);
        batches.get(s.batch).push(s);
      }
      plan.append(h('h3', {}, `Plan: ${p.resolvedPolicy}, ${p.units} unit(s) in ${p.batches} batch(es)`));
      const expected = new Map((p.batchWindows || []).map((w) => [w.batch, w]));
      for (const [batch, steps] of [...batches].sort((a, b) => a[0] - b[0])) {
        plan.append(
          h(
            'div',
            { class: 'batch' },
            h('h3', {}, `Batch ${batch + 1}`),
            expected.has(batch) ? h('p', { class: 'muted' }, batchWindowText(expected.get(batch))) : null,
            h(
              'ol',
              {},
              steps.map((s) =>
                h(
                  'li',
                  {},
                  `${s.kind} ${name.get(s.agentId) || s.agentId}`,
                  s.dependsOn.length
                    ? h('span', { class: 'muted' }, ` after ${s.dependsOn.map(title).join(', ')}`)
                    : null,
                  s.status !== 'pending' ? ` — ${s.status}` : '',
                  s.note ? h('span', { class: 'muted' }, ` (${s.note})`) : null,
                ),
              ),
            ),
          ),
        );
      }
      for (const w of p.warnings) plan.append(h('p', { class: 'notice' }, `Warning: ${w.message}`));
      for (const r of p.refusals)
        plan.append(h('p', { class: 'notice refusal', role: 'alert' }, `Refused: ${r.message}`));
      for (const f of p.prerequisites.failures)
        plan.append(
          h('p', { class: 'notice refusal' }, `${f.agentName}: ${f.check} requires ${f.required}, it has ${f.actual}`),
        );
      start.disabled = p.refusals.length > 0;
    } catch (error) {
      plan.append(h('p', { class: 'error', role: 'alert' }, describeError(error)));
    }
  }

  // What starts is what was previewed: any change after a preview asks for a new one.
  const stale = () => {
    if (start.disabled) return;
    start.disabled = true;
    plan.prepend(
      h(
        'p',
        { class: 'notice', role: 'status' },
        'The form changed since this preview: preview the plan again before starting it.',
      ),
    );
  };
  return h(
    'form',
    {
      class: 'card',
      id: 'new-upgrade',
      'aria-labelledby': 'new-upgrade-title',
      oninput: stale,
      onchange: stale,
      onsubmit: (e) => {
        e.preventDefault();
        preview();
      },
    },
    h('h2', { id: 'new-upgrade-title' }, 'New upgrade'),
    usable.length === 0
      ? h('p', { class: 'muted' }, 'Upload a package first: only an available package can start an upgrade.')
      : [
          h('label', { for: 'upgrade-package' }, 'Package'),
          pkg,
          h(
            'fieldset',
            {},
            h('legend', {}, 'Target'),
            h('label', { for: 'target-all' }, targetAll, ' Every agent of the cluster'),
            h('label', { for: 'target-some' }, targetSome, ' Chosen agents'),
            h('div', { role: 'group', 'aria-label': 'Agents to upgrade' }, picks),
            h('label', { for: 'target-addresses' }, 'Add agents by address'),
            addresses,
            h('label', { for: 'target-labels' }, targetLabels, ' Agents with labels'),
            h('label', { for: 'target-labels-text' }, TARGET_LABELS),
            labels,
            h(
              'p',
              { class: 'hint', id: 'target-labels-hint' },
              'The agents carrying every one of these labels, such as site=eu-1, tier=db; none carrying them all is refused.',
            ),
          ),
          h('label', { for: 'upgrade-policy' }, 'Failover policy'),
          policy,
          h('fieldset', {}, h('legend', {}, 'Options'), options.nodes),
          h('label', { for: 'upgrade-start-at' }, 'Start at (your local time; empty = now)'),
          startAt,
          h(
            'div',
            { class: 'actions' },
            h('button', { type: 'submit', id: 'preview-upgrade', class: 'secondary' }, 'Preview plan'),
            start,
          ),
          plan,
        ],
  );
}
