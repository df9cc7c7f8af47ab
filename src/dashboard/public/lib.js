// The dashboard's shared pieces: session state, the API client, DOM building and small widgets.
// Everything shown is built as DOM nodes from text (never HTML strings), so nothing an agent or a
// package reports can inject markup.

export const TOKEN_KEY = 'lockstep.token';
export const state = { token: sessionStorage.getItem(TOKEN_KEY), me: null, stream: null, seq: 0 };
const RANK = { viewer: 1, operator: 2, admin: 3 };
export const can = (role) => state.me && RANK[state.me.role] >= RANK[role];
export const $ = (id) => document.getElementById(id);

/**
 * The event types the streams carry, as the server lists them (EVENT_TYPES in
 * src/progress/progress-event.entity.ts; test/dashboard.e2e-spec.ts checks they agree). Each
 * event's data is its type's DTO (EventDataMap in src/progress/event-map.ts; the OpenAPI document
 * names their schemas): `agent.status` carries the agent as GET .../agents/{id} shows it (AgentDto,
 * with `removed: true` when it is gone), `upgrade.status` UpgradeStatusEventData, `task.progress`
 * TaskProgressEventData, `pair.switchover` PairSwitchoverEventData, `package.status`
 * PackageStatusEventData, `command.status` CommandStatusEventData.
 */
export const EVENT_TYPES = [
  'upgrade.status',
  'task.progress',
  'pair.switchover',
  'agent.status',
  'package.status',
  'command.status',
];

/** What app.js provides to the views without their importing it (it imports them). */
export const page = { render: async () => {}, signOut: (_message) => {} };

/** Draws the current view again; resolves once it is drawn. */
export const redraw = () => page.render();

/** h('tag', {attr, onclick}, ...children): a DOM element; strings become text nodes, arrays (nested too) their items. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const child of children.flat(Infinity))
    if (child !== null && child !== undefined && child !== false)
      el.append(child instanceof Node ? child : String(child));
  return el;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: {
      Authorization: `Bearer ${state.token}`,
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => ({}));
  refused(res, json);
  return json;
}

/** Signs out on a refused token; throws the API's refusal for any other error status. */
function refused(res, json) {
  if (res.status === 401) page.signOut('Your token was refused: ' + (json.message || 'sign in again.'));
  if (!res.ok) throw new ApiError(res.status, json);
}

/**
 * Saves a file the API serves to signed-in users (a package): fetched with the token, since a plain
 * link cannot send one, then handed to the browser as a download under the server's file name or
 * `fallbackName`. The whole file passes through memory once.
 */
export async function download(path, fallbackName) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${state.token}` } });
  if (!res.ok) refused(res, await res.json().catch(() => ({})));
  const url = URL.createObjectURL(await res.blob());
  const link = h('a', {
    href: url,
    download: fileName(res.headers.get('Content-Disposition')) || fallbackName,
    hidden: true,
  });
  document.body.append(link);
  link.click();
  link.remove();
  // Revoked later, not at once: the browser may still be reading it when click() returns.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** The file name a Content-Disposition header gives (RFC 6266: filename*=UTF-8''… or filename="…"), if any. */
function fileName(disposition) {
  const encoded = /filename\*=UTF-8''([^;\s]+)/i.exec(disposition || '');
  const plain = /filename="?([^";]+)"?/i.exec(disposition || '');
  try {
    return (encoded ? decodeURIComponent(encoded[1]) : plain?.[1]) || null;
  } catch {
    return plain?.[1] || null;
  }
}

/** A refusal in words, with per-agent prerequisite failures and per-field problems spelled out. */
export function describeError(error) {
  const lines = [error.message];
  const d = error.body && error.body.details;
  if (d && Array.isArray(d.failures))
    for (const f of d.failures) lines.push(`• ${f.agentName}: ${f.check} requires ${f.required}, it has ${f.actual}`);
  if (d && Array.isArray(d.refusals)) for (const r of d.refusals) lines.push(`• ${r.message}`);
  if (Array.isArray(d)) for (const p of d) if (p.field) lines.push(`• ${p.field}: ${(p.problems || []).join('; ')}`);
  return lines.join('\n');
}

export function toast(text) {
  $('toast').textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => ($('toast').textContent = ''), 5000);
}

export function badge(status, label) {
  return h(
    'span',
    { class: `badge ${status}` },
    status === 'upgrading' || status === 'running' ? h('span', { class: 'spinner', 'aria-hidden': 'true' }) : null,
    label || status,
  );
}

/** A labelled control: [label, control], the label tied to the control's id. */
export function field(text, control) {
  return [h('label', { for: control.id }, text), control];
}

/**
 * A form card whose submit sends `body()` with `method` to `path()`; a refusal is shown in the
 * form in words, a success goes to `done(result)`.
 */
export function apiForm({ id, title, method = 'POST', path, body, submit, done }, ...fields) {
  const result = h('p', { class: 'error', role: 'alert', id: `${id}-result` });
  return h(
    'form',
    {
      class: 'card',
      id,
      'aria-labelledby': `${id}-title`,
      onsubmit: async (e) => {
        e.preventDefault();
        result.textContent = '';
        try {
          done(await api(method, path(), body()));
        } catch (error) {
          result.textContent = describeError(error);
        }
      },
    },
    h('h2', { id: `${id}-title` }, title),
    fields,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, submit)),
    result,
  );
}

/** A secret shown once (a pairing key, a token), with what to do with it; it stays until dismissed. */
export function secretPanel(title, secret, lines) {
  const panel = h(
    'section',
    { class: 'card secret', role: 'alert', tabindex: -1, 'aria-labelledby': 'secret-title' },
    h('h2', { id: 'secret-title' }, title),
    h('p', {}, 'Shown only now: Lockstep keeps only its hash. Copy it before you close this panel.'),
    h('pre', {}, h('code', { id: 'secret-value' }, secret)),
    lines.map((line) => (line instanceof Node ? line : h('p', {}, line))),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: () => panel.remove() }, 'I have copied it'),
    ),
  );
  return panel;
}

/** Puts a secret panel at the top of the view and moves focus to it. */
export function showSecret(panel) {
  document.querySelector('.secret')?.remove();
  $('view').prepend(panel);
  panel.focus();
}

// One formatter each, made once: toLocaleString() builds a new one per call, which a replay of
// thousands of events pays thousands of times.
const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const TIME = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
/** An instant (ISO text) as the viewer's local date and time. */
export const localDateTime = (iso) => DATE_TIME.format(new Date(iso));
/** An instant (ISO text) as the viewer's local time of day. */
export const localTime = (iso) => TIME.format(new Date(iso));

/** Labels as the label boxes show them: "site=eu-1, tier=db". */
export const labelsText = (labels) =>
  Object.entries(labels || {})
    .map(([key, value]) => `${key}=${value}`)
    .join(', ');

/** Maintenance windows as a line: "sat, sun 22:00 for 4 h (Europe/Berlin)"; none: "any time". */
export const windowsText = (windows) =>
  windows && windows.length
    ? windows
        .map((w) => {
          const hours = w.durationMinutes % 60 === 0 ? `${w.durationMinutes / 60} h` : `${w.durationMinutes} min`;
          return `${w.days.join(', ')} ${w.start} for ${hours} (${w.timeZone})`;
        })
        .join('; ')
    : 'any time';

/**
 * A label box (`what` names it in a refusal): key=value pairs separated by commas or spaces, as the
 * API's label map; empty is {}. A pair without "=", or one key with two values, is refused here in
 * words; the API checks keys and values (at most 32; lower-case keys) and names a bad one.
 */
export function parseLabels(what, text) {
  const labels = {};
  for (const pair of text.split(/[\s,]+/).filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at <= 0 || at === pair.length - 1)
      throw new Error(`${what}: write key=value pairs such as site=eu-1, tier=db ("${pair}" is not one).`);
    const key = pair.slice(0, at);
    const value = pair.slice(at + 1);
    if (Object.hasOwn(labels, key) && labels[key] !== value)
      throw new Error(`${what}: ${key} is given twice (${labels[key]} and ${value}); an agent has one value per key.`);
    labels[key] = value;
  }
  return labels;
}

/** The failover policies a cluster can default to (an upgrade may also say 'default'). */
export const POLICIES = ['simultaneous', 'backup-first', 'backup-first-switchback'];

export const VERSION_LABEL = {
  latest: 'latest',
  outdated: 'out of date',
  unknown: 'unknown',
  upgrading: 'upgrading',
  failed: 'failed',
  ahead: 'ahead',
};

export async function act(path, done, next) {
  try {
    const result = await api('POST', path);
    toast(done);
    const target = typeof next === 'function' ? next(result) : next;
    if (target && location.hash !== target) location.hash = target;
    else redraw();
  } catch (error) {
    toast(describeError(error));
  }
}

export function closeStream() {
  if (state.stream) state.stream.close();
  state.stream = null;
}
