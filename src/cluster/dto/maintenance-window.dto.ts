import { ApiProperty } from '@nestjs/swagger';
import { ValidateBy, type ValidationOptions } from 'class-validator';
import {
  MAX_WINDOW_MINUTES,
  MAX_WINDOWS,
  type MaintenanceWindow,
  type Weekday,
  WEEKDAYS,
  windowProblems,
} from '../../policies/maintenance-windows';

/** One recurring maintenance window (policies/maintenance-windows.ts has the rules). */
export class MaintenanceWindowDto implements MaintenanceWindow {
  @ApiProperty({
    type: 'array',
    items: { type: 'string', enum: [...WEEKDAYS] },
    minItems: 1,
    maxItems: 7,
    uniqueItems: true,
    example: ['sat', 'sun'],
    description: 'The days it opens on; a window that runs past midnight belongs to the day it opens on.',
  })
  days: Weekday[];

  @ApiProperty({
    pattern: '^([01]\\d|2[0-3]):[0-5]\\d$',
    example: '22:00',
    description:
      'When it opens, "HH:mm" (24-hour), wall-clock time in timeZone. A time the clocks skip (a spring change) opens as much later as they jumped; a time that happens twice (an autumn change), at the first.',
  })
  start: string;

  @ApiProperty({
    minimum: 1,
    maximum: MAX_WINDOW_MINUTES,
    example: 240,
    description: 'How long it stays open, in real elapsed minutes (at most a week).',
  })
  durationMinutes: number;

  @ApiProperty({ example: 'Europe/Berlin', maxLength: 64, description: 'An IANA time zone.' })
  timeZone: string;
}

export const WINDOWS_DESCRIPTION = `At most ${MAX_WINDOWS} recurring windows; windows that overlap or touch are one. With options.respectWindows, a unit starts only inside its agents' windows, when its predicted duration fits before the window closes (docs/maintenance-windows.md).`;

/**
 * A list of maintenance windows, every problem named by its path (`windows[0].timeZone must be an
 * IANA time zone such as Europe/Berlin`). Checked whole, by windowProblems, rather than as nested
 * DTOs: the same words wherever windows are given, and unknown fields inside are refused too.
 */
export const IsMaintenanceWindows = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isMaintenanceWindows',
      validator: {
        validate: (value, args) => windowProblems(value, args?.property ?? 'windows').length === 0,
        defaultMessage: (args) => windowProblems(args?.value, args?.property ?? 'windows').join('; '),
      },
    },
    options,
  );
