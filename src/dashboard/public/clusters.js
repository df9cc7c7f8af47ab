// The clusters list, and creating a cluster (admins).
import { api, apiForm, badge, can, field, h, POLICIES, toast } from './lib.js';

export async function clustersView(view) {
  const clusters = await api('GET', '/api/v1/clusters');
  view.append(
    h('h1', {}, 'Clusters'),
    clusters.length === 0
      ? h(
          'p',
          { class: 'muted' },
          can('admin') ? 'No cluster yet: create the first one below.' : 'No cluster yet: an admin creates them.',
        )
      : h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'Cluster'),
              h('th', { scope: 'col', class: 'opt' }, 'Product'),
              h('th', { scope: 'col' }, 'Agents'),
              h('th', { scope: 'col' }, 'Target'),
              h('th', { scope: 'col' }, 'Versions'),
              h('th', { scope: 'col' }, 'Consistent'),
            ),
          ),
          h(
            'tbody',
            {},
            clusters.map((c) =>
              h(
                'tr',
                { 'data-cluster': c.name },
                h('td', {}, h('a', { href: `#/clusters/${c.id}` }, c.name)),
                h('td', { class: 'opt' }, c.product),
                h('td', {}, String(c.agentCount), attention(c)),
                h(
                  'td',
                  {},
                  c.targetVersion || '—',
                  c.webappsTargetVersion
                    ? h('span', { class: 'muted' }, ` (web apps ${c.webappsTargetVersion})`)
                    : null,
                ),
                h(
                  'td',
                  {},
                  Object.entries(c.versions)
                    .map(([v, n]) => `${v}: ${n}`)
                    .join(', ') || 'none reported',
                  Object.keys(c.webappsVersions || {}).length
                    ? h(
                        'span',
                        { class: 'muted' },
                        `; web apps ${Object.entries(c.webappsVersions)
                          .map(([v, n]) => `${v}: ${n}`)
                          .join(', ')}`,
                      )
                    : null,
                ),
                h('td', {}, c.consistent ? badge('latest', 'one version') : badge('outdated', 'mixed')),
              ),
            ),
          ),
        ),
    can('admin') ? newClusterForm() : null,
  );
}

/** What in a cluster wants a look: agents offline, failed or upgrading now. */
function attention(cluster) {
  const parts = [
    [cluster.states.offline, 'offline'],
    [cluster.versionStatuses.failed, 'failed'],
    [cluster.versionStatuses.upgrading, 'upgrading'],
  ]
    .filter(([n]) => n > 0)
    .map(([n, what]) => `${n} ${what}`);
  return parts.length ? h('span', { class: 'muted' }, ` (${parts.join(', ')})`) : null;
}

function newClusterForm() {
  const name = h('input', { id: 'cluster-name', type: 'text', required: true, placeholder: 'db-eu-west' });
  const product = h('input', { id: 'cluster-product', type: 'text', required: true, placeholder: 'acme-agent' });
  const policy = h(
    'select',
    { id: 'cluster-policy' },
    POLICIES.map((p) => h('option', { value: p }, p)),
  );
  return apiForm(
    {
      id: 'new-cluster',
      title: 'New cluster',
      submit: 'Create cluster',
      path: () => '/api/v1/clusters',
      body: () => ({ name: name.value.trim(), product: product.value.trim(), defaultPolicy: policy.value }),
      done: (cluster) => {
        toast(`Cluster ${cluster.name} created`);
        location.hash = `#/clusters/${cluster.id}`;
      },
    },
    field('Cluster name', name),
    field('Product (what its packages must name)', product),
    field('Default failover policy', policy),
  );
}
