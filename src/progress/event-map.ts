import type { EventType } from './progress-event.entity';

/**
 * The one map of event types to what an event's `data` carries (a DTO class). Progress sits below
 * every module that writes events and imports none of them (docs/ARCHITECTURE.md, "Who imports
 * whom"), so each writer's module adds its own types here by declaration merging, next to the DTO
 * class that describes them:
 *
 *     declare module '../../progress/event-map' {
 *       interface EventDataMap { 'agent.status': AgentStatusEventData }
 *     }
 *
 * EventLog.append takes only events whose data is their type's; the SSE routes' and the history's
 * OpenAPI schemas name the same classes (EVENT_DATA_SCHEMAS below); the dashboard listens for
 * EVENT_TYPES. How to add a type: docs/ARCHITECTURE.md, "An event type".
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging (above)
export interface EventDataMap {}

/** What an event of type T carries; `never` for a type no module declared (nothing can be appended). */
export type EventData<T extends EventType> = T extends keyof EventDataMap ? EventDataMap[T] : never;

/** An event to append, for each type its own data: a union, so one array may mix types. */
export type NewEvent<T extends EventType = EventType> = {
  [K in T]: {
    type: K;
    clusterId: string;
    upgradeId?: string | null;
    agentId?: string | null;
    data: EventData<K>;
  };
}[T];

/**
 * Each type's data schema in the OpenAPI document: the name of the DTO class of EventDataMap, which
 * the module that declares it registers with ApiExtraModels on its controller. (Progress cannot
 * import the classes; test/progress-sse.e2e-spec.ts checks every name resolves, and the contract
 * check validates real events against them.)
 */
export const EVENT_DATA_SCHEMAS = {
  'upgrade.status': 'UpgradeStatusEventData',
  'task.progress': 'TaskProgressEventData',
  'pair.switchover': 'PairSwitchoverEventData',
  'agent.status': 'AgentStatusEventData',
  'package.status': 'PackageStatusEventData',
  'command.status': 'CommandStatusEventData',
} as const satisfies Record<EventType, string>;
