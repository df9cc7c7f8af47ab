import { Injectable, OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { NotFoundError } from '../common/errors';
import type { EventScope } from './progress-event.repository';
import { resolvePort } from '../common/ports';

export type ScopeKind = EventScope['kind'];

/**
 * Port: which clusters and upgrades exist. Progress knows no domain; the module above that knows
 * both binds this (UpgradesModule's providers). See docs/ARCHITECTURE.md, "Ports".
 */
export abstract class StreamScopeDirectory {
  abstract exists(scope: EventScope): Promise<boolean>;
}

/** A stream, ticket or history for an unknown cluster or upgrade is a 404 before anything is streamed. */
@Injectable()
export class StreamScopes implements OnModuleInit {
  private directory: StreamScopeDirectory;

  constructor(private readonly moduleRef: ModuleRef) {}

  /** Resolved once all providers exist, not injected: its binder depends on this module (docs/ARCHITECTURE.md, "Ports"). */
  onModuleInit(): void {
    this.directory = resolvePort(this.moduleRef, StreamScopeDirectory, 'UpgradesModule');
  }

  async require(kind: ScopeKind, id: string): Promise<EventScope> {
    const scope: EventScope = { kind, id };
    if (!(await this.directory.exists(scope))) throw new NotFoundError(kind === 'cluster' ? 'Cluster' : 'Upgrade', id);
    return scope;
  }
}
