import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { checkJsonBody } from './error-body';

/** The compressions a JSON body may come in (as Express's body parser took them). */
const DECODERS: Record<string, () => zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};

/**
 * Inflates a compressed JSON body before it is read, so that the body limit counts what it inflates
 * to (a small gzip bomb is a 413) and a corrupt stream is the client's 400, not a 500.
 */
function decompress(
  request: FastifyRequest,
  _reply: FastifyReply,
  payload: Readable,
  done: (error: Error | null, stream?: Readable) => void,
): void {
  const encoding = request.headers['content-encoding']?.trim().toLowerCase();
  if (
    !encoding ||
    encoding === 'identity' ||
    !(request.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')
  )
    return done(null, payload);
  const decoder = DECODERS[encoding];
  if (!decoder)
    return done(
      Object.assign(new Error(`unsupported content encoding ${encoding}`), {
        type: 'encoding.unsupported',
        status: 415,
      }),
    );
  const inflated = Object.assign(decoder(), { receivedEncodedLength: 0 });
  // Registered first, so the error Fastify then reads is already marked as the client's.
  inflated.on('error', (error: Error) => Object.assign(error, { type: 'encoding.corrupt', status: 400, expose: true }));
  // Fastify checks Content-Length against the bytes that came over the wire, not the inflated ones.
  payload.on('data', (chunk: Buffer) => (inflated.receivedEncodedLength += chunk.length));
  done(null, payload.pipe(inflated));
}

/** The charset a Content-Type names, lower-cased; JSON without one is UTF-8 (RFC 8259). */
function charsetOf(contentType: string | undefined): string {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '')?.[1];
  return (charset ?? 'utf-8').toLowerCase();
}

/** JSON.parse's refusal, in the shape the error mapper reads (src/common/error-body.ts). */
const malformed = () => Object.assign(new Error('malformed JSON'), { type: 'entity.parse.failed', status: 400 });

/**
 * The only bodies Lockstep reads: JSON (UTF-8, bounded in size and depth, an object or an array at
 * the top as every route takes) and multipart uploads, left unread for the upload's own streaming
 * parser (src/packages/upload-receiver.ts). Any other type is a 415 that says what to send.
 */
export function registerBodyParsers(fastify: FastifyInstance, maxJsonBodyBytes: number): void {
  fastify.removeAllContentTypeParsers();
  fastify.addHook('preParsing', decompress);
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: maxJsonBodyBytes },
    (request: FastifyRequest, body: Buffer, done: (error: Error | null, value?: unknown) => void) => {
      try {
        checkJsonBody(request, null, body, charsetOf(request.headers['content-type']));
        // A byte order mark is no JSON, but some clients (Windows tools) send one: it is dropped.
        const text = body.toString('utf8').replace(/^\uFEFF/, '');
        // An empty body is no body (a POST of a verb with nothing to say), as Express's parser had it.
        if (!text.trim()) return done(null, {});
        const first = /\S/.exec(text)![0];
        if (first !== '{' && first !== '[') throw malformed();
        try {
          done(null, JSON.parse(text));
        } catch {
          throw malformed();
        }
      } catch (error) {
        done(error as Error);
      }
    },
  );
  fastify.addContentTypeParser(
    'multipart/form-data',
    (_request: FastifyRequest, _payload: unknown, done: (error: Error | null, value?: unknown) => void) => done(null),
  );
}
