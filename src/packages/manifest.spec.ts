import { BadInputError } from '../common/errors';
import { normaliseEntryPath, parseManifest } from './manifest';

const entries = new Set(['manifest.json', 'migrate.js', 'bin/app']);
const valid = {
  product: 'acme-agent',
  version: '10.3.0',
  kind: 'full',
  prerequisites: { fromVersion: '>=10.1.0 <10.3.0', minFreeDiskMb: 512, os: ['linux'] },
  migration: 'migrate.js',
  notes: 'x',
};

const problemsOf = (manifest: unknown) => {
  try {
    parseManifest(typeof manifest === 'string' ? manifest : JSON.stringify(manifest), entries);
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(BadInputError);
    return ((error as BadInputError).details as Array<{ field: string }>).map((d) => d.field);
  }
};

describe('parseManifest', () => {
  it('accepts the documented manifest, with ./ paths too', () => {
    expect(parseManifest(JSON.stringify(valid), entries)).toMatchObject({
      product: 'acme-agent',
      version: '10.3.0',
      kind: 'full',
    });
    expect(parseManifest(JSON.stringify({ ...valid, migration: './migrate.js' }), entries).migration).toBe(
      './migrate.js',
    );
  });

  it.each([
    ['not JSON', '{"product": ', ['manifest']],
    ['not an object', '[1]', ['manifest']],
    ['a version that is not semver', { ...valid, version: '10.3' }, ['manifest.version']],
    [
      'a fromVersion that is not a range',
      { ...valid, prerequisites: { fromVersion: 'soon' } },
      ['manifest.prerequisites.fromVersion'],
    ],
    ['an unknown kind', { ...valid, kind: 'partial' }, ['manifest.kind']],
    ['a migration that is not in the archive', { ...valid, migration: 'missing.js' }, ['manifest.migration']],
    ['missing fields, each named', {}, ['manifest.kind', 'manifest.product', 'manifest.version']],
    ['an unknown field', { ...valid, colour: 'red' }, ['manifest.colour']],
    ['notes with a NUL (PostgreSQL cannot store it)', { ...valid, notes: 'fixed\u0000' }, ['manifest.notes']],
    ['a migration path with a newline', { ...valid, migration: 'migrate.js\nrm -rf /' }, ['manifest.migration']],
  ])('refuses %s', (_case, manifest, fields) => {
    expect(problemsOf(manifest).sort()).toEqual([...fields].sort());
  });

  it('normalises ./ prefixes and trailing slashes of entry names', () => {
    expect(normaliseEntryPath('./manifest.json')).toBe('manifest.json');
    expect(normaliseEntryPath('./bin/')).toBe('bin');
  });
});
