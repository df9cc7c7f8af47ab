import 'reflect-metadata';
import type { Type } from '@nestjs/common';
import * as fc from 'fast-check';
import { createValidationPipe } from '../common/validation';
import { AGENT_BODY_SCHEMAS, createAgentAjv } from './agent-protocol.routes';
import { CompleteReportDto, HeartbeatDto, ProgressReportDto } from './dto/agent-protocol.dto';

/**
 * The native agent routes check bodies with JSON schemas (ajv); every other route, and the error
 * path of these, with the class-validator DTOs. Both must accept exactly the same bodies: a body
 * one accepts and the other refuses would be a refusal that cannot be explained, or a body stored
 * that the API documents as refused.
 */
const ajv = createAgentAjv();
const pipe = createValidationPipe();

async function dtoAccepts(dto: Type<unknown>, body: unknown): Promise<boolean> {
  try {
    await pipe.transform(body, { type: 'body', metatype: dto });
    return true;
  } catch {
    return false;
  }
}

const schemaAccepts = (schema: object, body: unknown) => ajv.validate(schema, body) as boolean;

/** Values that sit on both sides of every rule the fields have (types, lengths, text, versions). */
const anyText = fc.oneof(
  fc.constantFrom(
    '',
    'linux',
    'x',
    'install',
    'rollback',
    'pre-check',
    'INSTALL',
    '9phase',
    'a'.repeat(32),
    'a'.repeat(33),
    'line\nbreak',
    'tab\there',
    'nul\u0000',
    'bidi\u202e',
    'lone\ud800',
    'emoji 🚀',
    '🚀'.repeat(110),
  ),
  fc.constantFrom(
    '10.2.0',
    '1.0.0-rc.1+build.5',
    ' 1.0.0',
    '1.0.0\n',
    'v1.0.0',
    '1.0',
    '01.0.0',
    `1.0.${'9'.repeat(70)}`,
  ),
  fc.constantFrom('succeeded', 'failed', 'rolled-back', 'cancelled', 'running'),
  fc.string({ maxLength: 40 }),
  fc.string({ minLength: 195, maxLength: 205 }),
  fc.string({ minLength: 495, maxLength: 505 }),
  fc.string({ minLength: 1995, maxLength: 2005 }),
);
const scalar = fc.oneof(
  anyText,
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -5, max: 105 }),
  fc.constantFrom(0, 2 ** 40, 2 ** 40 + 1, 1.5, -1),
);
const flatMap = fc.dictionary(
  fc.oneof(
    fc.constantFrom('db', 'x.y', 'bad key', '', 'constructor', '__proto__', 'prototype', 'k'.repeat(65)),
    fc.string({ maxLength: 8 }),
  ),
  scalar,
  { maxKeys: 52 },
);
const value = fc.oneof(
  { weight: 6, arbitrary: scalar },
  { weight: 1, arbitrary: flatMap },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 22 }) },
);

/** A body of the given fields: each present or not, with a value from the pool, plus now and then a field no DTO has. */
function bodies(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Record<string, unknown>> {
  const entries = Object.entries(fields).map(([name, arbitrary]) =>
    fc.option(
      arbitrary.map((v) => [name, v] as const),
      { nil: undefined, freq: 8 },
    ),
  );
  const stray = fc.oneof(
    { weight: 9, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('extra', 'constructor', '__proto__'), scalar) },
  );
  return fc.tuple(fc.tuple(...entries), stray).map(([present, extra]) => {
    const body: Record<string, unknown> = {};
    for (const entry of present) if (entry) body[entry[0]] = entry[1];
    // defineProperty: as JSON.parse makes "__proto__" an own key, not the prototype.
    if (extra)
      Object.defineProperty(body, extra[0], { value: extra[1], enumerable: true, configurable: true, writable: true });
    return body;
  });
}

/** A field's own good values most of the time, anything from the pool otherwise. */
const field = (good: fc.Arbitrary<unknown>) =>
  fc.oneof({ weight: 5, arbitrary: good }, { weight: 1, arbitrary: value });
const version = fc.constantFrom('10.2.0', '1.0.0-rc.1', null);
const shortText = fc.string({ maxLength: 40 });

const facts = bodies({
  os: field(fc.constantFrom('linux', 'darwin', '', 'a'.repeat(32), 'a'.repeat(33), '🚀'.repeat(16), '🚀'.repeat(17))),
  arch: field(fc.constantFrom('x64', 'arm64')),
  freeDiskMb: field(fc.constantFrom(0, 40000, 2 ** 40, 2 ** 40 + 1, -1)),
  memoryMb: field(fc.nat()),
  components: field(
    fc.dictionary(
      fc.constantFrom('db', 'web', 'x.y-z', 'k'.repeat(64), 'k'.repeat(65)),
      fc.constantFrom('1.2', '', 'v'.repeat(200), 'v'.repeat(201), '🚀'.repeat(100), '🚀'.repeat(101)),
      { maxKeys: 3 },
    ),
  ),
});
const capabilities = bodies({ remoteUpgrade: field(fc.boolean()) });
const heartbeat = bodies({
  version: field(version),
  webappsVersion: field(version),
  busy: field(fc.boolean()),
  signingRevision: field(fc.constantFrom(0, 1, 7, -1, 1.5, 2 ** 31 - 1, 2 ** 31)),
  facts: field(facts),
  capabilities: field(capabilities),
});
const progress = bodies({
  phase: field(fc.constantFrom('install', 'pre-check', 'verify', 'a'.repeat(32), 'a'.repeat(33))),
  percent: field(fc.integer({ min: -1, max: 101 })),
  message: field(
    fc.oneof(shortText, fc.constantFrom('m'.repeat(500), 'm'.repeat(501), '🚀'.repeat(250), '🚀'.repeat(251))),
  ),
});
const complete = bodies({
  status: field(fc.constantFrom('succeeded', 'failed', 'rolled-back')),
  version: field(fc.constantFrom('10.3.0', '2.0.0-beta.1')),
  error: field(fc.oneof(shortText, fc.constantFrom('e'.repeat(2000), 'e'.repeat(2001)))),
  notes: field(
    fc.array(
      fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.constantFrom('', 'n'.repeat(500), 'n'.repeat(501))),
      { maxLength: 21 },
    ),
  ),
  backup: field(
    fc.constantFrom('2026-12-01T02-00-00-000Z', 'b_1.x', '-x', '../data', 'b'.repeat(100), 'b'.repeat(101)),
  ),
});

describe('agent route schemas agree with the DTOs', () => {
  const cases: Array<[string, object, Type<unknown>, fc.Arbitrary<Record<string, unknown>>]> = [
    ['heartbeat', AGENT_BODY_SCHEMAS.heartbeat, HeartbeatDto, heartbeat],
    ['progress', AGENT_BODY_SCHEMAS.progress, ProgressReportDto, progress],
    ['complete', AGENT_BODY_SCHEMAS.complete, CompleteReportDto, complete],
  ];

  it.each(cases)('%s: the schema accepts a body exactly when the DTO does', async (_name, schema, dto, arbitrary) => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(arbitrary, async (body) => {
        const expected = await dtoAccepts(dto, body);
        if (expected) accepted++;
        expect({ body, schema: schemaAccepts(schema, body) }).toEqual({ body, schema: expected });
      }),
      { numRuns: 3000 },
    );
    // The pool must reach both sides: a run that only ever refused would prove nothing.
    expect(accepted).toBeGreaterThan(20);
  });

  it.each([
    [
      'heartbeat',
      AGENT_BODY_SCHEMAS.heartbeat,
      HeartbeatDto,
      {
        version: '10.2.0',
        busy: false,
        facts: { os: 'linux', freeDiskMb: 40000, components: { db: '1.2' } },
        capabilities: { remoteUpgrade: true },
      },
    ],
    ['heartbeat, version unknown', AGENT_BODY_SCHEMAS.heartbeat, HeartbeatDto, { version: null, busy: true }],
    [
      'progress',
      AGENT_BODY_SCHEMAS.progress,
      ProgressReportDto,
      { phase: 'install', percent: 42, message: 'downloaded 50%' },
    ],
    [
      'complete',
      AGENT_BODY_SCHEMAS.complete,
      CompleteReportDto,
      { status: 'succeeded', version: '10.3.0', notes: ['rebooted'] },
    ],
  ])('accepts what an agent sends: %s', async (_name, schema, dto, body) => {
    expect(schemaAccepts(schema, body)).toBe(true);
    expect(await dtoAccepts(dto as Type<unknown>, body)).toBe(true);
  });

  it.each([
    ['a version with a newline', { version: '1.0.0\n', busy: false }],
    ['busy as text', { version: '1.0.0', busy: 'false' }],
    ['an unknown field', { version: '1.0.0', busy: false, extra: 1 }],
    ['an unknown fact', { version: '1.0.0', busy: false, facts: { kernel: '6.1' } }],
    [
      'a reserved component key',
      JSON.parse('{"version":"1.0.0","busy":false,"facts":{"components":{"__proto__":"1"}}}'),
    ],
  ])('refuses %s, as the DTO does', async (_name, body) => {
    expect(schemaAccepts(AGENT_BODY_SCHEMAS.heartbeat, body)).toBe(false);
    expect(await dtoAccepts(HeartbeatDto, body)).toBe(false);
  });
});
