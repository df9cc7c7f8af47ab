import {
  describeLabels,
  labelsProblems,
  matchesLabels,
  MAX_LABELS,
  parseLabelSelector,
  parseLabelSelectors,
  sameLabels,
} from './labels';

describe('labelsProblems', () => {
  it.each([
    ['none', {}],
    ['simple pairs', { site: 'eu-1', tier: 'db' }],
    ['a prefixed key and a value with every allowed sign', { 'acme.com/rack': 'R_12.b-3' }],
    ['one-character keys and values', { a: 'B', '0': '9' }],
    ['a key and a value of 63 characters', { ['k'.repeat(63)]: 'v'.repeat(63) }],
    ['as many labels as allowed', Object.fromEntries(Array.from({ length: MAX_LABELS }, (_, i) => [`k${i}`, 'v']))],
  ])('accepts %s', (_case, labels) => {
    expect(labelsProblems('labels', labels)).toEqual([]);
  });

  it.each<[string, unknown, string[]]>([
    ['null', null, ['labels must be an object of label keys to values, such as {"site": "eu-1"} ({} for none)']],
    ['an array', [], ['labels must be an object of label keys to values, such as {"site": "eu-1"} ({} for none)']],
    [
      'a string',
      'site=eu-1',
      ['labels must be an object of label keys to values, such as {"site": "eu-1"} ({} for none)'],
    ],
    [
      'too many labels',
      Object.fromEntries(Array.from({ length: MAX_LABELS + 1 }, (_, i) => [`k${i}`, 'v'])),
      ['labels must hold at most 32 labels (has 33)'],
    ],
    ['a value of the wrong type', { site: 1 }, [expect.stringMatching(/^labels\.site must be a string: /) as string]],
    ['an empty value', { site: '' }, ['labels.site must be 1-63 letters, digits, ".", "_" or "-" (was "")']],
    [
      'a value with a space',
      { site: 'eu 1' },
      ['labels.site must be 1-63 letters, digits, ".", "_" or "-" (was "eu 1")'],
    ],
    ['a value with "/"', { site: 'eu/1' }, [expect.stringMatching(/^labels\.site must be 1-63/) as string]],
    [
      'a value of 64 characters',
      { site: 'v'.repeat(64) },
      [expect.stringMatching(/^labels\.site must be 1-63/) as string],
    ],
  ])('refuses %s, naming the label', (_case, labels, problems) => {
    expect(labelsProblems('labels', labels)).toEqual(problems);
  });

  it.each([['Site'], ['-site'], ['site-'], ['.x'], ['a b'], [''], ['k'.repeat(64)], ['é']])(
    'refuses the key %j',
    (key) => {
      expect(labelsProblems('labels', { [key]: 'v' })).toEqual([
        expect.stringMatching(new RegExp(`^labels has keys that are not label keys: ${JSON.stringify(key)} \\(`)),
      ]);
    },
  );

  it('names the bad keys together and each bad value, under the field it is given', () => {
    expect(labelsProblems('target.labels', { Site: 'x', site: 'a b', Tier: 'y', ok: 'fine' })).toEqual([
      expect.stringMatching(/^target\.labels has keys that are not label keys: "Site", "Tier" /),
      'target.labels.site must be 1-63 letters, digits, ".", "_" or "-" (was "a b")',
    ]);
  });
});

describe('parseLabelSelector(s)', () => {
  it.each([
    ['site=eu-1', { key: 'site', value: 'eu-1' }],
    ['acme.com/rack=R_1', { key: 'acme.com/rack', value: 'R_1' }],
    ['site', null],
    ['site=', null],
    ['=eu-1', null],
    ['Site=eu-1', null],
    ['site=eu=1', null],
    ['site=eu 1', null],
  ])('reads %j as %j', (text, expected) => {
    expect(parseLabelSelector(text)).toEqual(expected);
  });

  it('gathers several into one map, the same pair twice once', () => {
    expect(parseLabelSelectors('label', ['site=eu-1', 'tier=db', 'site=eu-1'])).toEqual({
      labels: { site: 'eu-1', tier: 'db' },
    });
    expect(parseLabelSelectors('label', [])).toEqual({ labels: {} });
  });

  it('refuses a malformed one, one key with two values, and too many, naming the field', () => {
    expect(parseLabelSelectors('label', ['site=eu-1', 'tier']).problem).toMatch(
      /^label must be key=value, such as site=eu-1 \(was "tier"\)/,
    );
    expect(parseLabelSelectors('label', ['site=eu-1', 'site=us-2']).problem).toBe(
      'label asks site to be both eu-1 and us-2; an agent has one value per key',
    );
    expect(
      parseLabelSelectors(
        'label',
        Array.from({ length: 33 }, (_, i) => `k${i}=v`),
      ).problem,
    ).toBe('give at most 32 label selectors (gave 33)');
  });
});

describe('matchesLabels', () => {
  const agent = { site: 'eu-1', tier: 'db' };
  it.each([
    [{ site: 'eu-1' }, true],
    [{ site: 'eu-1', tier: 'db' }, true],
    [{}, true],
    [{ site: 'eu-2' }, false],
    [{ site: 'EU-1' }, false],
    [{ site: 'eu' }, false],
    [{ site: 'eu-1', tier: 'web' }, false],
    [{ site: 'eu-1', zone: 'a' }, false],
  ])('an agent with site=eu-1, tier=db matches %j: %s', (selector, expected) => {
    expect(matchesLabels(agent, selector)).toBe(expected);
  });

  it('matches nothing on an agent without labels but the empty selector', () => {
    expect(matchesLabels({}, { site: 'eu-1' })).toBe(false);
    expect(matchesLabels(null, { site: 'eu-1' })).toBe(false);
    expect(matchesLabels(undefined, {})).toBe(true);
  });

  it('does not take keys from the prototype', () => {
    expect(matchesLabels({}, { constructor: 'x' })).toBe(false);
    expect(matchesLabels({}, { toString: 'x' })).toBe(false);
  });
});

describe('sameLabels and describeLabels', () => {
  it('compares maps whatever their order', () => {
    expect(sameLabels({ a: '1', b: '2' }, { b: '2', a: '1' })).toBe(true);
    expect(sameLabels({ a: '1' }, { a: '1', b: '2' })).toBe(false);
    expect(sameLabels({ a: '1', b: '2' }, { a: '1' })).toBe(false);
    expect(sameLabels({ a: '1' }, { a: '2' })).toBe(false);
    expect(sameLabels(null, {})).toBe(true);
  });

  it('writes a selector as key=value pairs in its order', () => {
    expect(describeLabels({ site: 'eu-9', tier: 'db' })).toBe('site=eu-9, tier=db');
  });
});
