import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// The reporter is plain JavaScript that Jest loads by path (jest.config.js).
const { databaseLines } = require('./support/summary-reporter.js') as {
  databaseLines(
    results: { testResults: FileResult[] },
    rootDir: string,
    env: Record<string, string | undefined>,
  ): string[];
};

interface FileResult {
  testFilePath: string;
  testResults: Array<{ ancestorTitles: string[]; title: string; status: string }>;
}

/** The closing lines of `npm test` about databases, from made-up results over made-up test files. */
describe('the summary reporter', () => {
  let root: string;
  const file = (name: string, source: string) => {
    const at = path.join(root, 'test', `${name}.e2e-spec.ts`);
    fs.writeFileSync(at, source);
    return at;
  };
  const cases = (suite: string, status: string, n: number) =>
    Array.from({ length: n }, (_, i) => ({ ancestorTitles: [suite, 'group'], title: `case ${i}`, status }));
  let results: { testResults: FileResult[] };

  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-reporter-'));
    fs.mkdirSync(path.join(root, 'test'));
    fs.mkdirSync(path.join(root, 'src'));
    const upgrades = file(
      'upgrades',
      "describeEachDatabase('upgrades', (kind) => {});\ndescribe('agent CLI [sqlite]', () => {});",
    );
    const chaos = file('chaos', "describe.each(kinds)('chaos: through kills [%s]', (kind) => {});");
    const replicas = file('replicas', "describeWithPostgres('two replicas [postgres]', () => {});");
    const demo = file('demo', "describe('the demo', () => {});");
    results = {
      testResults: [
        {
          testFilePath: upgrades,
          testResults: [
            ...cases('upgrades [sqlite]', 'passed', 5),
            ...cases('upgrades [sqlite]', 'pending', 1),
            ...cases('agent CLI [sqlite]', 'passed', 2),
          ],
        },
        { testFilePath: chaos, testResults: cases('chaos: through kills [sqlite]', 'failed', 1) },
        { testFilePath: replicas, testResults: cases('two replicas [postgres]', 'pending', 2) },
        { testFilePath: demo, testResults: cases('the demo', 'passed', 1) },
        { testFilePath: path.join(root, 'src', 'unit.spec.ts'), testResults: cases('a unit', 'passed', 9) },
      ],
    };
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('says what ran on SQLite, that PostgreSQL did not run and why, and how many cases that left out', () => {
    const lines = databaseLines(results, root, {
      LOCKSTEP_TEST_PG_MISSING: 'TEST_DATABASE_URL is unset, and testcontainers found no Docker engine (no socket)',
    });
    expect(lines).toEqual([
      'e2e suites by database:',
      '  SQLite      3 suites, 8 cases run, in 2 files: chaos, upgrades',
      '  PostgreSQL  not run: TEST_DATABASE_URL is unset, and testcontainers found no Docker engine (no socket)',
      // 5 + 1 run cases of the two suites declared per database; not the hand-written [sqlite] one, nor a case skipped on SQLite too.
      '              left out 6 cases: the PostgreSQL runs of 2 suites that ran on SQLite only, in: chaos, upgrades',
      '              and 2 PostgreSQL-only cases (among the skipped above), in: replicas',
      '              to run them: TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm test (or a Docker engine for testcontainers)',
      '  no database 1 case run, in 1 file: demo',
    ]);
  });

  it('lists both databases and leaves nothing out when PostgreSQL answered', () => {
    const withPg = {
      testResults: [
        ...results.testResults,
        { testFilePath: results.testResults[0].testFilePath, testResults: cases('upgrades [postgres]', 'passed', 5) },
        {
          testFilePath: results.testResults[2].testFilePath,
          testResults: cases('two replicas [postgres]', 'passed', 2),
        },
      ],
    };
    const lines = databaseLines(withPg, root, { LOCKSTEP_TEST_PG_URL: 'postgres://postgres@127.0.0.1:5432/test' });
    expect(lines.slice(0, 3)).toEqual([
      'e2e suites by database:',
      '  SQLite      3 suites, 8 cases run, in 2 files: chaos, upgrades',
      '  PostgreSQL  2 suites, 7 cases run, in 2 files: replicas, upgrades',
    ]);
    expect(lines.join('\n')).not.toMatch(/left out/);
  });

  it('prints nothing about databases when no e2e suite ran', () => {
    expect(databaseLines({ testResults: [results.testResults[4]] }, root, {})).toEqual([]);
  });
});
