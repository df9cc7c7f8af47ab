// Prints the closing lines of a run: first the one CI reads, "jest: N passed, N failed, N skipped",
// then which e2e suites ran on which database and, when PostgreSQL was not there, how many cases
// that left out and why (Jest counts only what it was given: suites never declared are not "skipped").
const fs = require('node:fs');
const path = require('node:path');

const LABEL = { sqlite: 'SQLite', postgres: 'PostgreSQL' };
/** Set by global-setup: why the e2e suites had no PostgreSQL, when they had none. */
const PG_MISSING_ENV = 'LOCKSTEP_TEST_PG_MISSING';
const PG_URL_ENV = 'LOCKSTEP_TEST_PG_URL';

/** The database a top-level suite names in its closing brackets: "upgrades [sqlite]", "... [sqlite, 20 MiB tmpfs]". */
function databaseOf(title) {
  const tag = /\[([^\]]+)\]\s*$/.exec(title ?? '');
  const kind = tag && tag[1].split(',')[0].trim();
  return kind === 'sqlite' || kind === 'postgres' ? kind : null;
}

/**
 * The suite names a test file runs once per database: describeEachDatabase('name', ...) in
 * test/support/test-app.ts, or describe.each(databases)('name [%s]', ...). Only those have a
 * PostgreSQL twin of their [sqlite] run; a "[sqlite]" suite written out by hand runs there alone.
 */
const declared = new Map();
function perDatabaseSuites(file) {
  if (!declared.has(file)) {
    let source = '';
    try {
      source = fs.readFileSync(file, 'utf8');
    } catch {
      // the file is gone: no twins known
    }
    const names = new Set();
    for (const m of source.matchAll(/describeEachDatabase\(\s*(['"`])((?:(?!\1)[^\\]|\\.)*)\1/g)) names.add(m[2]);
    for (const m of source.matchAll(/describe\.each\([^)]*\)\(\s*(['"`])((?:(?!\1)[^\\]|\\.)*?)\s*\[%s\]\1/g))
      names.add(m[2]);
    declared.set(file, names);
  }
  return declared.get(file);
}

const short = (file) => path.basename(file).replace(/\.e2e-spec\.[jt]s$/, '');
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `items` after `head`, wrapped to lines of about `width` characters, continued under `indent`. */
function wrap(head, items, indent, width = 110) {
  const lines = [];
  let line = head;
  for (const [i, item] of items.entries()) {
    const text = item + (i < items.length - 1 ? ',' : '');
    if (line.length + 1 + text.length > width && line.trim().length > 0) {
      lines.push(line);
      line = indent + text;
    } else {
      line += (line.endsWith(' ') || line === '' ? '' : ' ') + text;
    }
  }
  lines.push(line);
  return lines.join('\n');
}

/** The lines that say where the e2e suites ran; empty when no e2e suite was in the run. */
function databaseLines(results, rootDir, env = process.env) {
  const e2eRoot = path.join(rootDir, 'test') + path.sep;
  const per = { sqlite: new Map(), postgres: new Map() }; // file -> { suites, ran }
  const untagged = new Map(); // file -> cases run
  let leftOut = 0;
  const leftOutSuites = new Set();
  const leftOutFiles = new Set();
  let pgOnlySkipped = 0;
  const pgOnlyFiles = new Set();
  let anyE2e = false;
  const pgThere = Boolean(env[PG_URL_ENV]);

  for (const file of results.testResults) {
    if (!file.testFilePath.startsWith(e2eRoot)) continue;
    anyE2e = true;
    for (const test of file.testResults) {
      const suite = test.ancestorTitles[0] ?? '';
      const ran = test.status === 'passed' || test.status === 'failed';
      const kind = databaseOf(suite);
      if (!kind) {
        if (ran) untagged.set(file.testFilePath, (untagged.get(file.testFilePath) ?? 0) + 1);
        continue;
      }
      if (ran) {
        const entry = per[kind].get(file.testFilePath) ?? { suites: new Set(), ran: 0 };
        entry.suites.add(suite);
        entry.ran++;
        per[kind].set(file.testFilePath, entry);
      }
      if (pgThere) continue;
      if (kind === 'postgres' && !ran) {
        pgOnlySkipped++;
        pgOnlyFiles.add(short(file.testFilePath));
      }
      const name = suite.replace(/\s*\[[^\]]+\]\s*$/, '');
      if (kind === 'sqlite' && ran && perDatabaseSuites(file.testFilePath).has(name)) {
        leftOut++;
        leftOutSuites.add(suite);
        leftOutFiles.add(short(file.testFilePath));
      }
    }
  }
  if (!anyE2e) return [];

  const lines = ['e2e suites by database:'];
  const pad = (s) => s.padEnd(12);
  for (const kind of ['sqlite', 'postgres']) {
    const files = [...per[kind].entries()];
    if (files.length > 0) {
      const suites = files.reduce((n, [, e]) => n + e.suites.size, 0);
      const cases = files.reduce((n, [, e]) => n + e.ran, 0);
      lines.push(
        wrap(
          `  ${pad(LABEL[kind])}${plural(suites, 'suite')}, ${plural(cases, 'case')} run, in ${plural(files.length, 'file')}:`,
          files.map(([f]) => short(f)).sort(),
          ' '.repeat(14),
        ),
      );
    } else if (kind === 'postgres' && !pgThere) {
      lines.push(`  ${pad(LABEL[kind])}not run: ${env[PG_MISSING_ENV] || 'no PostgreSQL server was found'}`);
    } else {
      lines.push(`  ${pad(LABEL[kind])}no suite ran`);
    }
  }
  if (!pgThere && (leftOut > 0 || pgOnlySkipped > 0)) {
    const indent = ' '.repeat(14);
    if (leftOut > 0) {
      lines.push(
        wrap(
          `${indent}left out ${plural(leftOut, 'case')}: the PostgreSQL runs of ${plural(leftOutSuites.size, 'suite')} that ran on SQLite only, in:`,
          [...leftOutFiles].sort(),
          indent,
        ),
      );
    }
    if (pgOnlySkipped > 0) {
      lines.push(
        wrap(
          `${indent}${leftOut > 0 ? 'and ' : 'left out '}${plural(pgOnlySkipped, 'PostgreSQL-only case')} (among the skipped above), in:`,
          [...pgOnlyFiles].sort(),
          indent,
        ),
      );
    }
    lines.push(
      `${indent}to run them: TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm test (or a Docker engine for testcontainers)`,
    );
  }
  if (untagged.size > 0) {
    const cases = [...untagged.values()].reduce((a, b) => a + b, 0);
    lines.push(
      wrap(
        `  ${pad('no database')}${plural(cases, 'case')} run, in ${plural(untagged.size, 'file')}:`,
        [...untagged.keys()].map(short).sort(),
        ' '.repeat(14),
      ),
    );
  }
  return lines;
}

class SummaryReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
  }

  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests, numTodoTests } = results;
    const lines = [
      `jest: ${numPassedTests} passed, ${numFailedTests} failed, ${numPendingTests + numTodoTests} skipped`,
      ...databaseLines(results, this.rootDir),
    ];
    process.stdout.write(`\n${lines.join('\n')}\n`);
  }
}

module.exports = SummaryReporter;
module.exports.databaseLines = databaseLines;
