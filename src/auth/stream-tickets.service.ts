import { Injectable, Logger } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { randomUUID } from 'node:crypto';
import { LessThan } from 'typeorm';
import { Clock } from '../common/clock';
import { UnauthenticatedError } from '../common/errors';
import { type AppConfig, InjectAppConfig } from '../config/app-config';
import { Database } from '../database/database';
import { AccessToken, isActiveToken } from './access-token.entity';
import { Principal } from './principal';
import { StreamTicket } from './stream-ticket.entity';
import { generateSecret, hashSecret } from './token-secret';

export const STREAM_TICKET_PREFIX = 'lst_';

/** Issues and redeems stream tickets (see StreamTicket). */
@Injectable()
export class StreamTicketsService {
  private readonly logger = new Logger(StreamTicketsService.name);

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    @InjectAppConfig() private readonly config: AppConfig,
  ) {}

  async issue(issuer: Principal, scope: string, scopeId: string): Promise<{ ticket: string; expiresAt: Date }> {
    const now = this.clock.now();
    const ticket = generateSecret(STREAM_TICKET_PREFIX);
    const expiresAt = new Date(now.getTime() + this.config.streamTicketTtlS * 1000);
    await this.db.transaction((tx) =>
      tx.em.insert(StreamTicket, {
        id: randomUUID(),
        secretHash: hashSecret(ticket),
        scope,
        scopeId,
        issuedByTokenId: issuer.tokenId,
        expiresAt,
        usedAt: null,
        createdAt: now,
      }),
    );
    return { ticket, expiresAt };
  }

  /**
   * Trades a ticket for a viewer's access to exactly the stream it was issued for, once. Refusals
   * say which rule failed; a ticket for another stream is refused without being used up.
   */
  async redeem(ticket: string, scope: string, scopeId: string): Promise<Principal> {
    const now = this.clock.now();
    return this.db.transaction(async (tx) => {
      const found = await tx.em.findOne(StreamTicket, { where: { secretHash: hashSecret(ticket) }, lock: tx.rowLock });
      if (!found)
        throw new UnauthenticatedError(
          'This stream ticket is not known; ask for a new one with POST /api/v1/stream-tickets.',
          'TICKET_UNKNOWN',
        );
      if (found.scope !== scope || found.scopeId !== scopeId) {
        throw new UnauthenticatedError(
          `This ticket opens the ${found.scope} stream ${found.scopeId}, not this one; ask for a ticket for this stream.`,
          'TICKET_WRONG_STREAM',
        );
      }
      if (found.usedAt)
        throw new UnauthenticatedError(
          'This stream ticket was already used; a ticket opens one stream once. Ask for a new one.',
          'TICKET_USED',
        );
      if (found.expiresAt <= now)
        throw new UnauthenticatedError(
          `This stream ticket expired at ${found.expiresAt.toISOString()}; ask for a new one.`,
          'TICKET_EXPIRED',
        );
      // A ticket carries its issuer's access: revoking the token voids the tickets it issued.
      const issuer = await tx.em.findOne(AccessToken, {
        where: { id: found.issuedByTokenId },
        select: { id: true, revokedAt: true, expiresAt: true },
      });
      if (!issuer || issuer.revokedAt) {
        throw new UnauthenticatedError(
          'The token that issued this stream ticket has been revoked, so the ticket no longer opens anything; sign in with a valid token.',
          'TICKET_ISSUER_REVOKED',
        );
      }
      if (!isActiveToken(issuer, now)) {
        throw new UnauthenticatedError(
          `The token that issued this stream ticket expired at ${issuer.expiresAt!.toISOString()}, so the ticket no longer opens anything; sign in with a valid token.`,
          'TICKET_ISSUER_EXPIRED',
        );
      }
      await tx.em.update(StreamTicket, { id: found.id }, { usedAt: now });
      return { kind: 'user', tokenId: found.issuedByTokenId, name: 'stream ticket', role: 'viewer' };
    });
  }

  /** Forgets tickets that expired more than an hour ago. */
  @Interval(3600_000)
  async purgeExpired(): Promise<void> {
    try {
      const cutoff = new Date(this.clock.now().getTime() - 3600_000);
      await this.db.transaction((tx) => tx.em.delete(StreamTicket, { expiresAt: LessThan(cutoff) }));
    } catch (error) {
      this.logger.error(`could not purge stream tickets: ${(error as Error).message}`);
    }
  }
}
