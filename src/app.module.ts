import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { ScheduleModule } from '@nestjs/schedule';
import { AuditModule } from './audit/audit.module';
import { AuthModule } from './auth/auth.module';
import { RateLimitModule } from './auth/rate-limits';
import { ClusterModule } from './cluster/cluster.module';
import { Clock } from './common/clock';
import { CommonModule } from './common/common.module';
import { AppConfig, appConfigNamespace } from './config/app-config';
import { DatabaseModule } from './database/database.module';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import { PackagesModule } from './packages/packages.module';
import { ProgressModule } from './progress/progress.module';
import { UpgradesModule } from './upgrades/upgrades.module';

/** What tests may replace: the clock, so time-based rules are tested without sleeping. */
export interface AppOverrides {
  clock?: Clock;
}

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, overrides: AppOverrides = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [appConfigNamespace(config)] }),
        ScheduleModule.forRoot(),
        CommonModule.forRoot(overrides.clock),
        DatabaseModule,
        AuditModule,
        RateLimitModule,
        AuthModule,
        ProgressModule,
        ClusterModule,
        PackagesModule,
        UpgradesModule,
        HealthModule,
        MetricsModule,
      ],
    };
  }
}
