import { ArgumentMetadata, ValidationPipe } from '@nestjs/common';
import { ValidationError } from 'class-validator';
import { BadInputError, FieldProblem } from './errors';

/**
 * A message names its field by property ("all must be true"), or by its whole path already
 * ("target.all must be true"): the property becomes the path only where it stands as a name of
 * its own, not inside a longer word or a dotted path, and not when the path is there already.
 * Names of what is inside the field keep their tail, every one of them ("labels.site must be" under
 * target is "target.labels.site must be").
 */
function withPath(message: string, property: string, field: string): string {
  if (field === property) return message;
  const escaped = property.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const name = (text: string) =>
    new RegExp(`(?<![\\w.\\[\\]])${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w[]|\\.\\w)`);
  const inside = new RegExp(`(?<![\\w.\\[\\]])${escaped}(?=\\.\\w)`, 'g');
  if (name(field).test(message)) return message;
  return message.replace(inside, () => field).replace(name(property), () => field);
}

/** Flattens class-validator's nested errors into one entry per field, with dotted paths. */
export function toFieldProblems(errors: ValidationError[], parent = ''): FieldProblem[] {
  return errors.flatMap((error) => {
    const field = parent
      ? /^\d+$/.test(error.property)
        ? `${parent}[${error.property}]`
        : `${parent}.${error.property}`
      : error.property;
    const own: FieldProblem[] = error.constraints
      ? [
          {
            field,
            // Once each: two checks of a field may word their refusal alike.
            problems: [
              ...new Set(
                Object.entries(error.constraints).map(([name, message]) =>
                  name === 'whitelistValidation'
                    ? `${field} is not a known field; remove it`
                    : withPath(message, error.property, field),
                ),
              ),
            ],
          },
        ]
      : [];
    return [...own, ...toFieldProblems(error.children ?? [], field)];
  });
}

/**
 * Keys that name JavaScript's object machinery rather than data. class-transformer skips them,
 * so the unknown-field check never saw them and they were accepted silently; no field of the API
 * has these names, and code that copies objects must never meet them.
 */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** The path of the first reserved key in a parsed JSON value, or null. Depth is bounded by the body parser. */
export function findReservedKey(value: unknown, at = ''): string | null {
  if (typeof value !== 'object' || value === null) return null;
  for (const key of Object.keys(value)) {
    const field = Array.isArray(value) ? `${at}[${key}]` : at ? `${at}.${key}` : key;
    if (!Array.isArray(value) && RESERVED_KEYS.has(key)) return field;
    const found = findReservedKey((value as Record<string, unknown>)[key], field);
    if (found) return found;
  }
  return null;
}

/** ValidationPipe, first refusing reserved keys anywhere in a body or query. */
class LockstepValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' || metadata.type === 'query') {
      const field = findReservedKey(value);
      if (field)
        throw new BadInputError(`Invalid request: ${field} is not a known field; remove it.`, [
          { field, problems: [`${field} is not a known field; remove it`] },
        ]);
    }
    return super.transform(value, metadata);
  }
}

/** The global pipe: transforms to DTO classes, refuses unknown fields, names every bad field. */
export function createValidationPipe(): ValidationPipe {
  return new LockstepValidationPipe({
    transform: true,
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => {
      const details = toFieldProblems(errors);
      const summary = details.flatMap((d) => d.problems).join('; ');
      return new BadInputError(`Invalid request: ${summary}.`, details);
    },
  });
}
