// Lockstep's dashboard: plain browser JavaScript (ES modules, no build step) on the public API and
// its SSE streams. This module signs in and out and draws the view the address names.
import { $, api, can, closeStream, describeError, h, page, state, TOKEN_KEY } from './lib.js';
import { auditView } from './audit.js';
import { clusterView } from './cluster.js';
import { clustersView } from './clusters.js';
import { tokensView } from './tokens.js';
import { upgradeView } from './upgrade.js';

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
    $('nav-audit').hidden = true;
    $('token').focus();
    return;
  }
  if (!state.me) {
    try {
      state.me = await api('GET', '/api/v1/session');
    } catch (error) {
      // A refused token has signed out already; anything else (the server down) is said here.
      if (state.token && seq === state.seq)
        $('view').replaceChildren(
          h('p', { class: 'error', role: 'alert' }, `Lockstep did not answer who you are: ${describeError(error)}`),
        );
      return;
    }
  }
  $('who').textContent = `${state.me.name} (${state.me.role})`;
  $('nav-tokens').hidden = !can('admin');
  $('nav-audit').hidden = !can('admin');
  const view = h('div');
  const route = location.hash.replace(/^#\/?/, '').split('/');
  try {
    if (route[0] === 'clusters' && route[1]) await clusterView(view, route[1], () => seq === state.seq);
    else if (route[0] === 'upgrades' && route[1]) await upgradeView(view, route[1], () => seq === state.seq);
    else if (route[0] === 'tokens') await tokensView(view);
    else if (route[0] === 'audit') await auditView(view);
    else await clustersView(view);
  } catch (error) {
    view.append(h('p', { class: 'error', role: 'alert' }, describeError(error)));
  }
  if (seq !== state.seq) return; // a later render took over
  $('view').replaceChildren(view);
  $('main').focus({ preventScroll: true });
}

page.render = render;
page.signOut = signOut;

render();
