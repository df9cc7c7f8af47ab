import { applyDecorators, createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiExtension,
  ApiForbiddenResponse,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { UserRole } from './access-token.entity';
import { ErrorBodyDto } from '../common/openapi';
import { Principal } from './principal';

/** Every route states who may call it; the access guard refuses a route that states nothing. */
export type AccessRule =
  | { kind: 'public' }
  | { kind: 'role'; role: UserRole; refusal?: string }
  | { kind: 'agent' }
  | { kind: 'stream'; scope: string; param: string };

export const ACCESS_RULE = 'lockstep:access-rule';

const TOO_MANY_FAILURES = {
  type: ErrorBodyDto,
  description:
    'Too many failed token checks from this address (AUTH_FAILURE_LIMIT); Retry-After says when to try again.',
};

/**
 * Sets a route's rule for the access guard, and publishes it in the OpenAPI document as
 * `x-access` (the access matrix test checks every route against it).
 */
const accessRule = (rule: AccessRule) => {
  const { kind } = rule;
  const published =
    rule.kind === 'role'
      ? { kind, role: rule.role }
      : rule.kind === 'stream'
        ? { kind, scope: rule.scope, param: rule.param }
        : { kind };
  return applyDecorators(SetMetadata(ACCESS_RULE, rule), ApiExtension('x-access', published));
};

/** Open to anyone: health checks and the agent's pairing call only (the OpenAPI page is served outside Nest's routes). */
export const Public = () => accessRule({ kind: 'public' });

/**
 * Needs an API token whose role is at least `role` (viewer < operator < admin).
 * `refusal` replaces the default 403 message where a rule deserves its own words.
 */
export const RequireRole = (role: UserRole, refusal?: string) =>
  applyDecorators(
    accessRule({ kind: 'role', role, refusal }),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({
      type: ErrorBodyDto,
      description: 'No token, or the token is unknown, revoked or expired.',
    }),
    ApiTooManyRequestsResponse(TOO_MANY_FAILURES),
    ApiForbiddenResponse({
      type: ErrorBodyDto,
      description: `The token's role is below ${role}, or it is an agent token.`,
    }),
  );

/** Only for agents, with the token they received when pairing; they reach nothing else. */
export const AgentRoute = () =>
  applyDecorators(
    accessRule({ kind: 'agent' }),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ type: ErrorBodyDto, description: 'No agent token, or the token is unknown or revoked.' }),
    ApiTooManyRequestsResponse(TOO_MANY_FAILURES),
    ApiForbiddenResponse({ type: ErrorBodyDto, description: 'The token is not an agent token.' }),
  );

/**
 * An event stream: a viewer token in the Authorization header, or a stream ticket for exactly this
 * stream (`scope` and the id in route parameter `param`) in `?ticket=`.
 */
export const StreamRoute = (scope: string, param: string) =>
  applyDecorators(
    accessRule({ kind: 'stream', scope, param }),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({
      type: ErrorBodyDto,
      description: 'No token and no ticket, or the token or ticket is not valid for this stream.',
    }),
    ApiTooManyRequestsResponse(TOO_MANY_FAILURES),
    ApiForbiddenResponse({ type: ErrorBodyDto, description: 'An agent token.' }),
  );

/** The authenticated caller, as set by the access guard. */
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  return ctx.switchToHttp().getRequest<{ principal: Principal }>().principal;
});
