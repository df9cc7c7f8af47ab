/**
 * Reads the shell walk-through out of README.md, so that test/readme.e2e-spec.ts can run it as a
 * reader would and the README cannot drift from the product.
 *
 * The walk-through rule: every fenced code block whose info string is `sh`, `bash` or `shell`,
 * from the heading `## A first session with curl` up to the next heading of level 2 or higher
 * (`#` or `##`); its `###` subsections (Packages, Upgrades) are part of it.
 */

export const WALKTHROUGH_HEADING = 'A first session with curl';

export interface ReadmeCommand {
  /** The command as written, continuation lines joined with their backslash-newlines kept. */
  text: string;
  /** Line of the README where it starts (1-based). */
  line: number;
  /** `VAR` for each `VAR=$(...)` of the command: its output goes into that variable, not to stdout. */
  assigns: string[];
  /** The expected answer the README shows: a trailing `# ...` or the comment lines right after it. */
  expected?: Expectation;
}

export interface Expectation {
  raw: string;
  /** `# 201 ...`, `# 400 {...}`: the HTTP status the README says the command gets. */
  status?: number;
  /** `"key": scalar` pairs of the JSON the comment shows (placeholders like "..." or "<id>" left out). */
  fields: Array<{ key: string; value: unknown }>;
  /** Lines of a Server-Sent Events answer (`retry: 3000`), when the comment shows a stream. */
  sseRetry?: string;
  /**
   * The event a stream's answer ends with (`event: end`), when the comment shows one: the stream
   * must close by itself with it, and `fields` are then those of its `data:` line.
   */
  sseEvent?: string;
}

export interface ReadmeBlock {
  /** Heading path, e.g. "A first session with curl / Packages". */
  section: string;
  /** Line of the opening fence (1-based). */
  line: number;
  source: string;
  commands: ReadmeCommand[];
}

/** The fenced sh/bash/shell blocks of the walk-through, in order. */
export function walkthroughBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split('\n');
  const blocks: ReadmeBlock[] = [];
  let inside = false;
  const headings: string[] = [];
  let fence: { marker: string; info: string; line: number; body: string[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (fence) {
      if (line.trim().startsWith(fence.marker) && line.trim().replace(/`|~/g, '') === '') {
        if (inside && /^(sh|bash|shell)$/.test(fence.info)) {
          const source = fence.body.join('\n');
          blocks.push({
            section: headings.join(' / '),
            line: fence.line,
            source,
            commands: splitCommands(fence.body, fence.line + 1),
          });
        }
        fence = undefined;
      } else fence.body.push(line);
      continue;
    }
    const open = /^ {0,3}(`{3,}|~{3,})\s*([\w-]*)/.exec(line);
    if (open) {
      fence = { marker: open[1], info: open[2].toLowerCase(), line: i + 1, body: [] };
      continue;
    }
    const heading = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      const level = heading[1].length;
      if (level <= 2) {
        inside = heading[2] === WALKTHROUGH_HEADING;
        headings.length = 0;
      } else headings.length = Math.min(headings.length, level - 2);
      headings.push(heading[2]);
    }
  }
  return blocks;
}

/** The logical commands of a block, each with the expectation the README shows for it. */
function splitCommands(body: string[], firstLine: number): ReadmeCommand[] {
  const commands: ReadmeCommand[] = [];
  for (let i = 0; i < body.length; i++) {
    const line = body[i];
    if (!line.trim() || line.trim().startsWith('#')) continue;
    const start = i;
    const parts = [line];
    while (parts[parts.length - 1].endsWith('\\') && i + 1 < body.length) parts.push(body[++i]);
    const text = parts.join('\n');
    const assigns = [...text.matchAll(/(?:^|;\s*)([A-Z_][A-Z0-9_]*)=\$\(/g)].map((match) => match[1]);
    const command: ReadmeCommand = { text, line: firstLine + start, assigns };
    // A trailing comment on the last line (outside quotes: the README's never hold a " #").
    const trailing = / {2,}# (.*)$/.exec(parts[parts.length - 1]);
    const following: string[] = [];
    for (let j = i + 1; j < body.length && body[j].trim().startsWith('#'); j++)
      following.push(body[j].trim().replace(/^# ?/, ''));
    const expectation =
      parseExpectation(following.join('\n')) ?? (trailing ? parseExpectation(trailing[1]) : undefined);
    if (expectation) command.expected = expectation;
    commands.push(command);
  }
  return commands;
}

/**
 * A comment is an expected answer when it starts with a status (`201`, `400 {...}`), a JSON object,
 * an SSE field (`retry: 3000`: a stream's start), or shows an SSE event after prose (`# ... then:`,
 * `event: end` and its `data:` line: a stream's end); anything else (`# revoke one: ...`) is prose.
 */
export function parseExpectation(comment: string): Expectation | undefined {
  const text = comment.trim();
  const status = /^([1-5]\d\d)\b/.exec(text);
  const sse = /^retry: (\d+)/.exec(text);
  const sseEvent = /^event: (\S+)\ndata: (.*)$/m.exec(text);
  if (sse) return { raw: text, fields: [], sseRetry: `retry: ${sse[1]}` };
  if (sseEvent) return { raw: text, fields: jsonFields(sseEvent[2]), sseEvent: sseEvent[1] };
  if (!status && !text.startsWith('{')) return undefined;
  return { raw: text, status: status ? Number(status[1]) : undefined, fields: jsonFields(text) };
}

/** The `"key": scalar` pairs a comment shows, placeholders ("...", "<id>") left out. */
function jsonFields(text: string): Expectation['fields'] {
  const fields: Expectation['fields'] = [];
  const pair = /"(\w+)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?\b|true\b|false\b|null\b|\[\])/g;
  for (let match = pair.exec(text); match; match = pair.exec(text)) {
    const value: unknown = JSON.parse(match[2]);
    if (typeof value === 'string' && (value.includes('...') || value.includes('<'))) continue;
    fields.push({ key: match[1], value });
  }
  return fields;
}

/** Whether some object anywhere in `json` has `key` set to `value` (deep equality). */
export function holdsField(json: unknown, key: string, value: unknown): boolean {
  if (Array.isArray(json)) return json.some((item) => holdsField(item, key, value));
  if (json && typeof json === 'object') {
    const record = json as Record<string, unknown>;
    if (key in record && JSON.stringify(record[key]) === JSON.stringify(value)) return true;
    return Object.values(record).some((item) => holdsField(item, key, value));
  }
  return false;
}
