// An agent's recent commands (upgrades, switchovers, migrations) in the cluster view: read only when
// opened, kept up to date from the cluster's events, and kept open when the agent's row is redrawn.
import { api, badge, describeError, h, localDateTime } from './lib.js';

/** Commands per page: the newest first, older ones on demand. */
const PAGE = 10;
/** A live re-read asks for as many as are shown, up to this many. */
const REREAD_MAX = 100;

/**
 * The open histories of one cluster view, by agent. Each is a table row of its own that the agents
 * table puts under the agent's row (`panel(agent)`); `toggle(agent)` makes the button that opens it.
 */
export function commandHistories(isCurrent, columns) {
  const open = new Map(); // agentId -> { agent, row, items, total, timer, error }

  function toggle(agent) {
    const shown = open.has(agent.id);
    return h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        'aria-expanded': shown ? 'true' : 'false',
        'aria-controls': `commands-${agent.id}`,
        'aria-label': `Commands of ${agent.name}`,
        onclick: (e) => {
          const button = e.currentTarget;
          if (open.has(agent.id)) {
            open.get(agent.id).row.remove();
            clearTimeout(open.get(agent.id).timer);
            open.delete(agent.id);
            button.setAttribute('aria-expanded', 'false');
            return;
          }
          const entry = { agent, row: null, items: null, total: 0, timer: null, error: null };
          entry.row = h(
            'tr',
            { class: 'commands', id: `commands-${agent.id}`, 'data-commands-of': agent.name },
            h('td', { colspan: columns }),
          );
          open.set(agent.id, entry);
          button.closest('tr').after(entry.row);
          button.setAttribute('aria-expanded', 'true');
          draw(entry);
          read(entry);
        },
      },
      'Commands',
    );
  }

  async function read(entry, more = false) {
    const offset = more ? entry.items.length : 0;
    const limit = more ? PAGE : Math.min(Math.max(entry.items?.length ?? 0, PAGE), REREAD_MAX);
    try {
      const page = await api('GET', `/api/v1/agents/${entry.agent.id}/commands?limit=${limit}&offset=${offset}`);
      if (open.get(entry.agent.id) !== entry) return; // closed meanwhile
      entry.error = null;
      entry.total = page.total;
      // Newer commands push older ones down a page: one already shown is not listed twice.
      entry.items = more
        ? [...entry.items, ...page.items.filter((c) => !entry.items.some((k) => k.id === c.id))]
        : page.items;
    } catch (error) {
      entry.error = describeError(error);
    }
    draw(entry);
  }

  /** A burst of events about one agent reads its history once, half a second later. */
  function readSoon(entry) {
    entry.timer ??= setTimeout(() => {
      entry.timer = null;
      if (isCurrent() && open.get(entry.agent.id) === entry) read(entry);
    }, 500);
  }

  function draw(entry) {
    const { agent, items } = entry;
    const cell = h(
      'td',
      { colspan: columns },
      h('h3', { id: `commands-title-${agent.id}`, tabindex: -1 }, `Recent commands of ${agent.name}`),
      entry.error
        ? h(
            'p',
            { class: 'error', role: 'alert' },
            `The commands could not be read: ${entry.error} `,
            h('button', { type: 'button', class: 'secondary', onclick: () => read(entry) }, 'Read again'),
          )
        : null,
      items === null
        ? entry.error
          ? null
          : h('p', { class: 'muted' }, 'Reading…')
        : items.length === 0
          ? h('p', { class: 'muted' }, 'No command sent to this agent yet.')
          : h('ol', { class: 'command-list', 'aria-labelledby': `commands-title-${agent.id}` }, items.map(commandItem)),
      items && entry.total > items.length
        ? h(
            'p',
            { class: 'muted' },
            `Showing ${items.length} of ${entry.total}. `,
            h('button', { type: 'button', class: 'secondary', onclick: () => read(entry, true) }, 'Show older'),
          )
        : null,
    );
    // A keyboard user on "Show older" stays there, or on the heading once everything is shown.
    const hadFocus = entry.row.contains(document.activeElement);
    entry.row.firstChild.replaceWith(cell);
    if (hadFocus) (cell.querySelector('button') || cell.querySelector('h3')).focus();
  }

  return {
    toggle,
    /** The open history's row of this agent (moved under its row when the table is drawn again), or null. */
    panel(agent) {
      const entry = open.get(agent.id);
      if (!entry) return null;
      entry.agent = agent;
      return entry.row;
    },
    /** Closes the histories of agents no longer listed. */
    keepOnly(agentIds) {
      for (const [id, entry] of open)
        if (!agentIds.has(id)) {
          clearTimeout(entry.timer);
          open.delete(id);
        }
    },
    /** A command.status event: the command's end shown at once, then the list read again. */
    ended(data) {
      const entry = open.get(data.agentId);
      if (!entry) return;
      const known = entry.items?.find((c) => c.id === data.commandId);
      if (known) {
        Object.assign(known, {
          status: data.status,
          error: data.error ?? null,
          notes: data.notes ?? known.notes,
          message: data.message ?? known.message,
          ...(data.version ? { resultVersion: data.version } : {}),
        });
        draw(entry);
      }
      readSoon(entry);
    },
    /** Something else happened to this agent's work (a step moved): its list is read again soon. */
    touched(agentId) {
      const entry = open.get(agentId);
      if (entry) readSoon(entry);
    },
  };
}

function commandItem(c) {
  const running = c.status === 'running';
  const said = [c.message, running && c.phase ? `${c.phase} ${c.percent ?? 0}%` : null].filter(Boolean).join(' · ');
  return h(
    'li',
    { 'data-command': c.id, 'data-type': c.type, 'data-status': c.status },
    badge(c.status),
    ' ',
    h('strong', {}, c.type),
    c.resultVersion ? ` ${c.resultVersion}` : '',
    h(
      'span',
      { class: 'muted' },
      ` sent ${localDateTime(c.createdAt)}`,
      c.fetchedAt ? '' : c.status === 'pending' ? ', not fetched yet' : '',
      c.endedAt ? `, ended ${localDateTime(c.endedAt)}` : '',
    ),
    c.upgradeId ? [' ', h('a', { href: `#/upgrades/${c.upgradeId}` }, 'its upgrade')] : null,
    said ? h('div', { class: 'muted' }, said) : null,
    c.error ? h('div', { class: 'error' }, c.error) : null,
    Array.isArray(c.notes) && c.notes.length
      ? h(
          'ul',
          { class: 'agent-notes', 'aria-label': 'What the agent reported' },
          c.notes.map((n) => h('li', {}, n)),
        )
      : null,
  );
}
