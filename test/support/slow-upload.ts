import * as http from 'node:http';

/**
 * A multipart upload (upload-only) sent in two halves, so that the request is in flight across
 * whatever the test does between: the first half once the server answered "100 Continue" (Node
 * writes it as it takes the request in and runs the request's hooks in the same turn, so a signal
 * sent after `halfSent` meets a request in flight, not one whose headers are still unread), the
 * rest on `sendRest`.
 */
export function slowUpload(port: number, urlPath: string, token: string, archive: Buffer) {
  const boundary = 'lockstep-slow-upload';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="mode"\r\n\r\nupload-only\r\n`),
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n`,
    ),
    archive,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const half = Math.floor(body.length / 2);
  const request = http.request({
    port,
    host: '127.0.0.1',
    method: 'POST',
    path: urlPath,
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': `multipart/form-data; boundary=${boundary}`,
      'Content-Length': body.length,
      Expect: '100-continue',
    },
  });
  const answer = new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
    request.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
    });
    request.on('error', reject);
  });
  const halfSent = new Promise<void>((resolve) =>
    request.once('continue', () => request.write(body.subarray(0, half), () => resolve())),
  );
  request.flushHeaders();
  return { answer, halfSent, sendRest: () => request.end(body.subarray(half)) };
}
