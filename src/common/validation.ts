import { ValidationPipe } from '@nestjs/common';
import { ValidationError } from 'class-validator';
import { BadInputError, FieldProblem } from './errors';

/** Flattens class-validator's nested errors into one entry per field, with dotted paths. */
export function toFieldProblems(errors: ValidationError[], parent = ''): FieldProblem[] {
  return errors.flatMap((error) => {
    const field = parent ? (/^\d+$/.test(error.property) ? `${parent}[${error.property}]` : `${parent}.${error.property}`) : error.property;
    const own: FieldProblem[] = error.constraints
      ? [
          {
            field,
            // Once each: two checks of a field may word their refusal alike.
            problems: [
              ...new Set(
                Object.entries(error.constraints).map(([name, message]) =>
                  name === 'whitelistValidation' ? `${field} is not a known field; remove it` : message.replace(error.property, field),
                ),
              ),
            ],
          },
        ]
      : [];
    return [...own, ...toFieldProblems(error.children ?? [], field)];
  });
}

/** The global pipe: transforms to DTO classes, refuses unknown fields, names every bad field. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
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
