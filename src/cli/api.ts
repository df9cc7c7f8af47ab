import createClient, { type Client } from 'openapi-fetch';
import { EXIT, exitCodeForStatus } from './exit-codes';
import type { components, paths } from './lockstep-api';

/** The API's schemas, as generated from its OpenAPI document (src/cli/lockstep-api.ts). */
export type Schemas = components['schemas'];
export type ErrorBody = Schemas['ErrorBodyDto'];
export type LockstepClient = Client<paths>;

/** Where Lockstep listens by default (PORT 8080). */
export const DEFAULT_URL = 'http://localhost:8080';

export interface Connection {
  /** Lockstep's base URL, e.g. http://localhost:8080. */
  url: string;
  token: string;
}

/** Where the command line and the environment say Lockstep is; the token never has a default. */
export function connectionFrom(flags: { url?: string; token?: string }, env: NodeJS.ProcessEnv): Connection {
  const url = flags.url ?? env.LOCKSTEP_URL ?? DEFAULT_URL;
  const token = flags.token ?? env.LOCKSTEP_TOKEN;
  if (!token)
    throw new CliError(
      'no token: set LOCKSTEP_TOKEN (an operator token; an admin token for clusters)',
      undefined,
      EXIT.unauthorized,
    );
  if (!/^https?:\/\//.test(url)) throw new CliError(`LOCKSTEP_URL must start with http:// or https:// (got "${url}")`);
  return { url: url.replace(/\/+$/, ''), token };
}

export function clientFor(connection: Connection): LockstepClient {
  return createClient<paths>({
    baseUrl: connection.url,
    headers: { Authorization: `Bearer ${connection.token}`, 'User-Agent': 'lockstep-cli' },
  });
}

/** A failure to report and exit on; `body` is the server's refusal when there is one. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly body?: ErrorBody,
    readonly exitCode: number = EXIT.error,
  ) {
    super(message);
  }
}

/** The answer's data, or a CliError worded as the server worded its refusal. */
export function expectData<T>(answer: { data?: T; error?: unknown; response: Response }, what: string): T {
  if (answer.data !== undefined) return answer.data;
  const body = isErrorBody(answer.error) ? answer.error : undefined;
  const reason = body ? `${body.code}: ${body.message}` : `HTTP ${answer.response.status}`;
  throw new CliError(`${what}: ${reason}`, body, exitCodeForStatus(answer.response.status));
}

function isErrorBody(value: unknown): value is ErrorBody {
  return typeof value === 'object' && value !== null && 'code' in value && 'message' in value;
}

/** A fetch that failed before any answer (refused, reset, DNS) says where it tried. */
export async function reach<T>(connection: Connection, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof CliError) throw error;
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(
      `cannot reach Lockstep at ${connection.url}: ${cause?.code ?? cause?.message ?? (error as Error).message}`,
      undefined,
      EXIT.unavailable,
    );
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (text: string) => UUID.test(text);
