import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { backoffMs } from './backoff';

export interface DownloadRequest {
  url: string;
  token: string;
  sha256: string;
  size: number;
  dir: string;
  onProgress(percent: number): void;
}

/**
 * Downloads a package into `dir/<sha256>.tar.gz`. Bytes go to `<sha256>.part` first; a download cut
 * in the middle resumes from what is there with a byte range. The whole file is checked against the
 * sha256 before it is renamed into place, so a finished name always holds a verified package.
 */
export async function downloadPackage(request: DownloadRequest, retryForMs = DOWNLOAD_RETRY_FOR_MS): Promise<string> {
  const done = path.join(request.dir, `${request.sha256}.tar.gz`);
  if (fs.existsSync(done)) return done;
  const part = path.join(request.dir, `${request.sha256}.part`);
  const giveUpAt = Date.now() + retryForMs;
  for (let attempt = 1, corrupt = 0; ; attempt++) {
    const have = fs.existsSync(part) ? fs.statSync(part).size : 0;
    if (have < request.size) {
      try {
        await fetchInto(request, part, have);
      } catch (error) {
        // The server restarting or the network dropping is waited out on the agent's back-off (a
        // download resumes where it was cut); a refusal (4xx) is final.
        if (error instanceof DownloadRefused || Date.now() >= giveUpAt) throw error;
        await new Promise((r) => setTimeout(r, backoffMs(attempt)));
        continue;
      }
    }
    const actual = await sha256Of(part);
    if (actual === request.sha256) {
      fs.renameSync(part, done);
      return done;
    }
    fs.rmSync(part, { force: true });
    if (++corrupt >= 3) throw new Error(`the download's sha256 is ${actual}, not ${request.sha256}`);
  }
}

/** How long a download keeps retrying a server that does not answer (the phase timeout bounds the step anyway). */
export const DOWNLOAD_RETRY_FOR_MS = 10 * 60_000;

/** The server refused the download (4xx): retrying would get the same answer. */
class DownloadRefused extends Error {}

async function fetchInto(request: DownloadRequest, part: string, from: number): Promise<void> {
  const headers: Record<string, string> = { Authorization: `Bearer ${request.token}` };
  if (from > 0) headers.Range = `bytes=${from}-`;
  const res = await fetch(request.url, { headers });
  if (res.status === 416) return; // nothing left to fetch: the checksum decides
  if (res.status >= 400 && res.status < 500) throw new DownloadRefused(`download answered ${res.status}`);
  if (!res.ok || !res.body) throw new Error(`download answered ${res.status}`);
  // A server that ignored the range sends the whole file: start over.
  const append = from > 0 && res.status === 206;
  let received = append ? from : 0;
  // Each chunk is written before the next is read, so whatever arrived before a cut is on disk.
  const file = await fs.promises.open(part, append ? 'a' : 'w');
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      await file.write(chunk);
      received += chunk.length;
      request.onProgress(Math.min(100, Math.floor((received / request.size) * 100)));
    }
  } finally {
    await file.close();
  }
}

export async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}
