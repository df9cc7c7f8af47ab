import { Injectable } from '@nestjs/common';
import { NotFoundError } from '../common/errors';
import type { EventScope } from './progress-event.repository';

export type ScopeKind = EventScope['kind'];

/**
 * Progress knows no domain: the modules that own clusters and upgrades tell it which ones exist,
 * so a stream for an unknown one is a 404 before anything is streamed.
 */
@Injectable()
export class StreamScopes {
  private readonly resolvers = new Map<ScopeKind, (id: string) => Promise<boolean>>();

  register(kind: ScopeKind, exists: (id: string) => Promise<boolean>): void {
    this.resolvers.set(kind, exists);
  }

  async require(kind: ScopeKind, id: string): Promise<EventScope> {
    const exists = this.resolvers.get(kind);
    if (!exists || !(await exists(id))) throw new NotFoundError(kind === 'cluster' ? 'Cluster' : 'Upgrade', id);
    return { kind, id };
  }
}
