import type { INestApplication, Type } from '@nestjs/common';
import type { OpenAPIObject } from '@nestjs/swagger';
import Ajv, { type ErrorObject } from 'ajv';
import { length } from 'class-validator';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AuthService } from '../auth/auth.service';
import { FailedAttempts } from '../auth/rate-limits';
import { BadInputError, ForbiddenError } from '../common/errors';
import { createValidationPipe, RESERVED_KEYS } from '../common/validation';
import { isPrintableText, isSemverVersion, isSingleLineText } from '../common/validators';
import { AgentCommandsService } from './agent-commands.service';
import { AgentProtocolService } from './agent-protocol.service';
import {
  CommandStateDto,
  CompleteReportDto,
  HeartbeatAnswerDto,
  HeartbeatDto,
  ProgressReportDto,
} from './dto/agent-protocol.dto';
import { REPORTED_ENDS } from './agent-command.entity';
import { BACKUP_NAME } from '../protocol/agent-protocol';

/**
 * The agent protocol's hot routes (heartbeat, progress, complete) as native Fastify routes: every
 * agent calls them all the time, and Nest's pipeline (guard, pipes, interceptors, filters) costs
 * more than the work itself (docs/agent-protocol.md, "Serving"). They keep everything the Nest
 * routes give: the same agent-token check and failed-attempt limit, bodies checked by JSON schemas
 * compiled once with ajv (the same rules as the class-validator DTOs, which a property test keeps
 * in step), the same refusals word for word (a refused body is explained by the DTO's own
 * validation), errors in the API's one shape (Nest's exception filter answers them), the request
 * id and access log (root hooks), and their place in the OpenAPI document (documentAgentRoutes).
 * Pairing stays a Nest route: it is rare, and its rate limit is a Nest guard.
 */

/** Checks the DTOs run that JSON Schema has no words for, as ajv keywords: the very same functions. */
const TEXT_CHECKS = {
  semver: isSemverVersion,
  'facts-name': (v: string) => length(v, 1, 32) && isSingleLineText(v),
  'progress-message': (v: string) => length(v, 0, 500) && isPrintableText(v),
  'complete-error': (v: string) => length(v, 0, 2000) && isPrintableText(v),
  note: (v: string) => length(v, 1, 500) && isPrintableText(v),
} satisfies Record<string, (value: string) => boolean>;

type TextCheck = keyof typeof TEXT_CHECKS;
const text = (check: TextCheck) => ({ type: 'string', lockstepText: check });
const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
/** An optional field: class-validator's IsOptional lets null through as well as absence. */
const optional = (schema: object) => ({ anyOf: [{ type: 'null' }, schema] });
/** Keys naming JavaScript's object machinery are refused wherever free keys are allowed (src/common/validation.ts). */
const freeKeys = { not: { enum: [...RESERVED_KEYS] } };

const FACTS = {
  type: 'object',
  additionalProperties: false,
  properties: {
    os: optional(text('facts-name')),
    arch: optional(text('facts-name')),
    freeDiskMb: optional({ type: 'integer', minimum: 0, maximum: 2 ** 40 }),
    memoryMb: optional({ type: 'integer', minimum: 0, maximum: 2 ** 40 }),
    components: optional({
      type: 'object',
      maxProperties: 50,
      propertyNames: { pattern: '^[A-Za-z0-9_.-]{1,64}$', ...freeKeys },
      additionalProperties: { type: 'string', lockstepMaxUtf16: 200 },
    }),
  },
};

/** The schemas of the bodies, for ajv; each mirrors the DTO named beside it. */
export const AGENT_BODY_SCHEMAS = {
  /** HeartbeatDto */
  heartbeat: {
    type: 'object',
    additionalProperties: false,
    required: ['version', 'busy'],
    properties: {
      version: { anyOf: [{ type: 'null' }, text('semver')] },
      webappsVersion: { anyOf: [{ type: 'null' }, text('semver')] },
      busy: { type: 'boolean' },
      signingRevision: optional({ type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 }),
      facts: optional(FACTS),
      capabilities: optional({
        type: 'object',
        additionalProperties: false,
        properties: { remoteUpgrade: optional({ type: 'boolean' }) },
      }),
    },
  },
  /** ProgressReportDto */
  progress: {
    type: 'object',
    additionalProperties: false,
    required: ['phase', 'percent'],
    properties: {
      phase: { type: 'string', pattern: '^[a-z][a-z-]{0,31}$' },
      percent: { type: 'integer', minimum: 0, maximum: 100 },
      message: optional(text('progress-message')),
    },
  },
  /** CompleteReportDto */
  complete: {
    type: 'object',
    additionalProperties: false,
    required: ['status'],
    properties: {
      status: { enum: [...REPORTED_ENDS] },
      version: optional(text('semver')),
      error: optional(text('complete-error')),
      notes: optional({ type: 'array', maxItems: 20, items: text('note') }),
      backup: optional({ type: 'string', pattern: BACKUP_NAME.source }),
    },
  },
} as const;

const COMMAND_PARAMS = {
  type: 'object',
  required: ['commandId'],
  properties: { commandId: { type: 'string', pattern: UUID } },
} as const;

/**
 * One ajv for these routes: no type coercion, no removal of unknown fields, no defaults (Fastify's
 * own ajv does all three, which would accept "true" for true and drop unknown keys silently).
 */
export function createAgentAjv(): Ajv {
  const ajv = new Ajv({
    coerceTypes: false,
    removeAdditional: false,
    useDefaults: false,
    allErrors: false,
    strict: true,
  });
  ajv.addKeyword({
    keyword: 'lockstepText',
    type: 'string',
    schemaType: 'string',
    validate: (check: TextCheck, value: string) => TEXT_CHECKS[check](value),
    errors: false,
  });
  // JSON Schema's maxLength counts code points; the DTO's check counts UTF-16 units, as JavaScript does.
  ajv.addKeyword({
    keyword: 'lockstepMaxUtf16',
    type: 'string',
    schemaType: 'number',
    validate: (max: number, value: string) => value.length <= max,
    errors: false,
  });
  return ajv;
}

/** Where ajv's first refusal points, as a dotted field (the DTO's words are used whenever they exist). */
function fieldOf(error: ErrorObject): string {
  const path = error.instancePath
    .replace(/^\//, '')
    .replace(/\/(\d+)(?=\/|$)/g, '[$1]')
    .replace(/\//g, '.');
  const missing =
    (error.params as { missingProperty?: string; additionalProperty?: string }).missingProperty ??
    (error.params as { additionalProperty?: string }).additionalProperty;
  return [path, missing].filter(Boolean).join('.') || 'body';
}

/**
 * The native routes, on the application's Fastify instance; call before the application listens.
 * The services come from the application's container: one token cache, one database.
 */
export function registerAgentRoutes(app: INestApplication): void {
  const fastify = app.getHttpAdapter().getInstance() as FastifyInstance;
  const auth = app.get(AuthService);
  const failedAttempts = app.get(FailedAttempts);
  const protocol = app.get(AgentProtocolService);
  const commands = app.get(AgentCommandsService);
  const pipe = createValidationPipe();
  const ajv = createAgentAjv();
  // ajv keeps what it compiled per schema object: the params schema shared by two routes is compiled once.
  const validatorCompiler = ({ schema }: { schema: object }) => ajv.compile(schema);

  /** The calling agent, as the access guard checks an agent route (same refusals, same failed-attempt count). */
  const agentOf = async (request: FastifyRequest): Promise<string> => {
    const principal = await failedAttempts.check(request.ip, () =>
      auth.principalFromHeader(request.headers.authorization),
    );
    if (principal.kind !== 'agent')
      throw new ForbiddenError(
        'This route is for agents only; an agent calls it with the token it received when it paired.',
        'AGENT_ONLY',
      );
    return principal.agentId;
  };

  /**
   * The body when the schema accepted it. When it did not, the DTO's validation says why, in the
   * words every other route uses; should it accept what the schema refused, ajv's refusal stands.
   */
  const bodyOf = async <T>(request: FastifyRequest, dto: Type<T>): Promise<T> => {
    const refusal = request.validationError;
    if (!refusal) return request.body as T;
    if (refusal.validationContext === 'params') {
      throw new BadInputError('commandId must be a UUID.', [
        { field: 'commandId', problems: ['commandId must be a UUID'] },
      ]);
    }
    await pipe.transform(request.body, { type: 'body', metatype: dto });
    const first = (refusal as { validation?: ErrorObject[] }).validation?.[0];
    const field = first ? fieldOf(first) : 'body';
    throw new BadInputError(`Invalid request: ${field} ${first?.message ?? 'is not valid'}.`, [
      { field, problems: [`${field} ${first?.message ?? 'is not valid'}`] },
    ]);
  };
  const commandIdOf = (request: FastifyRequest) => (request.params as { commandId: string }).commandId;

  const options = (body: object, params?: object) => ({
    schema: { body, ...(params ? { params } : {}) },
    attachValidation: true,
    validatorCompiler,
  });

  fastify.post(
    '/api/v1/agent/heartbeat',
    options(AGENT_BODY_SCHEMAS.heartbeat),
    async (request): Promise<HeartbeatAnswerDto> => {
      const agentId = await agentOf(request);
      return protocol.heartbeat(agentId, await bodyOf(request, HeartbeatDto));
    },
  );
  fastify.post(
    '/api/v1/agent/commands/:commandId/progress',
    options(AGENT_BODY_SCHEMAS.progress, COMMAND_PARAMS),
    async (request): Promise<CommandStateDto> => {
      const agentId = await agentOf(request);
      return commands.reportProgress(agentId, commandIdOf(request), await bodyOf(request, ProgressReportDto));
    },
  );
  fastify.post(
    '/api/v1/agent/commands/:commandId/complete',
    options(AGENT_BODY_SCHEMAS.complete, COMMAND_PARAMS),
    async (request): Promise<CommandStateDto> => {
      const agentId = await agentOf(request);
      return commands.reportComplete(agentId, commandIdOf(request), await bodyOf(request, CompleteReportDto));
    },
  );
}

/** The DTOs the native routes' entries refer to, for SwaggerModule.createDocument's extraModels. */
export const AGENT_ROUTE_MODELS = [
  HeartbeatDto,
  HeartbeatAnswerDto,
  ProgressReportDto,
  CompleteReportDto,
  CommandStateDto,
];

/** The native routes' entries in the OpenAPI document, as the Nest routes' decorators would have written them. */
export function documentAgentRoutes(document: OpenAPIObject): void {
  const ref = (model: string) => ({ $ref: `#/components/schemas/${model}` });
  const json = (model: string) => ({ content: { 'application/json': { schema: ref(model) } } });
  const refusals = {
    '400': { description: 'The body or a parameter is not valid; details name each field.' },
    '401': { description: 'No agent token, or the token is unknown or revoked.' },
    '403': { description: 'The token is not an agent token.' },
    '429': {
      description:
        'Too many failed token checks from this address (AUTH_FAILURE_LIMIT); Retry-After says when to try again.',
    },
  };
  const operation = (operationId: string, summary: string, body: string, answer: string, withCommand: boolean) => ({
    post: {
      operationId,
      summary,
      tags: ['agent protocol'],
      security: [{ bearer: [] }],
      'x-access': { kind: 'agent' },
      // Reports, not changes anyone makes: what they change is in the event log (docs/audit.md).
      'x-audit': false,
      parameters: withCommand
        ? [{ name: 'commandId', in: 'path' as const, required: true, schema: { type: 'string', format: 'uuid' } }]
        : [],
      requestBody: { required: true, ...json(body) },
      responses: { '200': { description: '', ...json(answer) }, ...refusals },
    },
  });
  document.paths['/api/v1/agent/heartbeat'] = operation(
    'AgentProtocol_heartbeat',
    'Report version, work and facts; get commands, hold and the next poll time',
    'HeartbeatDto',
    'HeartbeatAnswerDto',
    false,
  );
  document.paths['/api/v1/agent/commands/{commandId}/progress'] = operation(
    'AgentProtocol_progress',
    'Report the phase and percent of a command (idempotent)',
    'ProgressReportDto',
    'CommandStateDto',
    true,
  );
  document.paths['/api/v1/agent/commands/{commandId}/complete'] = operation(
    'AgentProtocol_complete',
    'Report the end of a command (idempotent)',
    'CompleteReportDto',
    'CommandStateDto',
    true,
  );
}
