import { Global, Module } from '@nestjs/common';
import { getConfigToken } from '@nestjs/config';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { Database } from './database';
import { Leadership } from './leadership';
import { Notifications } from './notifications';

/** Opens the database (and migrates it) before any module that needs it is built; says which replica leads, and carries word between replicas. */
@Global()
@Module({
  providers: [
    {
      provide: Database,
      inject: [getConfigToken(APP_CONFIG)],
      useFactory: (config: AppConfig) => Database.open(config),
    },
    Leadership,
    Notifications,
  ],
  exports: [Database, Leadership, Notifications],
})
export class DatabaseModule {}
