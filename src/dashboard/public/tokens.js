// API tokens (admins): list, issue (the secret shown once), revoke.
import {
  api,
  apiForm,
  badge,
  can,
  describeError,
  field,
  h,
  localDateTime,
  redraw,
  secretPanel,
  showSecret,
  state,
  toast,
} from './lib.js';

export async function tokensView(view) {
  view.append(h('h1', {}, 'API tokens'));
  if (!can('admin')) {
    view.append(h('p', { class: 'muted' }, 'Only admins manage API tokens; ask an admin for one.'));
    return;
  }
  const tokens = await api('GET', '/api/v1/tokens?includeRevoked=true');
  const name = h('input', { id: 'token-name', type: 'text', required: true, placeholder: 'ci-uploader' });
  const role = h(
    'select',
    { id: 'token-role' },
    ['viewer', 'operator', 'admin'].map((r) => h('option', { value: r }, r)),
  );
  // Optional: the token stops working at the end of this day (local time); empty means never.
  const expires = h('input', {
    id: 'token-expires',
    type: 'date',
    min: new Date(Date.now() + 86_400_000).toISOString().slice(0, 10),
  });
  const expired = (t) => t.expiresAt !== null && t.expiresAt !== undefined && new Date(t.expiresAt) <= new Date();
  view.append(
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Name', 'Role', 'Starts with', 'Created', 'Expires', 'Status', ''].map((t) => h('th', { scope: 'col' }, t)),
        ),
      ),
      h(
        'tbody',
        {},
        tokens.map((t) =>
          h(
            'tr',
            { 'data-token': t.name },
            h(
              'th',
              { scope: 'row' },
              t.name,
              t.id === state.me.tokenId ? h('span', { class: 'muted' }, ' (you)') : null,
            ),
            h('td', {}, t.role),
            h('td', {}, h('code', {}, t.prefix)),
            h('td', {}, localDateTime(t.createdAt)),
            h('td', {}, t.expiresAt ? localDateTime(t.expiresAt) : h('span', { class: 'muted' }, 'never')),
            h(
              'td',
              {},
              t.revokedAt
                ? badge('cancelled', `revoked ${localDateTime(t.revokedAt)}`)
                : expired(t)
                  ? badge('cancelled', 'expired')
                  : badge('available', 'active'),
            ),
            h(
              'td',
              {},
              t.revokedAt
                ? null
                : h(
                    'button',
                    {
                      type: 'button',
                      class: 'secondary danger',
                      'aria-label': `Revoke ${t.name}`,
                      onclick: async () => {
                        const warning =
                          t.id === state.me.tokenId
                            ? ' It is the token you are signed in with: you will be signed out.'
                            : '';
                        if (!confirm(`Revoke ${t.name}? Whoever uses it is refused at once.${warning}`)) return;
                        try {
                          await api('DELETE', `/api/v1/tokens/${t.id}`);
                          toast(`${t.name} revoked`);
                          redraw();
                        } catch (error) {
                          toast(describeError(error));
                        }
                      },
                    },
                    'Revoke',
                  ),
            ),
          ),
        ),
      ),
    ),
    apiForm(
      {
        id: 'new-token',
        title: 'Issue a token',
        submit: 'Issue token',
        path: () => '/api/v1/tokens',
        body: () => ({
          name: name.value.trim(),
          role: role.value,
          ...(expires.value ? { expiresAt: new Date(`${expires.value}T23:59:59`).toISOString() } : {}),
        }),
        done: (issued) => {
          redraw().then(() =>
            showSecret(
              secretPanel(`Token ${issued.name} (${issued.role})`, issued.secret, [
                'Send it as "Authorization: Bearer <token>", or sign in here with it.',
              ]),
            ),
          );
        },
      },
      field('What it is for', name),
      field('Role', role),
      field('Expires (optional)', expires),
    ),
  );
}
