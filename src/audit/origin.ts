/**
 * Who caused a change, and through which request: what every audit record and every event a person
 * caused names (docs/audit.md). Structurally a superset of the access guard's Principal, so a
 * principal is an actor as it is.
 */
export type Actor =
  | { kind: 'user'; tokenId: string; name: string; role: string }
  | { kind: 'agent'; tokenId?: string; agentId: string }
  /** Lockstep itself: the scheduler, auto-upgrade, the budgets and the failure policy. */
  | { kind: 'system'; name: SystemActor }
  /** A call refused before its token was established (401). */
  | { kind: 'anonymous' };

/**
 * What part of Lockstep acted: the scheduler (a scheduled upgrade's start), auto-upgrade, the
 * mixed-version budget, the canary pause, the failure policy (onFailure: rollback), the first
 * start (bootstrap admin token), `npm run admin`.
 */
export type SystemActor =
  'scheduler' | 'auto-upgrade' | 'budget' | 'canary' | 'failure-policy' | 'bootstrap' | 'admin-cli';

export interface Origin {
  readonly actor: Actor;
  /** The request's id (X-Request-Id); null for Lockstep's own work. */
  readonly requestId: string | null;
}

/** Lockstep's own work: no request, no person. */
export const systemOrigin = (name: SystemActor): Origin => ({ actor: { kind: 'system', name }, requestId: null });

/** The actor's name as people read it: a token's name, "agent <id>", "system: <what>", or "anonymous". */
export function actorName(actor: Actor): string {
  switch (actor.kind) {
    case 'user':
      return actor.name;
    case 'agent':
      return `agent ${actor.agentId}`;
    case 'system':
      return `system: ${actor.name}`;
    case 'anonymous':
      return 'anonymous';
  }
}
