import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AccessGuard } from './access.guard';
import { AccessTokenRepository } from './access-token.repository';
import { AuthService } from './auth.service';
import { TokensController } from './tokens.controller';

@Module({
  controllers: [TokensController],
  providers: [AccessTokenRepository, AuthService, { provide: APP_GUARD, useClass: AccessGuard }],
  exports: [AuthService],
})
export class AuthModule {}
