import { validateSync } from 'class-validator';
import {
  IsCountOrPercent,
  IsFlatMap,
  IsHostOrIp,
  IsPrintableText,
  IsSemverRange,
  IsSemverVersion,
  IsSingleLineText,
} from './validators';

class Probe {
  @IsSemverVersion() version: unknown;
  @IsSemverRange() range: unknown;
  @IsHostOrIp() address: unknown;
  @IsCountOrPercent() maxParallel: unknown;
  @IsFlatMap(['string', 'number', 'boolean'], 2) options: unknown;
}

const valid: Record<keyof Probe, unknown> = {
  version: '10.3.0',
  range: '>=10.1.0 <10.3.0',
  address: 'db1.example.lan',
  maxParallel: '25%',
  options: { stopSnmp: true },
};

const problemsWith = (field: keyof Probe, value: unknown) =>
  validateSync(Object.assign(new Probe(), valid, { [field]: value })).map((e) => e.property);

describe('validators', () => {
  it('accepts good values', () => {
    expect(validateSync(Object.assign(new Probe(), valid))).toEqual([]);
    for (const address of ['10.0.0.7', 'fe80::1', 'agent-7', 'agent_7.lan'])
      expect(problemsWith('address', address)).toEqual([]);
    for (const n of [0, 3, '0%', '100%']) expect(problemsWith('maxParallel', n)).toEqual([]);
    expect(problemsWith('version', '1.0.0-rc.1+build.5')).toEqual([]);
  });

  it.each([
    ['version', '10.3'],
    ['version', 'v10.3.0'],
    ['version', '1.0.0\n'],
    ['version', ' 1.0.0'],
    ['version', '=1.0.0'],
    ['version', 10],
    ['range', 'newest please'],
    ['address', 'not a host!'],
    ['address', ''],
    ['maxParallel', -1],
    ['maxParallel', 1.5],
    ['maxParallel', '101%'],
    ['maxParallel', '25'],
    ['options', { a: 1, b: 2, c: 3 }],
    ['options', { nested: { no: true } }],
    ['options', ['x']],
    ['options', { 'bad key': 1 }],
  ])('refuses %s = %j', (field, value) => {
    expect(problemsWith(field as keyof Probe, value)).toEqual([field]);
  });
});

describe('IsSingleLineText and IsPrintableText', () => {
  class Named {
    @IsSingleLineText() name: string;
    @IsPrintableText() text: string;
  }
  const problems = (name: string, text = 'ok') =>
    validateSync(Object.assign(new Named(), { name, text })).map((e) => e.property);

  it.each([['db-a1'], ['Zürich 東京 🚀'], ['a name with spaces']])('takes the name %j', (name) =>
    expect(problems(name)).toEqual([]),
  );
  it.each([
    ['a\nb'],
    ['a\rb'],
    ['tab\there'],
    ['nul\u0000'],
    ['del\u007f'],
    ['c1\u0085'],
    ['bidi\u202eevil'],
    ['lone \ud800 surrogate'],
    ['\udc00'],
  ])('refuses the name %j', (name) => expect(problems(name)).toEqual(['name']));
  it('takes line breaks and tabs in text, not other control characters', () => {
    expect(problems('n', 'line one\nline two\r\n\tindented')).toEqual([]);
    expect(problems('n', 'bell\u0007')).toEqual(['text']);
    expect(problems('n', 'nul\u0000')).toEqual(['text']);
  });
});
