import { CliError, expectData, isUuid, type LockstepClient, type Schemas } from './api';

/** A cluster named by its id or its name (names are unique). */
export async function resolveCluster(client: LockstepClient, ref: string): Promise<Schemas['ClusterDto']> {
  if (isUuid(ref)) {
    const answer = await client.GET('/api/v1/clusters/{clusterId}', { params: { path: { clusterId: ref } } });
    return expectData(answer, `cluster ${ref}`);
  }
  const clusters = expectData(await client.GET('/api/v1/clusters'), 'list clusters');
  const found = clusters.find((c) => c.name === ref);
  if (!found) throw new CliError(`no cluster named "${ref}" (lockstep clusters list shows them)`);
  return found;
}

/** Every agent of a cluster, page by page. */
export async function allAgents(
  client: LockstepClient,
  clusterId: string,
  query: { state?: Schemas['AgentState']; label?: string[] } = {},
): Promise<Schemas['AgentDto'][]> {
  const agents: Schemas['AgentDto'][] = [];
  for (;;) {
    const page = expectData(
      await client.GET('/api/v1/clusters/{clusterId}/agents', {
        params: { path: { clusterId }, query: { ...query, limit: 500, offset: agents.length } },
      }),
      'list agents',
    );
    agents.push(...page.items);
    if (page.items.length === 0 || agents.length >= page.total) return agents;
  }
}

/** Agents named by id, name or address, as the API's target wants them (ids). */
export function agentIdsFor(agents: Schemas['AgentDto'][], refs: string[]): string[] {
  return refs.map((ref) => {
    const found = agents.find((a) => a.id === ref || a.name === ref || a.address === ref);
    if (!found) throw new CliError(`no agent "${ref}" in this cluster (by id, name or address)`);
    return found.id;
  });
}

const PACKAGE_PAGE = 100;

/** A package by its id, or by its version in the cluster (the newest upload of it). */
export async function resolvePackage(
  client: LockstepClient,
  clusterId: string,
  ref: string,
): Promise<Schemas['PackageDto']> {
  if (isUuid(ref)) {
    return expectData(
      await client.GET('/api/v1/packages/{packageId}', { params: { path: { packageId: ref } } }),
      `package ${ref}`,
    );
  }
  // Newest first, page by page: the newest upload of that version is the first met.
  for (let offset = 0; ; offset += PACKAGE_PAGE) {
    const page = expectData(
      await client.GET('/api/v1/clusters/{clusterId}/packages', {
        params: { path: { clusterId }, query: { limit: PACKAGE_PAGE, offset } },
      }),
      'list packages',
    );
    const found = page.items.find((p) => p.version === ref);
    if (found) return found;
    if (page.items.length < PACKAGE_PAGE || offset + PACKAGE_PAGE >= page.total)
      throw new CliError(`no package ${ref} in this cluster (lockstep packages list shows them)`);
  }
}
