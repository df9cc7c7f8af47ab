import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AccessGuard } from './access.guard';
import { AuditController } from './audit.controller';
import { AccessTokenRepository } from './access-token.repository';
import { AuthService } from './auth.service';
import { SessionController } from './session.controller';
import { StreamTicketsService } from './stream-tickets.service';
import { TokensController } from './tokens.controller';

@Module({
  controllers: [TokensController, SessionController, AuditController],
  providers: [AccessTokenRepository, AuthService, StreamTicketsService, { provide: APP_GUARD, useClass: AccessGuard }],
  exports: [AuthService, StreamTicketsService],
})
export class AuthModule {}
