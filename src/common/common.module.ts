import { Global, Module, Provider } from '@nestjs/common';
import { Clock } from './clock';

/** Injectable wrappers of the outside world (the clock), replaceable in tests. */
@Global()
@Module({})
export class CommonModule {
  static forRoot(clock?: Clock) {
    const providers: Provider[] = [clock ? { provide: Clock, useValue: clock } : Clock];
    return { module: CommonModule, providers, exports: [Clock] };
  }
}
