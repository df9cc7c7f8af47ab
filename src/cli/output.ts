import Table from 'cli-table3';

/** Where a command writes: results on stdout, progress and notes on stderr (so `--json | jq` works). */
export interface Output {
  json: boolean;
  result(text: string): void;
  note(text: string): void;
}

export const processOutput = (json: boolean): Output => ({
  json,
  result: (text) => void process.stdout.write(`${text}\n`),
  note: (text) => void process.stderr.write(`${text}\n`),
});

/** A borderless table with a header row: readable in a terminal and in a CI log alike. */
export function table(head: string[], rows: (string | number | null | undefined)[][]): string {
  const t = new Table({
    head,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 2 },
    chars: {
      top: '',
      'top-mid': '',
      'top-left': '',
      'top-right': '',
      bottom: '',
      'bottom-mid': '',
      'bottom-left': '',
      'bottom-right': '',
      left: '',
      'left-mid': '',
      mid: '',
      'mid-mid': '',
      right: '',
      'right-mid': '',
      middle: '',
    },
  });
  for (const row of rows) t.push(row.map((cell) => (cell === null || cell === undefined ? '-' : String(cell))));
  return t.toString().replace(/[ \t]+$/gm, '');
}

/** `{ "10.2.0": 3, "10.3.0": 1 }` as `10.2.0 ×3, 10.3.0 ×1`. */
export const counts = (byKey: Record<string, number>) =>
  Object.entries(byKey)
    .map(([key, n]) => `${key} ×${n}`)
    .join(', ') || '-';

export const asJson = (value: unknown) => JSON.stringify(value, null, 2);
