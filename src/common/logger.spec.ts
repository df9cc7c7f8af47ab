import { createLogger } from '../app.factory';
import { escapeControl } from './logger';

/** Everything written to stdout and stderr while `act` runs, split into lines. */
function capture(act: () => void): { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const write = (into: string[]) => (chunk: string | Uint8Array) => {
    into.push(
      ...String(chunk)
        .split('\n')
        .filter((line) => line !== ''),
    );
    return true;
  };
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation(write(out) as typeof process.stdout.write);
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(write(err) as typeof process.stderr.write);
  try {
    act();
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
  }
  return { out, err };
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const forged = 'alice\n[lockstep] 1  - 2026-01-01T00:00:00.000Z     LOG [AuthService] token root issued\r\u001b[2K';

describe('the logger createLogger builds', () => {
  describe('LOG_FORMAT=json', () => {
    const logger = createLogger({ logFormat: 'json', logLevel: 'verbose' });
    const lines = (act: () => void) => capture(act).out.map((line) => JSON.parse(line) as Record<string, unknown>);

    it('gives every line an ISO-8601 timestamp and a string message', () => {
      const [line] = lines(() => logger.log('listening', 'Lockstep'));
      expect(line).toEqual({
        timestamp: expect.stringMatching(ISO),
        level: 'log',
        pid: process.pid,
        context: 'Lockstep',
        message: 'listening',
      });
    });

    it('puts an object in fields of its own beside a string message (the access log)', () => {
      const entry = { requestId: 'r1', method: 'GET', path: '/api/v1/tokens', status: 404, durationMs: 1.25 };
      const [line] = lines(() => logger.log(entry, 'HTTP'));
      expect(line).toEqual({
        timestamp: expect.stringMatching(ISO),
        level: 'log',
        pid: process.pid,
        context: 'HTTP',
        message: 'requestId=r1 method=GET path=/api/v1/tokens status=404 durationMs=1.25',
        ...entry,
      });
    });

    it('keeps an object field named like a line key under fields, and takes a message field as the message', () => {
      const [line] = lines(() => logger.warn({ message: 'slow', level: 3, timestamp: 0 }, 'X'));
      expect(line).toMatchObject({
        message: 'slow',
        level: 'warn',
        timestamp: expect.stringMatching(ISO),
        fields: { level: 3, timestamp: 0 },
      });
    });

    it('writes an error with its stack; an Error as the message gives its name and message', () => {
      const { err } = capture(() => logger.error('pass failed', 'Error: boom\n    at x', 'UpgradeExecutor'));
      expect(JSON.parse(err[0])).toMatchObject({
        level: 'error',
        message: 'pass failed',
        stack: 'Error: boom\n    at x',
        context: 'UpgradeExecutor',
      });
      const [line] = capture(() => logger.warn(new TypeError('bad'), 'X')).out.map((l) => JSON.parse(l));
      expect(line).toMatchObject({ message: 'TypeError: bad', stack: expect.stringContaining('TypeError: bad') });
    });

    it('keeps a newline in a message inside the one JSON line', () => {
      const { out } = capture(() => logger.log(`token ${forged} issued`, 'AuthService'));
      expect(out).toHaveLength(1);
      expect(JSON.parse(out[0]).message).toBe(`token ${forged} issued`);
    });
  });

  describe('LOG_FORMAT=text', () => {
    const logger = createLogger({ logFormat: 'text', logLevel: 'verbose' });

    it('escapes newlines, carriage returns and ANSI escapes: a token name cannot forge a line', () => {
      const { out } = capture(() => logger.log(`token ${forged} issued`, 'AuthService'));
      expect(out).toHaveLength(1);
      expect(out[0]).toMatch(
        /^\[lockstep\] \d+  - \d{4}-\d{2}-\d{2}T[\d:.]+Z {5}LOG \[AuthService\] token alice\\n\[lockstep\] 1 .* issued\\r\\u001b\[2K issued$/,
      );
      expect(out[0]).not.toMatch(/[\u0000-\u001f]/);
    });

    it('writes an object on one line as key=value pairs, escaped', () => {
      const { out } = capture(() => logger.log({ method: 'GET', path: '/a\nb', status: 404 }, 'HTTP'));
      expect(out).toHaveLength(1);
      expect(out[0]).toMatch(/\[HTTP\] method=GET path="\/a\\nb" status=404$/);
    });

    it('prints a stack with no line that could pass for a log line', () => {
      const { out, err } = capture(() =>
        logger.error('pass failed', `Error: name ${forged}\n    at f (x.ts:1:1)`, 'X'),
      );
      expect(out).toEqual([]);
      expect(err[0]).toMatch(/ERROR \[X\] pass failed$/);
      expect(err.slice(1)).toEqual([
        expect.stringMatching(/^ {4}Error: name alice$/),
        expect.stringMatching(/^ {4}\[lockstep\] 1 .*\\r\\u001b\[2K$/),
        '    at f (x.ts:1:1)',
      ]);
    });
  });

  it('escapes C0 and C1 controls, DEL and the Unicode line separators, and leaves other text alone', () => {
    expect(escapeControl('a\nb\rc\td\u0000e\u001bf\u007fg\u0085h\u2028i')).toBe(
      'a\\nb\\rc\\td\\u0000e\\u001bf\\u007fg\\u0085h\\u2028i',
    );
    expect(escapeControl('plain ünïcode – ok')).toBe('plain ünïcode – ok');
  });
});
