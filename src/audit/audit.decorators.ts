import { applyDecorators, createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiExtension } from '@nestjs/swagger';
import type { Origin } from './origin';

/** What each audited route records; `<target>.<verb>` (docs/audit.md lists them). */
export const AUDIT_ACTIONS = [
  'token.create',
  'token.revoke',
  'cluster.create',
  'cluster.update',
  'cluster.delete',
  'signing-key.create',
  'signing-key.delete',
  'agent.register',
  'agent.update',
  'agent.auto-upgrade',
  'agent.remove',
  'agent.pairing-key',
  'agent.pair',
  'agent.upgrade-now',
  'agent.migrate',
  'package.upload',
  'package.delete',
  'upgrade.create',
  'upgrade.start',
  'upgrade.pause',
  'upgrade.resume',
  'upgrade.cancel',
  'upgrade.retry',
  'upgrade.rollback',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const AUDIT_TARGETS = ['token', 'cluster', 'signing-key', 'agent', 'package', 'upgrade'] as const;
export type AuditTarget = (typeof AUDIT_TARGETS)[number];

/** What a route records when it is refused (its success is recorded by its service, in the change's transaction). */
export interface AuditedRoute {
  action: AuditAction;
  target: AuditTarget;
  /** The route parameter holding the target's id; none for a create. */
  param?: string;
}

export const AUDITED_ROUTE = 'lockstep:audited-route';

/**
 * Marks a state-changing route: every call is recorded, refused ones too. Published in the OpenAPI
 * document as `x-audit` (the access matrix test calls every route that has one and looks for its record).
 */
export const Audited = (action: AuditAction, target: AuditTarget, param?: string) =>
  applyDecorators(
    SetMetadata(AUDITED_ROUTE, { action, target, param } satisfies AuditedRoute),
    ApiExtension('x-audit', { action, target }),
  );

/** A POST that changes nothing anyone audits (a preview, a stream ticket); says so in `x-audit: false`. */
export const NotAudited = () => ApiExtension('x-audit', false);

/** The request as the access guard leaves it for the audit trail. */
export interface AuditedRequest {
  id?: string;
  principal?: Origin['actor'];
  auditedRoute?: AuditedRoute;
}

/** Who makes this call and under which request id: what a service hands its audit record. */
export const originOfRequest = (request: AuditedRequest): Origin => ({
  actor: request.principal ?? { kind: 'anonymous' },
  requestId: request.id ?? null,
});

/** The caller's Origin, for a service that records an audited change. */
export const CallerOrigin = createParamDecorator((_: unknown, ctx: ExecutionContext): Origin =>
  originOfRequest(ctx.switchToHttp().getRequest<AuditedRequest>()),
);
