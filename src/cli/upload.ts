import { SingleBar, Presets } from 'cli-progress';
import FormData from 'form-data';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { CliError, reach, type Connection, type ErrorBody, type Schemas } from './api';
import { exitCodeForStatus } from './exit-codes';

export type UploadAnswer = Schemas['PackageDto'] | Schemas['InstalledPackageDto'];

export interface UploadRequest {
  file: string;
  clusterId: string;
  /** Form fields besides the file: mode, and for mode=install target/policy/options as JSON text. */
  fields: Record<string, string>;
  /** Draw a byte bar on stderr (a terminal) or a line per 10% (a log). */
  progress: boolean;
}

/**
 * Streams the archive as multipart/form-data (form-data builds the framing; the file is read as it
 * is sent, never whole in memory) and reports the bytes sent. The answer's status tells a new
 * package (201) from the same bytes again (200).
 */
export async function uploadPackage(
  connection: Connection,
  request: UploadRequest,
): Promise<{ status: number; answer: UploadAnswer }> {
  const size = fileSize(request.file);
  const form = new FormData();
  for (const [name, value] of Object.entries(request.fields)) form.append(name, value);
  const meter = byteMeter(size, request.progress);
  form.append('file', fs.createReadStream(request.file).pipe(meter.counter), {
    filename: path.basename(request.file),
    contentType: 'application/gzip',
    knownLength: size,
  });
  // form-data is an old-style stream; a PassThrough makes it one fetch can send.
  const body = Readable.toWeb(form.pipe(new PassThrough())) as ReadableStream<Uint8Array>;
  const response = await reach(connection, () =>
    fetch(`${connection.url}/api/v1/clusters/${encodeURIComponent(request.clusterId)}/packages`, {
      method: 'POST',
      headers: { ...form.getHeaders(), Authorization: `Bearer ${connection.token}`, 'User-Agent': 'lockstep-cli' },
      body,
      duplex: 'half',
    }),
  ).finally(() => meter.stop());
  const text = await response.text();
  const parsed = parseJson(text);
  if (!response.ok) {
    const error = parsed as ErrorBody | undefined;
    throw new CliError(
      `upload refused: ${error?.code ?? `HTTP ${response.status}`}: ${error?.message ?? text.slice(0, 200)}`,
      error,
      exitCodeForStatus(response.status),
    );
  }
  return { status: response.status, answer: parsed as UploadAnswer };
}

function fileSize(file: string): number {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) throw new CliError(`${file} is not a file`);
    return stat.size;
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** Counts the file's bytes as they leave for the server: a bar on a terminal, 10% steps in a log. */
function byteMeter(total: number, show: boolean): { counter: Transform; stop(): void } {
  const tty = show && process.stderr.isTTY;
  const bar = tty
    ? new SingleBar(
        { format: 'upload [{bar}] {percentage}% {value}/{total} bytes', stream: process.stderr, hideCursor: true },
        Presets.legacy,
      )
    : undefined;
  bar?.start(total, 0);
  let sent = 0;
  let lastTenth = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sent += chunk.length;
      bar?.update(sent);
      const tenth = total > 0 ? Math.floor((sent / total) * 10) : 10;
      if (show && !tty && tenth > lastTenth) {
        lastTenth = tenth;
        process.stderr.write(`upload ${tenth * 10}% (${sent} of ${total} bytes)\n`);
      }
      done(null, chunk);
    },
  });
  return { counter, stop: () => bar?.stop() };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
