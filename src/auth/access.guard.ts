import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { AUDITED_ROUTE, AuditedRequest, AuditedRoute } from '../audit/audit.decorators';
import { ForbiddenError, UnauthenticatedError } from '../common/errors';
import { ACCESS_RULE, AccessRule } from './access.decorators';
import { AuthService } from './auth.service';
import { Principal, roleAllows } from './principal';
import { FailedAttempts } from './rate-limits';
import { StreamTicketsService } from './stream-tickets.service';

/** The global guard: denies by default, then checks the bearer token against the route's rule. */
@Injectable()
export class AccessGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: AuthService,
    private readonly tickets: StreamTicketsService,
    private readonly failedAttempts: FailedAttempts,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest & AuditedRequest & { principal?: Principal }>();
    // First, so that a refusal below is recorded against the route (the exception filter reads it).
    request.auditedRoute = this.reflector.get<AuditedRoute | undefined>(AUDITED_ROUTE, context.getHandler());
    const rule = this.reflector.getAllAndOverride<AccessRule | undefined>(ACCESS_RULE, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!rule) {
      throw new ForbiddenError(
        'This route declares no access rule, so it is denied by default. This is a bug in Lockstep; please report it.',
        'NO_ACCESS_RULE',
      );
    }
    if (rule.kind === 'public') return true;

    const query = request.query as Record<string, unknown>;
    const ticket = typeof query.ticket === 'string' ? query.ticket : undefined;
    if (rule.kind === 'stream' && ticket && !request.headers.authorization) {
      request.principal = await this.failedAttempts.check(request.ip, () =>
        this.tickets.redeem(ticket, rule.scope, String((request.params as Record<string, unknown>)[rule.param])),
      );
      return true;
    }
    if (rule.kind === 'stream' && !request.headers.authorization) {
      throw new UnauthenticatedError(
        'No token: send "Authorization: Bearer <token>", or pass ?ticket= from POST /api/v1/stream-tickets (for EventSource).',
        'TOKEN_MISSING',
      );
    }
    const header = request.headers.authorization;
    const principal = await this.failedAttempts.check(request.ip, () => this.auth.principalFromHeader(header));
    // Known before the role check, so a 403 is recorded against the token that was refused.
    request.principal = principal;
    allow(rule, principal);
    return true;
  }
}

/** Throws unless the token's principal may take the route: agents only agent routes, API tokens the role the rule needs. */
function allow(rule: Exclude<AccessRule, { kind: 'public' }>, principal: Principal): void {
  if (rule.kind === 'agent') {
    if (principal.kind !== 'agent') {
      throw new ForbiddenError(
        'This route is for agents only; an agent calls it with the token it received when it paired.',
        'AGENT_ONLY',
      );
    }
    return;
  }
  const needed = rule.kind === 'stream' ? 'viewer' : rule.role;
  if (principal.kind === 'agent') {
    throw new ForbiddenError(
      'Agent tokens reach only /api/v1/agent/*; use an API token for this route.',
      'AGENT_TOKEN_NOT_ALLOWED',
    );
  }
  if (!roleAllows(principal.role, needed)) {
    const refusal = rule.kind === 'role' ? rule.refusal : undefined;
    throw new ForbiddenError(
      refusal ??
        `This needs the ${needed} role or higher; your token has the ${principal.role} role. Ask an admin for a token with that role.`,
      'ROLE_TOO_LOW',
    );
  }
}
