import { isFQDN, isIP, Matches, ValidateBy, ValidateIf, ValidationOptions } from 'class-validator';
import * as semver from 'semver';

/** Whether a value is a semantic version such as 10.3.0 and nothing else (IsSemverVersion). */
export function isSemverVersion(value: unknown): boolean {
  return (
    typeof value === 'string' && value.length <= 64 && /^\d[0-9A-Za-z.+-]*$/.test(value) && semver.valid(value) !== null
  );
}

/**
 * A semantic version such as 10.3.0, nothing around it: the semver library reads "1.0.0\n" or
 * " 1.0.0" as 1.0.0, and the stray characters would then be stored with it.
 */
export const IsSemverVersion = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isSemverVersion',
      validator: {
        validate: isSemverVersion,
        defaultMessage: (args) => `${args?.property} must be a semantic version such as 10.3.0`,
      },
    },
    options,
  );

/** A semver range such as ">=10.1.0 <10.3.0". */
export const IsSemverRange = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isSemverRange',
      validator: {
        validate: (value) => typeof value === 'string' && value.length <= 200 && semver.validRange(value) !== null,
        defaultMessage: (args) => `${args?.property} must be a semver range such as ">=10.1.0 <10.3.0"`,
      },
    },
    options,
  );

/** A host name (a single label such as "db1" is fine on a LAN) or an IPv4/IPv6 address. */
export const IsHostOrIp = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isHostOrIp',
      validator: {
        validate: (value) =>
          typeof value === 'string' &&
          value.length <= 253 &&
          (isIP(value) || isFQDN(value, { require_tld: false, allow_underscores: true })),
        defaultMessage: (args) => `${args?.property} must be a host name or an IP address`,
      },
    },
    options,
  );

/** A whole number of units, or a share such as "25%" (0-100%). */
export const IsCountOrPercent = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isCountOrPercent',
      validator: {
        validate: (value) =>
          (Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 1_000_000) ||
          (typeof value === 'string' && /^\d{1,3}%$/.test(value) && Number(value.slice(0, -1)) <= 100),
        defaultMessage: (args) => `${args?.property} must be a whole number (0 or more) or a percentage such as "25%"`,
      },
    },
    options,
  );

/** A flat object of at most `maxKeys` short keys with short primitive values. */
export const IsFlatMap = (
  kinds: Array<'string' | 'number' | 'boolean'>,
  maxKeys: number,
  options?: ValidationOptions,
) =>
  ValidateBy(
    {
      name: 'isFlatMap',
      validator: {
        validate: (value: unknown) => {
          if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
          const entries = Object.entries(value);
          return (
            entries.length <= maxKeys &&
            entries.every(
              ([k, v]) =>
                /^[A-Za-z0-9_.-]{1,64}$/.test(k) &&
                kinds.includes(typeof v as 'string') &&
                (typeof v !== 'string' || v.length <= 200),
            )
          );
        },
        defaultMessage: (args) =>
          `${args?.property} must be an object of at most ${maxKeys} entries, keys of letters, digits, "_", "." or "-" (up to 64), values ${kinds.join(' or ')} (strings up to 200 characters)`,
      },
    },
    options,
  );

/**
 * Optional, but not null: absent means "use the default", while null is no value of the field's
 * type (class-validator's IsOptional lets null through, and it would be stored as it is).
 */
export const IsOptionalNotNull = (options?: ValidationOptions) =>
  ValidateIf((_object, value) => value !== undefined, options);

/** An ISO-8601 date and time in the extended form every client and JavaScript's Date read alike (2026-12-01T02:00:00Z). */
export const IsDateTime = (options?: ValidationOptions) =>
  Matches(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/, options);

/** A high surrogate not followed by a low one, or a low one not preceded by a high one: not Unicode text. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** C0 and C1 control characters, DEL, and the bidirectional overrides that make text read differently from what it is. */
const NOT_IN_A_NAME = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
/** In longer text, line breaks and tabs are fine; other control characters are not (PostgreSQL cannot even store NUL). */
const NOT_IN_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u202a-\u202e\u2066-\u2069]/;

/** One line of printable text (IsSingleLineText). */
export const isSingleLineText = (value: string): boolean => !LONE_SURROGATE.test(value) && !NOT_IN_A_NAME.test(value);
/** Printable text, line breaks and tabs allowed (IsPrintableText). */
export const isPrintableText = (value: string): boolean => !LONE_SURROGATE.test(value) && !NOT_IN_TEXT.test(value);

/**
 * A name shown in lists, logs and the dashboard: one line of printable text. A newline in a name
 * forges log lines, NUL cannot be stored in PostgreSQL, and a lone surrogate is not text at all.
 */
export const IsSingleLineText = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isSingleLineText',
      validator: {
        validate: (value) => typeof value !== 'string' || isSingleLineText(value),
        defaultMessage: (args) => `${args?.property} must be one line of printable text (no control characters)`,
      },
    },
    options,
  );

/** Free text such as an agent's message: line breaks and tabs allowed, other control characters not. */
export const IsPrintableText = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isPrintableText',
      validator: {
        validate: (value) => typeof value !== 'string' || isPrintableText(value),
        defaultMessage: (args) =>
          `${args?.property} must be printable text (no control characters but line breaks and tabs)`,
      },
    },
    options,
  );
