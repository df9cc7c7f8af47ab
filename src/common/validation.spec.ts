import { ValidationError } from 'class-validator';
import { findReservedKey, toFieldProblems } from './validation';

const error = (
  property: string,
  constraints?: Record<string, string>,
  children: ValidationError[] = [],
): ValidationError => Object.assign(new ValidationError(), { property, constraints, children });

describe('toFieldProblems', () => {
  it.each([
    [
      'a bad top-level field',
      [error('role', { isIn: 'role must be one of: admin, operator, viewer' })],
      [{ field: 'role', problems: ['role must be one of: admin, operator, viewer'] }],
    ],
    [
      'an unknown field',
      [error('colour', { whitelistValidation: 'property colour should not exist' })],
      [{ field: 'colour', problems: ['colour is not a known field; remove it'] }],
    ],
    [
      'a nested field, named by its path',
      [error('options', undefined, [error('maxParallel', { min: 'maxParallel must not be less than 0' })])],
      [{ field: 'options.maxParallel', problems: ['options.maxParallel must not be less than 0'] }],
    ],
    [
      'an element of an array',
      [error('agentIds', undefined, [error('1', { isUuid: '1 must be a UUID' })])],
      [{ field: 'agentIds[1]', problems: ['agentIds[1] must be a UUID'] }],
    ],
    [
      'a nested field whose message names its path already, once (was target.target.all)',
      [error('target', undefined, [error('all', { isIn: 'target.all must be true when given' })])],
      [{ field: 'target.all', problems: ['target.all must be true when given'] }],
    ],
    [
      'a nested field named inside its message, not inside a longer word',
      [
        error('target', undefined, [
          error('all', { isIn: 'all must be true; allowed: all' }),
          error('agentIds', { isUuid: 'each of agentIds must be a UUID' }),
          error('addresses', { max: 'give at most 100 addresses.' }),
        ]),
      ],
      [
        { field: 'target.all', problems: ['target.all must be true; allowed: all'] },
        { field: 'target.agentIds', problems: ['each of target.agentIds must be a UUID'] },
        { field: 'target.addresses', problems: ['give at most 100 target.addresses.'] },
      ],
    ],
    [
      'something inside a nested field, named under the field by its message (labels.site)',
      [
        error('target', undefined, [
          error('labels', { isLabels: 'labels.site must be a string; labels.tier must be short; labels is long' }),
        ]),
      ],
      [
        {
          field: 'target.labels',
          problems: ['target.labels.site must be a string; target.labels.tier must be short; target.labels is long'],
        },
      ],
    ],
  ])('names %s', (_case, errors, expected) => {
    expect(toFieldProblems(errors)).toEqual(expected);
  });

  it('names a deeper field under a parent path', () => {
    const errors = [error('prerequisites', undefined, [error('os', { isArray: 'os must be a list' })])];
    expect(toFieldProblems(errors, 'manifest')).toEqual([
      { field: 'manifest.prerequisites.os', problems: ['manifest.prerequisites.os must be a list'] },
    ]);
  });
});

describe('findReservedKey', () => {
  it.each([
    [{ constructor: {} }, 'constructor'],
    [JSON.parse('{"__proto__": {"admin": true}}'), '__proto__'],
    [{ options: { prototype: 1 } }, 'options.prototype'],
    [{ agents: [{ name: 'a' }, { constructor: 'x' }] }, 'agents[1].constructor'],
  ])('finds the reserved key in %j at %s', (value, path) => {
    expect(findReservedKey(value)).toBe(path);
  });

  it('passes ordinary data, including the words as values', () => {
    expect(
      findReservedKey({ name: 'constructor', tags: ['__proto__'], nested: { deep: [1, null, 'prototype'] } }),
    ).toBeNull();
  });
});
