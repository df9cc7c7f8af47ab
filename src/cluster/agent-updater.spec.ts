import { ManualClock } from '../common/clock';
import { EventLog } from '../progress/event-log.service';
import { FakeTx, mockOf } from '../testing/fakes';
import { aCluster, anAgent, T0 } from '../testing/fixtures';
import { AgentRepository } from './agent.repository';
import { AgentUpdater } from './agent-updater';
import { ClusterRepository } from './cluster.repository';
import { toAgentDto } from './dto/agent.dto';

/**
 * AgentUpdater.apply, the one path by which an agent's state changes (issue 17): a change an
 * operator can see appends one `agent.status` event carrying the agent as GET /api/v1/agents/{id}
 * shows it, in the transaction of the change; a change nobody sees (liveness, facts) or no change
 * appends none. docs/ARCHITECTURE.md, "Pure logic, services, controllers" and "One typed event map"
 * (the dashboard redraws a row from that event's data alone).
 */

const NOW = new Date(T0.getTime() + 30_000);

function rig() {
  const agents = mockOf<AgentRepository>();
  agents.distinctVersions.mockResolvedValue([]);
  agents.findInCluster.mockResolvedValue([]);
  const clusters = mockOf<ClusterRepository>();
  clusters.findById.mockResolvedValue(aCluster({ targetVersion: '10.3.0' }));
  const events = mockOf<EventLog>();
  const updater = new AgentUpdater(agents, clusters, events, new ManualClock(NOW));
  return { updater, agents, clusters, events, tx: new FakeTx(1) };
}

describe('AgentUpdater.apply', () => {
  it('a change of state appends one agent.status event with the agent as the API shows it, in the same transaction', async () => {
    const r = rig();
    const agent = anAgent({ state: 'idle' });

    await r.updater.apply(r.tx, agent, { busy: true });

    expect(r.agents.update).toHaveBeenCalledWith(
      r.tx.em,
      'agent-a',
      expect.objectContaining({ busy: true, state: 'busy' }),
    );
    expect(r.events.append).toHaveBeenCalledTimes(1);
    expect(r.events.append).toHaveBeenCalledWith(r.tx, [
      { type: 'agent.status', clusterId: 'cluster-1', agentId: 'agent-a', data: toAgentDto(agent) },
    ]);
    // The event's data is the agent after the change, derived state included.
    expect(r.events.append.mock.calls[0][1][0].data).toMatchObject({ busy: true, state: 'busy' });
  });

  it('an agent going offline is published offline, whatever it was doing', async () => {
    const r = rig();

    await r.updater.apply(r.tx, anAgent({ upgrading: true, state: 'upgrading' }), { online: false });

    expect(r.events.append.mock.calls[0][1][0].data).toMatchObject({ state: 'offline' });
  });

  it('a new version is measured against the cluster’s target before it is published', async () => {
    const r = rig();

    await r.updater.apply(r.tx, anAgent({ version: '10.2.0', versionStatus: 'outdated' }), { version: '10.3.0' });

    expect(r.clusters.findById).toHaveBeenCalledWith('cluster-1', r.tx.em);
    expect(r.events.append.mock.calls[0][1][0].data).toMatchObject({ version: '10.3.0', versionStatus: 'latest' });
  });

  it.each([
    ['no change at all', {}],
    ['the same value again', { busy: false, version: '10.2.0' }],
    [
      'what heartbeats move all the time (last seen, facts)',
      { lastSeenAt: NOW, facts: { os: 'linux', freeDiskMb: 9000 } },
    ],
  ])('%s appends no event', async (_case, changes) => {
    const r = rig();

    await r.updater.apply(r.tx, anAgent(), changes);

    expect(r.events.append).not.toHaveBeenCalled();
  });

  it('without a target, an agent that raises the highest version moves the others’ status too, each with its event', async () => {
    const r = rig();
    r.clusters.findById.mockResolvedValue(aCluster({ targetVersion: null }));
    r.agents.distinctVersions.mockResolvedValue(['10.2.0']);
    const other = anAgent({ id: 'agent-b', name: 'bravo', version: '10.2.0', versionStatus: 'latest' });
    const agent = anAgent({ version: '10.2.0', versionStatus: 'latest' });
    r.agents.findInCluster.mockResolvedValue([agent, other]);

    await r.updater.apply(r.tx, agent, { version: '10.3.0' });

    // The other agent is now behind the highest version reported, and the dashboard is told so.
    expect(other.versionStatus).toBe('outdated');
    expect(r.agents.update).toHaveBeenCalledWith(
      r.tx.em,
      'agent-b',
      expect.objectContaining({ versionStatus: 'outdated' }),
    );
    const published = r.events.append.mock.calls.flatMap(([inTx, events]) => events.map((e) => [inTx, e.agentId]));
    expect(published).toEqual([
      [r.tx, 'agent-a'],
      [r.tx, 'agent-b'],
    ]);
  });
});
