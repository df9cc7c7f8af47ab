import { Module } from '@nestjs/common';
import { ClusterModule } from '../cluster/cluster.module';
import { ProgressModule } from '../progress/progress.module';
import { MetricsController } from './metrics.controller';
import { FleetFactsReader } from './fleet-facts';
import { MetricsListener } from './metrics-listener';
import { Metrics } from './metrics.service';

/**
 * Prometheus metrics. It reads the cluster and progress modules; upgrades records step durations
 * into it and the native agent routes count heartbeats (they take it from the app, not by import).
 */
@Module({
  imports: [ClusterModule, ProgressModule],
  controllers: [MetricsController],
  providers: [Metrics, FleetFactsReader, MetricsListener],
  exports: [Metrics],
})
export class MetricsModule {}
