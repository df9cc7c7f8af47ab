import { ExecutionContext, Global, HttpStatus, Injectable, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  InjectThrottlerStorage,
  ThrottlerGuard,
  ThrottlerLimitDetail,
  ThrottlerModule,
  ThrottlerStorageService,
} from '@nestjs/throttler';
import { DomainError, TooManyRequestsError } from '../common/errors';
import { APP_CONFIG, type AppConfig, InjectAppConfig } from '../config/app-config';

/** The window every limit counts over, and how long a client that passed one is refused. */
export const RATE_WINDOW_MS = 60_000;
/** The named limit on POST /api/v1/agent/pair (ThrottlerGuard on that route). */
export const PAIRING_THROTTLER = 'pairing';
const FAILED_ATTEMPTS = 'failed-attempts';

/**
 * Counts failed credential checks (unknown or revoked tokens, wrong pairing keys) per client
 * address, in @nestjs/throttler's storage. Past AUTH_FAILURE_LIMIT in a minute the address is
 * blocked for a minute: its failed checks answer 429 instead of 401, while valid credentials still
 * pass. Counts are per replica (docs/security.md).
 */
@Injectable()
export class FailedAttempts {
  constructor(
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorageService,
    @InjectAppConfig() private readonly config: AppConfig,
  ) {}

  /**
   * Runs a credential check for a client address; a check that fails with 401 counts against the
   * address. Past the limit, failures answer 429 (with Retry-After) instead of 401 for a minute.
   * Valid credentials always pass: one misbehaving client must not lock out the agents and people
   * behind the same address (a NAT, or a proxy when TRUST_PROXY is unset).
   */
  async check<T>(address: string | undefined, attempt: () => Promise<T>): Promise<T> {
    const key = `${FAILED_ATTEMPTS}:${address ?? 'unknown'}`;
    try {
      return await attempt();
    } catch (error) {
      if (error instanceof DomainError && error.status === HttpStatus.UNAUTHORIZED) {
        const counted = await this.storage.increment(
          key,
          RATE_WINDOW_MS,
          this.config.authFailureLimit,
          RATE_WINDOW_MS,
          FAILED_ATTEMPTS,
        );
        if (counted.isBlocked) throw tooMany(counted.timeToBlockExpire);
      }
      throw error;
    }
  }
}

const tooMany = (retryAfterS: number) =>
  new TooManyRequestsError(
    `Too many failed token or pairing-key checks from your address; try again in ${Math.ceil(retryAfterS)} s. Check the credential you send (AUTH_FAILURE_LIMIT).`,
    retryAfterS,
  );

/** ThrottlerGuard answering in the API's error shape, with a standard Retry-After. */
@Injectable()
export class PairingRateGuard extends ThrottlerGuard {
  protected override throwThrottlingException(_context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    return Promise.reject(
      new TooManyRequestsError(
        `Too many pairing calls from your address (PAIRING_RATE_LIMIT allows ${detail.limit} a minute); try again in ${detail.timeToBlockExpire} s.`,
        detail.timeToBlockExpire,
      ),
    );
  }
}

/** The rate limits, available to every module (pairing lives in the cluster module). */
@Global()
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (configs: ConfigService) => {
        const config = configs.getOrThrow<AppConfig>(APP_CONFIG);
        return {
          throttlers: [
            {
              name: PAIRING_THROTTLER,
              ttl: RATE_WINDOW_MS,
              limit: config.pairingRateLimit,
              blockDuration: RATE_WINDOW_MS,
            },
          ],
          // Retry-After is sent by the refusal itself; the library's names carry a suffix per limit.
          setHeaders: false,
        };
      },
    }),
  ],
  providers: [FailedAttempts, PairingRateGuard],
  exports: [ThrottlerModule, FailedAttempts, PairingRateGuard],
})
export class RateLimitModule {}
