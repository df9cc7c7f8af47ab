import { Global, Module, Provider } from '@nestjs/common';
import { Clock } from './clock';
import { ShutdownState } from './graceful-stop';

/** Injectable wrappers of the outside world (the clock), replaceable in tests; whether the process is stopping. */
@Global()
@Module({})
export class CommonModule {
  static forRoot(clock?: Clock) {
    const providers: Provider[] = [clock ? { provide: Clock, useValue: clock } : Clock, ShutdownState];
    return { module: CommonModule, providers, exports: [Clock, ShutdownState] };
  }
}
