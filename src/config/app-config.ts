import { applyDecorators, Inject } from '@nestjs/common';
import { getConfigToken, registerAs } from '@nestjs/config';
import { plainToInstance, Transform } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  validateSync,
} from 'class-validator';
import * as path from 'node:path';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

const GiB = 1024 ** 3;

/** Numbers come from the environment as strings; anything but digits stays a string and fails IsInt. */
const toInt = () =>
  Transform(({ value }: { value: unknown }) => (/^-?\d+$/.test(String(value)) ? Number(value) : value));

/** An optional whole number in [min, max]; every failure says the same thing, naming the variable. */
const WholeNumber = (name: string, min: number, max: number | undefined, unit?: string) => {
  const range = max === undefined ? `, at least ${min}` : ` from ${min} to ${max}`;
  const message = `${name} must be a whole number${unit ? ` of ${unit}` : ''}${range}`;
  return applyDecorators(
    IsOptional(),
    toInt(),
    IsInt({ message }),
    Min(min, { message }),
    ...(max === undefined ? [] : [Max(max, { message })]),
  );
};

/**
 * The environment Lockstep reads. Every variable has a default that works out of the box;
 * each message says what the variable accepts, so a bad value stops start-up with one clear line.
 */
export class EnvironmentVariables {
  @WholeNumber('PORT', 1, 65535)
  PORT?: number;

  @IsOptional()
  @IsString()
  HOST?: string;

  @WholeNumber('METRICS_PORT', 1, 65535)
  METRICS_PORT?: number;

  @IsOptional()
  @IsString()
  METRICS_HOST?: string;

  @IsOptional()
  @Matches(/^postgres(ql)?:\/\/.+/, {
    message: 'DATABASE_URL must be a postgres://user@host:port/database URL, or unset for the embedded SQLite file',
  })
  DATABASE_URL?: string;

  @IsOptional()
  @IsString()
  @MinLength(1, { message: 'DATA_DIR must be a folder path' })
  DATA_DIR?: string;

  @IsOptional()
  @MinLength(20, { message: 'LOCKSTEP_ADMIN_TOKEN must be at least 20 characters (use a long random secret)' })
  @MaxLength(200, { message: 'LOCKSTEP_ADMIN_TOKEN must be at most 200 characters' })
  @Matches(/^[\x21-\x7e]+$/, { message: 'LOCKSTEP_ADMIN_TOKEN must be printable ASCII without spaces' })
  LOCKSTEP_ADMIN_TOKEN?: string;

  @WholeNumber('MAX_PACKAGE_BYTES', 1024, undefined, 'bytes')
  MAX_PACKAGE_BYTES?: number;

  @WholeNumber('HEARTBEAT_TIMEOUT_S', 5, 86400, 'seconds')
  HEARTBEAT_TIMEOUT_S?: number;

  @WholeNumber('AGENT_POLL_S', 1, 3600, 'seconds')
  AGENT_POLL_S?: number;

  @WholeNumber('PAIRING_KEY_TTL_S', 60, 2592000, 'seconds')
  PAIRING_KEY_TTL_S?: number;

  @WholeNumber('MAX_JSON_BODY_BYTES', 1024, 104857600, 'bytes')
  MAX_JSON_BODY_BYTES?: number;

  @WholeNumber('PACKAGE_MAX_ENTRIES', 1, 10_000_000, 'archive entries')
  PACKAGE_MAX_ENTRIES?: number;

  @WholeNumber('PACKAGE_MAX_UNPACKED_BYTES', 1024, undefined, 'bytes')
  PACKAGE_MAX_UNPACKED_BYTES?: number;

  @WholeNumber('EVENT_RETENTION_DAYS', 1, 3650, 'days')
  EVENT_RETENTION_DAYS?: number;

  @WholeNumber('AUDIT_RETENTION_DAYS', 1, 36500, 'days')
  AUDIT_RETENTION_DAYS?: number;

  @WholeNumber('SSE_KEEPALIVE_MS', 100, 300000, 'milliseconds')
  SSE_KEEPALIVE_MS?: number;

  @WholeNumber('SSE_MAX_BUFFER_BYTES', 4096, 67108864, 'bytes')
  SSE_MAX_BUFFER_BYTES?: number;

  @WholeNumber('STREAM_TICKET_TTL_S', 5, 3600, 'seconds')
  STREAM_TICKET_TTL_S?: number;

  @WholeNumber('SHUTDOWN_GRACE_S', 0, 3600, 'seconds')
  SHUTDOWN_GRACE_S?: number;

  @WholeNumber('METRICS_CACHE_S', 0, 300, 'seconds')
  METRICS_CACHE_S?: number;

  @WholeNumber('PAIRING_RATE_LIMIT', 1, 1_000_000, 'pairing calls per minute per client address')
  PAIRING_RATE_LIMIT?: number;

  @WholeNumber('AUTH_FAILURE_LIMIT', 1, 1_000_000, 'failed token checks per minute per client address')
  AUTH_FAILURE_LIMIT?: number;

  @IsOptional()
  @Matches(/^(\d{1,2}|[\w.:/]+(\s*,\s*[\w.:/]+)*)$/, {
    message:
      'TRUST_PROXY must be how many proxies stand in front of Lockstep (a number), or a comma-separated list of proxy addresses, subnets, or loopback/linklocal/uniquelocal',
  })
  TRUST_PROXY?: string;

  @IsOptional()
  @IsIn(LOG_LEVELS, { message: `LOG_LEVEL must be one of: ${LOG_LEVELS.join(', ')}` })
  LOG_LEVEL?: LogLevelName;

  @IsOptional()
  @IsIn(['json', 'text'], { message: 'LOG_FORMAT must be json or text' })
  LOG_FORMAT?: 'json' | 'text';
}

/** The validated configuration every part of Lockstep reads. */
export interface AppConfig {
  port: number;
  host: string;
  /** `sqlite` unless DATABASE_URL names a PostgreSQL server. */
  database: { type: 'sqlite'; file: string } | { type: 'postgres'; url: string };
  dataDir: string;
  adminToken: string | undefined;
  maxPackageBytes: number;
  /** Archive-bomb limits: entries in a package, and the bytes it unpacks to. */
  packageMaxEntries: number;
  packageMaxUnpackedBytes: number;
  heartbeatTimeoutS: number;
  /**
   * Seconds between an idle agent's heartbeats (AGENT_POLL_S); unset: a third of
   * heartbeatTimeoutS, at most 10 s (see pollAfterMs in src/cluster/agent-state.ts).
   */
  agentPollS?: number;
  pairingKeyTtlS: number;
  maxJsonBodyBytes: number;
  eventRetentionDays: number;
  /** Audit records older than this are deleted (docs/audit.md). */
  auditRetentionDays: number;
  /** How often an idle event stream gets a comment line, so proxies keep it open. */
  sseKeepAliveMs: number;
  /** Unsent bytes a viewer may have queued before it is disconnected (it reconnects and replays). */
  sseMaxBufferBytes: number;
  streamTicketTtlS: number;
  /** How long a stop waits for the requests in flight before it cuts them (docs/operations.md). */
  shutdownGraceS: number;
  /** How long one reading of the fleet's counts serves /metrics scrapes (docs/metrics.md). */
  metricsCacheS: number;
  /** A second listener that serves only /metrics, without a token (docs/metrics.md); none when unset. */
  metricsListener?: { port: number; host: string };
  /** Rate limits per client address (see docs/security.md). */
  pairingRateLimit: number;
  authFailureLimit: number;
  /** Which proxies' X-Forwarded-For to believe for the client address; none by default. */
  trustProxy: number | string | false;
  logLevel: LogLevelName;
  logFormat: 'json' | 'text';
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates the environment; throws ConfigError naming every bad variable. */
// eslint-disable-next-line complexity -- a flat table, one default (`??`) per variable, read top to bottom; split, a variable's default would be harder to find (docs/ARCHITECTURE.md, "A configuration variable")
export function loadConfig(env: NodeJS.ProcessEnv | Record<string, string | undefined>): AppConfig {
  const vars = validEnvironment(env);
  const heartbeatTimeoutS = vars.HEARTBEAT_TIMEOUT_S ?? 30;
  checkPollInterval(vars, heartbeatTimeoutS);
  const dataDir = path.resolve(vars.DATA_DIR || './data');
  return {
    port: vars.PORT ?? 8080,
    host: vars.HOST || '0.0.0.0',
    database: vars.DATABASE_URL
      ? { type: 'postgres', url: vars.DATABASE_URL }
      : { type: 'sqlite', file: path.join(dataDir, 'lockstep.sqlite') },
    dataDir,
    adminToken: vars.LOCKSTEP_ADMIN_TOKEN || undefined,
    maxPackageBytes: vars.MAX_PACKAGE_BYTES ?? 4 * GiB,
    packageMaxEntries: vars.PACKAGE_MAX_ENTRIES ?? 100_000,
    packageMaxUnpackedBytes: vars.PACKAGE_MAX_UNPACKED_BYTES ?? 16 * GiB,
    heartbeatTimeoutS,
    agentPollS: vars.AGENT_POLL_S,
    pairingKeyTtlS: vars.PAIRING_KEY_TTL_S ?? 24 * 3600,
    maxJsonBodyBytes: vars.MAX_JSON_BODY_BYTES ?? 1024 * 1024,
    eventRetentionDays: vars.EVENT_RETENTION_DAYS ?? 30,
    auditRetentionDays: vars.AUDIT_RETENTION_DAYS ?? 365,
    sseKeepAliveMs: vars.SSE_KEEPALIVE_MS ?? 15_000,
    sseMaxBufferBytes: vars.SSE_MAX_BUFFER_BYTES ?? 1024 * 1024,
    streamTicketTtlS: vars.STREAM_TICKET_TTL_S ?? 60,
    shutdownGraceS: vars.SHUTDOWN_GRACE_S ?? 10,
    metricsCacheS: vars.METRICS_CACHE_S ?? 10,
    metricsListener: vars.METRICS_PORT
      ? { port: vars.METRICS_PORT, host: vars.METRICS_HOST || '127.0.0.1' }
      : undefined,
    pairingRateLimit: vars.PAIRING_RATE_LIMIT ?? 600,
    authFailureLimit: vars.AUTH_FAILURE_LIMIT ?? 100,
    trustProxy: trustProxyFrom(vars.TRUST_PROXY),
    logLevel: vars.LOG_LEVEL ?? 'log',
    logFormat: vars.LOG_FORMAT ?? 'json',
  };
}

/** The environment as EnvironmentVariables, or ConfigError naming every variable its validators refuse. */
function validEnvironment(env: NodeJS.ProcessEnv | Record<string, string | undefined>): EnvironmentVariables {
  // An empty variable (`PORT=`) means unset, as in most shells' `VAR= cmd` idiom.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const vars = plainToInstance(EnvironmentVariables, present);
  const errors = validateSync(vars);
  if (errors.length > 0) {
    throw new ConfigError(
      errors.map((e) => {
        const message = Object.values(e.constraints ?? {})[0] ?? `${e.property} is invalid`;
        return `${message} (got ${JSON.stringify(String(e.value))})`;
      }),
    );
  }
  return vars;
}

/** An agent may miss two heartbeats and stay online, as with the default (a third of the timeout). */
function checkPollInterval(vars: EnvironmentVariables, heartbeatTimeoutS: number): void {
  if (vars.AGENT_POLL_S !== undefined && heartbeatTimeoutS < 3 * vars.AGENT_POLL_S) {
    throw new ConfigError([
      `AGENT_POLL_S=${vars.AGENT_POLL_S} leaves no room for two missed heartbeats before an agent is offline: HEARTBEAT_TIMEOUT_S (${heartbeatTimeoutS}${vars.HEARTBEAT_TIMEOUT_S === undefined ? ', the default' : ''}) must be at least 3 x AGENT_POLL_S = ${3 * vars.AGENT_POLL_S}; raise HEARTBEAT_TIMEOUT_S or lower AGENT_POLL_S`,
    ]);
  }
}

/** TRUST_PROXY: unset, `false` or `0` trusts no proxy; a number counts hops; anything else lists proxies. */
function trustProxyFrom(value: string | undefined): number | string | false {
  if (value === undefined || value === 'false' || value === '0') return false;
  return /^\d+$/.test(value) ? Number(value) : value;
}

export const APP_CONFIG = 'lockstep';

/** The ConfigModule namespace that carries the validated AppConfig. */
export const appConfigNamespace = (config: AppConfig) => registerAs(APP_CONFIG, () => config);

/** Injects the validated AppConfig: `constructor(@InjectAppConfig() config: AppConfig)`. */
export const InjectAppConfig = () => Inject(getConfigToken(APP_CONFIG));
