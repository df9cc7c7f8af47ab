import { HttpStatus, LoggerService, NotFoundException } from '@nestjs/common';
import { checkJsonBody, toErrorResponse } from './error-body';
import { ConflictError } from './errors';

const logger = (): jest.Mocked<LoggerService> => ({ log: jest.fn(), error: jest.fn(), warn: jest.fn() });

describe('toErrorResponse', () => {
  it('turns an unexpected error into a 500 that names the request id, logs it, and leaks nothing', () => {
    const log = logger();
    const { status, body } = toErrorResponse(new Error('column "secret" of relation x violates y'), 'req-1', log);
    expect(status).toBe(500);
    expect(body).toMatchObject({
      statusCode: 500,
      error: 'Internal Server Error',
      code: 'INTERNAL',
      requestId: 'req-1',
    });
    expect(body.message).toMatch(/request id req-1/);
    expect(JSON.stringify(body)).not.toMatch(/relation|at Object|\.ts:/);
    expect(log.error).toHaveBeenCalledWith(expect.stringContaining('req-1'), expect.stringContaining('Error: column'));
  });

  it('keeps a domain refusal as it is, with its code and details', () => {
    const log = logger();
    const { status, body } = toErrorResponse(
      new ConflictError('PACKAGE_USED', 'Package p was used by upgrade u.', { upgradeId: 'u' }),
      'r',
      log,
    );
    expect(status).toBe(HttpStatus.CONFLICT);
    expect(body).toEqual({
      statusCode: 409,
      error: 'Conflict',
      code: 'PACKAGE_USED',
      message: 'Package p was used by upgrade u.',
      details: { upgradeId: 'u' },
      requestId: 'r',
    });
    expect(log.error).not.toHaveBeenCalled();
  });

  it('maps body-parser refusals to 413 and 400', () => {
    expect(toErrorResponse({ type: 'entity.too.large', status: 413, limit: 100 }, 'r', logger()).body).toMatchObject({
      statusCode: 413,
      code: 'BODY_TOO_LARGE',
    });
    expect(toErrorResponse({ type: 'entity.parse.failed', status: 400 }, 'r', logger()).body).toMatchObject({
      statusCode: 400,
      code: 'MALFORMED_JSON',
    });
  });

  it.each([
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    [
      Object.assign(new Error('terminating connection due to administrator command'), {
        driverError: { code: '57P01' },
      }),
    ],
    [new Error('Connection terminated unexpectedly')],
  ])('answers 503, not 500, when the database is unreachable: %s', (error) => {
    const { status, body } = toErrorResponse(error, 'r', logger());
    expect(status).toBe(503);
    expect(body).toMatchObject({
      code: 'DATABASE_UNAVAILABLE',
      message: expect.stringMatching(/nothing was changed. Retry/),
    });
  });

  it('points an unknown route at the API description', () => {
    const { body } = toErrorResponse(new NotFoundException('Cannot GET /nope'), 'r', logger());
    expect(body).toMatchObject({
      statusCode: 404,
      code: 'NO_SUCH_ROUTE',
      message: 'There is no route GET /nope; the API is described at /api/docs.',
    });
  });
});

describe('checkJsonBody', () => {
  const nested = (depth: number, open = '[', close = ']') => Buffer.from(open.repeat(depth) + close.repeat(depth));

  it.each([
    ['64 levels of arrays', nested(64), false],
    ['65 levels of arrays', nested(65), true],
    ['65 levels of objects', Buffer.from('{"a":'.repeat(65) + '1' + '}'.repeat(65)), true],
    [
      'brackets inside strings do not count',
      Buffer.from(JSON.stringify({ text: '['.repeat(200), quoted: 'a \\" [[[[ "' })),
      false,
    ],
    ['an escaped quote does not end a string', Buffer.from(`{"a":"\\"${'{'.repeat(100)}"}`), false],
  ])('%s', (_name, body, refused) => {
    const check = () => checkJsonBody(null, null, body, 'utf-8');
    if (refused) expect(check).toThrow(expect.objectContaining({ type: 'entity.too.deep', status: 400 }));
    else expect(check).not.toThrow();
  });

  it('the refusal reads as a 400 naming the limit', () => {
    let error: unknown;
    try {
      checkJsonBody(null, null, nested(100), 'utf-8');
    } catch (e) {
      error = e;
    }
    expect(toErrorResponse(error, 'r', logger())).toMatchObject({
      status: 400,
      body: { code: 'JSON_TOO_DEEP', message: expect.stringMatching(/more than 64 levels/) },
    });
  });

  it.each([
    ['bytes that are not UTF-8', Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), 'utf-8', 400, 'INVALID_UTF8'],
    ['a UTF-16 charset', Buffer.from('{}', 'utf16le'), 'utf-16', 415, 'UNSUPPORTED_ENCODING'],
  ])('refuses %s', (_name, body, charset, status, code) => {
    let error: unknown;
    try {
      checkJsonBody(null, null, body, charset);
    } catch (e) {
      error = e;
    }
    expect(toErrorResponse(error, 'r', logger())).toMatchObject({ status, body: { code } });
  });

  it('takes UTF-8 with characters beyond ASCII', () => {
    expect(() => checkJsonBody(null, null, Buffer.from('{"name":"Zürich 東京 🚀"}'), 'utf-8')).not.toThrow();
  });
});
