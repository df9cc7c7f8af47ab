import { Param, ParseUUIDPipe } from '@nestjs/common';
import { BadInputError } from './errors';

/** A path parameter that must be a UUID; anything else is a 400 naming the parameter. */
export const IdParam = (name: string) =>
  Param(
    name,
    new ParseUUIDPipe({
      exceptionFactory: () =>
        new BadInputError(`${name} must be a UUID.`, [{ field: name, problems: [`${name} must be a UUID`] }]),
    }),
  );
