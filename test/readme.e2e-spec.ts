import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  Expectation,
  holdsField,
  ReadmeBlock,
  ReadmeCommand,
  walkthroughBlocks,
  WALKTHROUGH_HEADING,
} from './support/readme-blocks';
import { TEST_ADMIN_TOKEN, TestApp } from './support/test-app';

/**
 * README.md's "A first session with curl" (with its ### Packages and ### Upgrades), run as a
 * reader would: its fenced sh/bash/shell blocks, in order, concatenated into ONE `bash -euo
 * pipefail` process against a real server (SQLite). Which blocks count is decided in
 * ./support/readme-blocks.ts: from `## A first session with curl` to the next `#`/`##` heading.
 *
 * What the README assumes and the test provides, without rewriting its commands:
 * - `export LOCKSTEP=http://localhost:8080` and `export ADMIN=lsk_...` are the only lines whose
 *   values are replaced (by the test server's URL and TEST_ADMIN_TOKEN); the test fails if the
 *   README stops using these names.
 * - `npm` is a shell function running `npm --prefix <clone>`, as the README says one may, from a
 *   fresh temp folder: the packages the walk-through builds land there, not in the clone.
 * - `curl -N` (a stream) is cut after STREAM_S seconds, and a cut stream (exit 28) counts as
 *   success: a cluster's stream never ends. A stream the README shows ending (`event: end`) is
 *   the exception: it must close by itself within ENDING_STREAM_S, with that event last.
 *   Every other curl gets a --max-time of 20 s.
 * - `/tmp/lockstep-` (the reference agent's home and log) becomes `<temp folder>/lockstep-`, the
 *   one textual substitution, so that a reader's own agent in /tmp is never touched.
 * The reference agent the README starts in the background (`npm run agent ... &`) runs for real;
 * the bash process is its own process group, killed in afterAll.
 *
 * Asserted: every block runs to its end (exit 0); every `VAR=$(...)` got a value (not empty, not
 * jq's `null`); a command with an expected answer in a comment (`# 201 ...`, `# 400 {"code":...}`,
 * `# {"hold":false,...}`, `# retry: 3000`) gets it: the status through the refusal body's
 * `statusCode` (the README's commands use `curl -s`, which does not print it; a 2xx is a body
 * without one), and every `"key": value` the comment shows (placeholders such as "..." or "<id>"
 * left out) somewhere in the JSON answer; and no command gets a refusal the README does not show.
 */

const ROOT = path.resolve(__dirname, '..');
const STREAM_S = 2;
/** A stream the README shows ending (`event: end`) must end by itself within this. */
const ENDING_STREAM_S = 60;

interface CommandRun {
  output: string;
  ran: boolean;
  vars: Record<string, string>;
}

function script(blocks: ReadmeBlock[], baseUrl: string, work: string): string {
  const prelude = [
    `cd ${JSON.stringify(work)}`,
    `npm() { command npm --prefix ${JSON.stringify(ROOT)} "$@"; }`,
    `curl() {`,
    `  if [[ -n "\${README_STREAM_ENDS-}" ]]; then command curl --max-time ${ENDING_STREAM_S} "$@"; return; fi`,
    `  if [[ " $* " == *" -N "* ]]; then local rc=0; command curl --max-time ${STREAM_S} "$@" || rc=$?; [[ $rc == 28 ]] && return 0; return $rc; fi`,
    `  command curl --max-time 20 "$@"`,
    `}`,
    `__readme_mark() { printf '\\n\\x1eCMD %s\\n' "$1"; shift; for name in "$@"; do printf '\\x1eVAR %s %s\\n' "$name" "$(printf %s "\${!name-}" | base64 -w0)"; done; }`,
  ];
  const body: string[] = [];
  let replaced = 0;
  blocks.forEach((block, b) => {
    block.commands.forEach((command, c) => {
      let text = command.text.replace(/\/tmp\/lockstep-/g, `${work}/lockstep-`);
      if (command.expected?.sseEvent) text = `README_STREAM_ENDS=1 ${text}`;
      text = text.replace(/^export LOCKSTEP=\S+/, () => (replaced++, `export LOCKSTEP=${baseUrl}`));
      text = text.replace(/^export ADMIN=\S+/, () => (replaced++, `export ADMIN=${TEST_ADMIN_TOKEN}`));
      body.push(`# README.md:${command.line}`, text, `__readme_mark ${b}.${c} ${command.assigns.join(' ')}`);
    });
  });
  if (replaced !== 2)
    throw new Error(`README's walk-through no longer sets LOCKSTEP and ADMIN with export (${replaced} of 2 found)`);
  return [...prelude, ...body, ''].join('\n');
}

/** Splits the script's stdout at its marks: each command's output, and the variables it set. */
function readRuns(stdout: string): Map<string, CommandRun> {
  const runs = new Map<string, CommandRun>();
  const mark = /\n?\x1e(CMD|VAR) ([^\n]*)\n/g;
  let last = 0;
  let current: CommandRun | undefined;
  for (let match = mark.exec(stdout); match; match = mark.exec(stdout)) {
    const text = stdout.slice(last, match.index);
    last = match.index + match[0].length;
    if (match[1] === 'CMD') {
      current = { output: text, ran: true, vars: {} };
      runs.set(match[2], current);
    } else if (current) {
      const [name, value = ''] = match[2].split(' ');
      current.vars[name] = Buffer.from(value, 'base64').toString();
    }
  }
  runs.set('rest', { output: stdout.slice(last), ran: false, vars: {} });
  return runs;
}

/** The last event of a stream's output: its `event:` name and its `data:` parsed as JSON. */
function lastSseEvent(output: string): { event?: string; data?: unknown } {
  const messages = output.split(/\n\n+/).filter((message) => /^(event|data):/m.test(message));
  const last = messages[messages.length - 1] ?? '';
  const data = last
    .split('\n')
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(5).trimStart())
    .join('\n');
  return { event: /^event: ?(.*)$/m.exec(last)?.[1], data: parseJson(data) };
}

function parseJson(output: string): unknown {
  try {
    return JSON.parse(output);
  } catch {
    return undefined;
  }
}

describe(`README.md: ${WALKTHROUGH_HEADING} [sqlite]`, () => {
  const blocks = walkthroughBlocks(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
  let app: TestApp;
  let work: string;
  let pgid: number | undefined;
  let runs: Map<string, CommandRun>;
  let exit: { code: number | null; stderr: string };

  beforeAll(async () => {
    app = await TestApp.start('sqlite');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-readme-'));
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script(blocks, app.baseUrl, work)], {
      cwd: work,
      detached: true, // its own process group, with the agent it starts in the background
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CURL_HOME: work, HOME: process.env.HOME ?? work },
    });
    pgid = child.pid;
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    runs = readRuns(stdout);
    exit = { code, stderr };
  }, 120_000);

  afterAll(async () => {
    if (pgid) {
      try {
        process.kill(-pgid, 'SIGTERM');
      } catch {
        // the group is gone already
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // it stopped on SIGTERM
      }
    }
    await app?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('finds the walk-through: its blocks, in its sections', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(10);
    expect(blocks.map((block) => block.section)).toEqual(
      expect.arrayContaining([
        WALKTHROUGH_HEADING,
        `${WALKTHROUGH_HEADING} / Packages`,
        `${WALKTHROUGH_HEADING} / Upgrades`,
      ]),
    );
  });

  it('runs in one bash -euo pipefail process to the end, exit 0', () => {
    const rest = runs.get('rest')!;
    expect({ code: exit.code, stderr: exit.stderr.slice(-2000), unfinishedOutput: rest.output.slice(-2000) }).toEqual({
      code: 0,
      stderr: expect.any(String),
      unfinishedOutput: expect.any(String),
    });
  });

  it.each(
    blocks
      .map((block, b) => ({ block, b }))
      .map(({ block, b }) => [`README.md:${block.line} (${block.section})`, block, b] as const),
  )('%s', (_name, block, b) => {
    block.commands.forEach((command: ReadmeCommand, c: number) => {
      const where = `README.md:${command.line}: ${command.text.split('\n')[0]}`;
      const run = runs.get(`${b}.${c}`);
      if (!run)
        throw new Error(
          `${where}\ndid not complete (exit ${exit.code}):\n${exit.stderr.slice(-1500)}\noutput: ${runs.get('rest')!.output.slice(-1500)}`,
        );
      checkCommand(where, command, run);
    });
  });
});

/** A command's run against what the README shows: its variables set, its answer as the comment after it says. */
function checkCommand(where: string, command: ReadmeCommand, run: CommandRun): void {
  for (const name of command.assigns)
    expect({ where, name, value: run.vars[name] }).toEqual({
      where,
      name,
      value: expect.not.stringMatching(/^(null)?$/),
    });
  const json = parseJson(run.output.trim());
  const refusal = refusalStatus(json);
  const expected = command.expected;
  if (!expected) {
    // No answer shown: at least no refusal the reader is not told about.
    expect({ where, refusal, output: refusal ? run.output : '' }).toEqual({
      where,
      refusal: undefined,
      output: '',
    });
    return;
  }
  if (expected.sseEvent) {
    checkSseEvent(where, expected, run.output);
    return;
  }
  if (expected.sseRetry)
    expect({ where, output: run.output.split('\n') }).toEqual({
      where,
      output: expect.arrayContaining([expected.sseRetry]),
    });
  if (expected.status !== undefined && command.assigns.length === 0)
    checkStatus(where, expected.status, refusal, json, run.output);
  for (const field of expected.fields) {
    expect({
      where,
      field,
      found: holdsField(json, field.key, field.value),
      output: run.output.slice(0, 1500),
    }).toEqual({ where, field, found: true, output: expect.any(String) });
  }
}

/** The status of a refusal body (`statusCode`), or undefined for any other answer. */
function refusalStatus(json: unknown): number | undefined {
  return json &&
    typeof json === 'object' &&
    !Array.isArray(json) &&
    typeof (json as { statusCode?: unknown }).statusCode === 'number'
    ? (json as { statusCode: number }).statusCode
    : undefined;
}

/** A stream's last event is the one shown, with the fields shown. */
function checkSseEvent(where: string, expected: Expectation, output: string): void {
  const last = lastSseEvent(output);
  expect({ where, event: last.event, output: output.slice(-1500) }).toEqual({
    where,
    event: expected.sseEvent,
    output: expect.any(String),
  });
  for (const field of expected.fields)
    expect({ where, field, found: holdsField(last.data, field.key, field.value), data: last.data }).toEqual({
      where,
      field,
      found: true,
      data: last.data,
    });
}

/** `curl -s` prints no status: a refusal shows it in its body, and a 2xx is a body without one. */
function checkStatus(where: string, status: number, refusal: number | undefined, json: unknown, output: string): void {
  if (status >= 400) {
    expect({ where, status: refusal, output }).toEqual({ where, status, output: expect.any(String) });
    return;
  }
  const seen = refusal ?? (json !== undefined ? 200 : undefined);
  expect({ where, status: seen, output }).toEqual({ where, status: 200, output: expect.any(String) });
}
