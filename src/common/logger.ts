import { ConsoleLogger, type LogLevel } from '@nestjs/common';
import { inspect } from 'node:util';

/** C0 and C1 control characters (newline, carriage return, ESC of ANSI sequences...), DEL, and U+2028/U+2029. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Writes control characters as escapes, so text from outside (a token's name, a path) cannot start a line or colour the terminal. */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => NAMED[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Keys every JSON line has; an object's own fields of these names go under `fields`. */
const RESERVED = new Set(['timestamp', 'level', 'pid', 'context', 'message', 'stack', 'fields']);

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  [Object.prototype, null].includes(Object.getPrototypeOf(value) as object | null);

/** What Nest's own formatting does with a function: a class logs its name, any other function is called for the message. */
function resolve(message: unknown): unknown {
  if (typeof message !== 'function') return message;
  return Function.prototype.toString.call(message).startsWith('class ')
    ? (message as { name: string }).name
    : resolve((message as () => unknown)());
}

/** A field's value in key=value text: a plain word as it is, anything else as JSON. */
function scalar(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=\\]+$/.test(value) ? value : JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value); // a bigint, a cycle
  }
}

/** One line of text for any message: a string as it is, an object as key=value pairs (the access log's entries), an Error as name: message. */
export function messageText(message: unknown): string {
  const value = resolve(message);
  if (typeof value === 'string') return value;
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (isPlainObject(value)) {
    const { message: text, ...fields } = value;
    const pairs = Object.entries(typeof text === 'string' ? fields : value).map(
      ([key, field]) => `${key}=${scalar(field)}`,
    );
    return [...(typeof text === 'string' ? [text] : []), ...pairs].join(' ');
  }
  return inspect(value, { compact: true, breakLength: Infinity, depth: 5 });
}

/**
 * Lockstep's logger: Nest's ConsoleLogger with its formatting hooks overridden (docs/operations.md).
 * - JSON (one object per line): `timestamp` is ISO-8601 UTC, `message` is always a string; an object
 *   logged as the message (the access log's entries) gives its fields as fields of the line, an
 *   Error its name and stack.
 * - Text: ISO-8601 timestamps, and control characters in messages, contexts and stacks escaped, so a
 *   token name or a path holding a newline or an ANSI sequence cannot forge or hide a line.
 */
export class LockstepLogger extends ConsoleLogger {
  protected override getTimestamp(): string {
    return new Date().toISOString();
  }

  protected override printAsJson(
    message: unknown,
    options: { context: string; logLevel: LogLevel; writeStreamType?: 'stdout' | 'stderr'; errorStack?: unknown },
  ): void {
    const value = resolve(message);
    const line: Record<string, unknown> = {
      timestamp: new Date().toISOString(),
      level: options.logLevel,
      pid: process.pid,
    };
    if (options.context) line.context = options.context;
    line.message = isPlainObject(value) && typeof value.message === 'string' ? value.message : messageText(value);
    if (isPlainObject(value)) {
      const clashing: Record<string, unknown> = {};
      for (const [key, field] of Object.entries(value)) {
        if (key === 'message' && typeof field === 'string') continue;
        if (RESERVED.has(key)) clashing[key] = field;
        else line[key] = field;
      }
      if (Object.keys(clashing).length) line.fields = clashing;
    }
    const stack = options.errorStack ?? (value instanceof Error ? value.stack : undefined);
    if (stack !== undefined) line.stack = typeof stack === 'string' ? stack : messageText(stack);
    // Nest's serialiser: Map, Set, bigint and Error fields written as text, oversized lines truncated.
    process[options.writeStreamType ?? 'stdout'].write(`${this.stringifyJsonLogObject(line)}\n`);
  }

  protected override stringifyMessage(message: unknown): string {
    return escapeControl(messageText(message));
  }

  protected override formatContext(context: string): string {
    return super.formatContext(context ? escapeControl(context) : context);
  }

  /**
   * A stack's first lines carry the error's message, which may hold outside text: each line is
   * escaped, and any line that does not start with white space (a frame does) is indented, so no
   * line of it can pass for a log line.
   */
  protected override printStackTrace(stack: string): void {
    if (!stack || this.options.json) return;
    super.printStackTrace(
      String(stack)
        .split('\n')
        .map((line) => escapeControl(line))
        .map((line) => (/^\s/.test(line) ? line : `    ${line}`))
        .join('\n'),
    );
  }
}
