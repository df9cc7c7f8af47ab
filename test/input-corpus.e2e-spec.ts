import * as net from 'node:net';
import * as zlib from 'node:zlib';
import { givenCluster } from './support/builders';
import { openDescriptors, tempFiles } from './support/host';
import { describeEachDatabase, TEST_ADMIN_TOKEN, TestApp } from './support/test-app';

/**
 * The hostile-input corpus (issue 20): JSON bodies, headers, encodings, query strings and paths that
 * were thrown at Lockstep, kept as a table and sent byte for byte over a raw socket. Each must get a
 * 4xx (never a 2xx, never a 5xx, never silence); afterwards nothing is stored, no temporary file or
 * descriptor is left, and /health/ready answered within a second all along. The archive corpus is
 * in upload-hardening.e2e-spec.ts.
 */

interface Case {
  name: string;
  /** The request as raw bytes; `{port}` never appears: the socket is already connected. */
  raw: Buffer;
  /** A specific status when one is the only right answer; any 4xx otherwise. */
  status?: number;
}

const ADMIN = `Bearer ${TEST_ADMIN_TOKEN}`;

/** A well-formed HTTP/1.1 request around `body`, unless `headers` say otherwise. */
function request(
  method: string,
  target: string,
  headers: Record<string, string | undefined>,
  body: Buffer | string = '',
): Buffer {
  const payload = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  const all: Record<string, string | undefined> = {
    Host: 'localhost',
    Connection: 'close',
    'Content-Length': String(payload.length),
    ...headers,
  };
  const head = Object.entries(all)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${name}: ${value}`)
    .join('\r\n');
  return Buffer.concat([Buffer.from(`${method} ${target} HTTP/1.1\r\n${head}\r\n\r\n`, 'latin1'), payload]);
}

const json = (target: string, body: Buffer | string, extra: Record<string, string | undefined> = {}, method = 'POST') =>
  request(method, target, { Authorization: ADMIN, 'Content-Type': 'application/json', ...extra }, body);

function corpus(clusterId: string): Case[] {
  const clusters = '/api/v1/clusters';
  const cluster = `/api/v1/clusters/${clusterId}`;
  const pair = '/api/v1/agent/pair';
  const tokens = '/api/v1/tokens';
  const good = '{"name":"corpus","product":"acme-agent"}';
  const jsonCases: Array<[string, string | Buffer, number?]> = [
    ['an unterminated object', '{', 400],
    ['a missing value', '{"name":}', 400],
    ['trailing garbage', `${good}x`, 400],
    ['two objects', `${good}${good}`, 400],
    ['an array for an object', '[]', 400],
    ['a bare string', '"cluster"', 400],
    ['null', 'null', 400],
    ['a number', '123', 400],
    ['an empty body', '', 400],
    ['NaN', '{"name":NaN}', 400],
    ['single quotes', "{'name':'x'}", 400],
    ['a comment', '{"name":"x" /* hi */}', 400],
    [
      'a number too large for a double',
      '{"name":"c","product":"acme-agent","defaultOptions":{"maxParallel":1e999}}',
      400,
    ],
    ['a float for a whole number', '{"name":"c","product":"acme-agent","defaultOptions":{"maxParallel":1.5}}', 400],
    ['a string for a number', '{"name":"c","product":"acme-agent","defaultOptions":{"maxParallel":"3"}}', 400],
    ['a negative number', '{"name":"c","product":"acme-agent","defaultOptions":{"maxParallel":-1}}', 400],
    ['a name that is an object', '{"name":{"$gt":""},"product":"acme-agent"}', 400],
    ['a name that is an array', '{"name":["a"],"product":"acme-agent"}', 400],
    ['a NUL in a name', '{"name":"a\\u0000b","product":"acme-agent"}', 400],
    ['a newline in a name', '{"name":"a\\nb","product":"acme-agent"}', 400],
    ['a lone surrogate in a name', '{"name":"a\\ud800","product":"acme-agent"}', 400],
    ['an empty name', '{"name":"","product":"acme-agent"}', 400],
    ['a name of 10,000 characters', `{"name":"${'n'.repeat(10_000)}","product":"acme-agent"}`, 400],
    ['an unknown field', '{"name":"c","product":"acme-agent","owner":"me"}', 400],
    ['a constructor key', '{"name":"c","product":"acme-agent","constructor":{"prototype":{}}}', 400],
    ['a __proto__ key', '{"name":"c","product":"acme-agent","__proto__":{"isAdmin":true}}', 400],
    ['nesting 2,000 deep', `${'['.repeat(2000)}${']'.repeat(2000)}`, 400],
    ['a UTF-8 byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"name":"c"')]), 400],
    [
      'invalid UTF-8',
      Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xc3, 0x28]), Buffer.from('","product":"acme-agent"}')]),
      400,
    ],
  ];
  const cases: Case[] = jsonCases.map(([name, body, status]) => ({
    name: `JSON: ${name}`,
    raw: json(clusters, body),
    status,
  }));

  cases.push(
    {
      name: 'JSON: a body over MAX_JSON_BODY_BYTES',
      raw: json(clusters, `{"name":"${'x'.repeat(1024 * 1024 + 10)}"}`),
      status: 413,
    },
    {
      name: 'JSON: null options in a PATCH',
      raw: json(cluster, '{"defaultOptions":{"maxParallel":null}}', {}, 'PATCH'),
      status: 400,
    },
    { name: 'JSON: a role outside the list', raw: json(tokens, '{"name":"t","role":"root"}'), status: 400 },
    { name: 'JSON: pairing with a key that is a number', raw: json(pair, '{"pairingKey":12345}'), status: 400 },
    {
      name: 'JSON: pairing with 1,500 nested facts',
      raw: json(pair, '{"pairingKey":"lsp_x","facts":' + '{"a":'.repeat(1500) + '1' + '}'.repeat(1501)),
      status: 400,
    },

    // Types and encodings
    {
      name: 'type: JSON sent as text/plain',
      raw: request('POST', clusters, { Authorization: ADMIN, 'Content-Type': 'text/plain' }, good),
      status: 415,
    },
    {
      name: 'type: a form body',
      raw: request(
        'POST',
        clusters,
        { Authorization: ADMIN, 'Content-Type': 'application/x-www-form-urlencoded' },
        'name=c&product=acme-agent',
      ),
      status: 415,
    },
    { name: 'type: no Content-Type', raw: request('POST', clusters, { Authorization: ADMIN }, good), status: 415 },
    {
      name: 'type: a Latin-1 charset',
      raw: json(clusters, good, { 'Content-Type': 'application/json; charset=latin1' }),
      status: 415,
    },
    {
      name: 'type: a UTF-16 charset',
      raw: json(clusters, Buffer.from(good, 'utf16le'), { 'Content-Type': 'application/json; charset=utf-16' }),
      status: 415,
    },
    {
      name: 'encoding: an unknown Content-Encoding',
      raw: json(clusters, good, { 'Content-Encoding': 'compress' }),
      status: 415,
    },
    { name: 'encoding: gzip that is not gzip', raw: json(clusters, good, { 'Content-Encoding': 'gzip' }), status: 400 },
    {
      name: 'encoding: truncated gzip',
      raw: json(clusters, zlib.gzipSync(good).subarray(0, 12), { 'Content-Encoding': 'gzip' }),
      status: 400,
    },
    {
      name: 'encoding: deflate that is not deflate',
      raw: json(clusters, good, { 'Content-Encoding': 'deflate' }),
      status: 400,
    },
    { name: 'encoding: br that is not br', raw: json(clusters, good, { 'Content-Encoding': 'br' }), status: 400 },
    {
      name: 'encoding: a gzip bomb (64 MB of spaces in 64 KB)',
      raw: json(clusters, zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20)), { 'Content-Encoding': 'gzip' }),
      status: 413,
    },
    {
      name: 'encoding: gzip twice, declared once',
      raw: json(clusters, zlib.gzipSync(zlib.gzipSync(good)), { 'Content-Encoding': 'gzip' }),
      status: 400,
    },
    {
      name: 'encoding: a corrupt body on /health/ready',
      raw: request('POST', '/health/ready', { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }, 'nope'),
    },

    // Headers
    {
      name: 'header: Authorization without Bearer',
      raw: json(clusters, good, { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }),
      status: 401,
    },
    {
      name: 'header: a token of 8 KB',
      raw: json(clusters, good, { Authorization: `Bearer lsk_${'a'.repeat(8000)}` }),
      status: 401,
    },
    {
      name: 'header: a token with bytes outside ASCII',
      raw: Buffer.concat([json(clusters, good, { Authorization: 'Bearer lsk_\xff\xfe\xfd' })]),
      status: 401,
    },
    {
      name: 'header: two Authorization headers',
      raw: request(
        'POST',
        clusters,
        { Authorization: ADMIN, 'Content-Type': 'application/json', 'authorization ': 'Bearer other' },
        good,
      ),
      status: 400,
    },
    { name: 'header: headers over 16 KB', raw: json(clusters, good, { 'X-Padding': 'p'.repeat(20_000) }), status: 431 },
    {
      name: 'header: Content-Length and Transfer-Encoding both',
      raw: json(clusters, good, { 'Transfer-Encoding': 'chunked' }),
      status: 400,
    },
    {
      name: 'header: a Content-Length that is not a number',
      raw: json(clusters, good, { 'Content-Length': 'ten' }),
      status: 400,
    },
    { name: 'header: a negative Content-Length', raw: json(clusters, good, { 'Content-Length': '-1' }), status: 400 },
    {
      name: 'header: a broken chunked body',
      raw: Buffer.from(
        `POST ${clusters} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ${ADMIN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      ),
      status: 400,
    },
    {
      name: 'header: a bare LF line ending',
      raw: Buffer.from(`GET /health/ready HTTP/1.1\nHost: x\nConnection: close\n\n`),
      status: 400,
    },
    {
      name: 'header: a space before the colon',
      raw: Buffer.from(`GET ${clusters} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization : ${ADMIN}\r\n\r\n`),
      status: 400,
    },
    {
      name: 'header: an X-Request-Id that forges a log line',
      raw: request('GET', clusters, { 'X-Request-Id': 'x\r\nX-Injected: 1' }),
    },

    // Query strings and paths
    {
      name: 'query: a negative limit',
      raw: request('GET', `${cluster}/upgrades?limit=-1`, { Authorization: ADMIN }),
      status: 400,
    },
    {
      name: 'query: a limit that is not a number',
      raw: request('GET', `${cluster}/upgrades?limit=ten`, { Authorization: ADMIN }),
      status: 400,
    },
    {
      name: 'query: a limit given twice',
      raw: request('GET', `${cluster}/upgrades?limit=1&limit=2`, { Authorization: ADMIN }),
      status: 400,
    },
    {
      name: 'query: a limit as an object',
      raw: request('GET', `${cluster}/upgrades?limit[gt]=1`, { Authorization: ADMIN }),
      status: 400,
    },
    {
      name: 'query: an unknown parameter',
      raw: request('GET', `${cluster}/upgrades?sort=desc`, { Authorization: ADMIN }),
      status: 400,
    },
    {
      name: 'query: an offset past any list',
      raw: request('GET', `${cluster}/upgrades?offset=99999999999999999999`, { Authorization: ADMIN }),
      status: 400,
    },
    {
      name: 'path: an id that is not a UUID',
      raw: request('GET', '/api/v1/clusters/not-a-uuid', { Authorization: ADMIN }),
      status: 400,
    },
    {
      name: 'path: an encoded NUL',
      raw: request('GET', '/api/v1/clusters/%00', { Authorization: ADMIN }),
      status: 400,
    },
    {
      name: 'path: a broken percent-encoding',
      raw: request('GET', '/api/v1/clusters/%zz', { Authorization: ADMIN }),
      status: 400,
    },
    {
      name: 'path: an encoded climb out',
      raw: request('GET', '/api/v1/clusters/..%2f..%2f..%2fetc%2fpasswd', { Authorization: ADMIN }),
      status: 400,
    },
    {
      name: 'path: a path of 8 KB',
      raw: request('GET', `/api/v1/clusters/${'a'.repeat(8000)}`, { Authorization: ADMIN }),
      status: 400,
    },
    {
      name: 'method: an unknown method on a route',
      raw: request('PROPFIND', clusters, { Authorization: ADMIN }),
      status: 404,
    },
  );
  return cases;
}

/** Sends raw bytes and reads the status line of the answer (null when the server closes without one). */
function send(port: number, raw: Buffer, timeoutMs = 10_000): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('error', () => undefined); // a reset after the answer is fine; silence is caught below
    socket.on('close', () => {
      clearTimeout(timer);
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(received);
      resolve(match ? Number(match[1]) : null);
    });
    // Not end(): a client that half-closes has its request aborted by Node before any answer.
    socket.write(raw);
  });
}

describeEachDatabase('the hostile-input corpus', (kind) => {
  let t: TestApp;
  let clusterId: string;
  let port: number;
  beforeAll(async () => {
    t = await TestApp.start(kind);
    clusterId = (await givenCluster(t, { name: 'corpus-target' })).id;
    port = Number(new URL(t.baseUrl).port);
  });
  afterAll(() => t.close());

  it('answers every case with a 4xx, stores nothing, leaks nothing, and stays ready throughout', async () => {
    const snapshot = async () => ({
      clusters: (await t.admin.get('/api/v1/clusters').expect(200)).body.length,
      tokens: (await t.admin.get('/api/v1/tokens').expect(200)).body.length,
      cluster: (await t.admin.get(`/api/v1/clusters/${clusterId}`).expect(200)).body,
    });
    const before = await snapshot();
    const descriptorsBefore = openDescriptors();
    // Built first: the server runs in this process, and compressing the bomb would stall it.
    const cases = corpus(clusterId);

    // A watcher asks /health/ready every 50 ms while the corpus runs; the slowest answer counts.
    let slowestReadyMs = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const started = performance.now();
        const res = await fetch(`${t.baseUrl}/health/ready`);
        await res.arrayBuffer();
        slowestReadyMs = Math.max(slowestReadyMs, performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    const wrong: string[] = [];
    for (const c of cases) {
      const status = await send(port, c.raw);
      const fine = status !== null && (c.status === undefined ? status >= 400 && status < 500 : status === c.status);
      if (!fine) wrong.push(`${c.name}: expected ${c.status ?? '4xx'}, got ${status ?? 'no answer'}`);
    }
    watching = false;
    await watcher;

    expect(wrong).toEqual([]);
    expect(slowestReadyMs).toBeLessThan(1000);
    expect(await snapshot()).toEqual(before);
    expect(tempFiles(t.dataDir)).toEqual([]);
    if (descriptorsBefore !== null) {
      // Sockets close a moment after their answer; a few may still be on their way out.
      const deadline = Date.now() + 3000;
      while (openDescriptors()! > descriptorsBefore + 2 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 100));
      expect(openDescriptors()).toBeLessThanOrEqual(descriptorsBefore + 2);
    }
  });
});
