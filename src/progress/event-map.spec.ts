import { CommandStatusEventData } from '../cluster/dto/agent-protocol.dto';
import { AgentStatusEventData } from '../cluster/dto/agent.dto';
import { PackageStatusEventData } from '../packages/dto/package.dto';
import {
  PairSwitchoverEventData,
  TaskProgressEventData,
  UpgradeStatusEventData,
} from '../upgrades/dto/upgrade-events.dto';
import { EVENT_DATA_SCHEMAS, type EventData, type NewEvent } from './event-map';
import { EVENT_TYPES, type EventType } from './progress-event.entity';

/**
 * Each type's data class, as EventDataMap declares it: the compiler checks every type has one and
 * that it is that type's (a type no module declared has data `never`, which no class is).
 */
const CLASSES: { [T in EventType]: new () => EventData<T> } = {
  'upgrade.status': UpgradeStatusEventData,
  'task.progress': TaskProgressEventData,
  'pair.switchover': PairSwitchoverEventData,
  'agent.status': AgentStatusEventData,
  'package.status': PackageStatusEventData,
  'command.status': CommandStatusEventData,
};

describe('the event map (src/progress/event-map.ts)', () => {
  it('names, for every event type, the OpenAPI schema of the class EventDataMap gives it', () => {
    expect(Object.keys(EVENT_DATA_SCHEMAS)).toEqual([...EVENT_TYPES]);
    for (const type of EVENT_TYPES) expect(EVENT_DATA_SCHEMAS[type]).toBe(CLASSES[type].name);
  });

  it('types each event’s data by its type: a writer cannot append another type’s data', () => {
    const data: PackageStatusEventData = {
      packageId: '00000000-0000-4000-8000-000000000000',
      version: '1.0.0',
      kind: 'full',
      status: 'available',
      usedByUpgradeId: null,
    };
    const right: NewEvent = { type: 'package.status', clusterId: 'c', data };
    // @ts-expect-error package.status data on an agent.status event does not compile
    const wrong: NewEvent = { type: 'agent.status', clusterId: 'c', data };
    expect([right.type, wrong.type]).toEqual(['package.status', 'agent.status']);
  });
});
