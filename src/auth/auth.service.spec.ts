import type { ChannelSubscriber, Notifications } from '../database/notifications';
import type { AppConfig } from '../config/app-config';
import type { Database } from '../database/database';
import type { AuditTrail } from '../audit/audit-trail.service';
import { Clock } from '../common/clock';
import type { AccessTokenRepository } from './access-token.repository';
import { AuthService, TOKENS_CHANNEL } from './auth.service';
import { hashSecret } from './token-secret';

/** AuthService's token cache against a fake token table and a fake notification channel. */
function authWith(live: boolean) {
  let subscriber: ChannelSubscriber | undefined;
  const notifications = {
    live,
    subscribe: (channel: string, s: ChannelSubscriber) => {
      if (channel === TOKENS_CHANNEL) subscriber = s;
    },
  } as unknown as Notifications;
  const reads: string[] = [];
  const tokens = {
    findForCheck: (hash: string) => {
      reads.push(hash);
      return Promise.resolve({
        id: 't1',
        name: 'agent-1',
        role: 'agent',
        agentId: 'a1',
        revokedAt: null,
        expiresAt: null,
      });
    },
  } as unknown as AccessTokenRepository;
  const auth = new AuthService({} as Database, tokens, new Clock(), {} as AppConfig, {} as AuditTrail, notifications);
  auth.onModuleInit();
  return { auth, reads, told: () => subscriber! };
}

describe('AuthService: how long an agent token is trusted', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('keeps an agent token 10 minutes while revocations are told, and drops it when told', async () => {
    const { auth, reads, told } = authWith(true);
    expect((await auth.authenticate('lsa_secret')).ok).toBe(true);
    jest.advanceTimersByTime(9 * 60_000);
    await auth.authenticate('lsa_secret');
    expect(reads).toHaveLength(1);
    told().notified(hashSecret('lsa_secret'));
    await auth.authenticate('lsa_secret');
    expect(reads).toHaveLength(2);
  });

  it('keeps it only 5 seconds while notifications do not flow, and forgets everything on resync', async () => {
    const { auth, reads, told } = authWith(false);
    await auth.authenticate('lsa_secret');
    jest.advanceTimersByTime(4000);
    await auth.authenticate('lsa_secret');
    expect(reads).toHaveLength(1);
    jest.advanceTimersByTime(1000);
    await auth.authenticate('lsa_secret');
    expect(reads).toHaveLength(2);
    told().resync();
    await auth.authenticate('lsa_secret');
    expect(reads).toHaveLength(3);
  });
});
