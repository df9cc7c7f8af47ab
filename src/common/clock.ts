import { Injectable } from '@nestjs/common';

/**
 * The time source of every time-based rule (heartbeat timeouts, expiries, schedules), so tests move
 * time forward instead of sleeping. Tests override this provider with a controllable clock.
 */
@Injectable()
export class Clock {
  now(): Date {
    return new Date();
  }
}

/** A clock that only moves when told to. */
export class ManualClock extends Clock {
  constructor(private current = new Date('2026-01-01T00:00:00.000Z')) {
    super();
  }

  override now(): Date {
    return new Date(this.current.getTime());
  }

  set(time: Date | string): void {
    this.current = new Date(time);
  }

  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}
