import { Module } from '@nestjs/common';
import { CommandIssuer } from '../cluster/agent-commands.service';
import { FailedAgentReconciler } from '../cluster/agent-protocol.service';
import { MetricsModule } from '../metrics/metrics.module';
import { ClusterModule } from '../cluster/cluster.module';
import { ClusterContents, ClustersService } from '../cluster/clusters.service';
import { PackagesModule } from '../packages/packages.module';
import { PackagesService } from '../packages/packages.service';
import { ProgressModule } from '../progress/progress.module';
import { StreamScopeDirectory } from '../progress/stream-scopes';
import { AutoUpgrader } from './auto-upgrader';
import { PackageUploadController } from './package-upload.controller';
import { RollbackPlanning } from './rollback-planning';
import { RollbacksController } from './rollbacks.controller';
import { RollbacksService } from './rollbacks.service';
import { UpgradeExecutor } from './upgrade-executor';
import { UpgradeRepository } from './upgrade.repository';
import { UpgradeWriter } from './upgrade-writer';
import { UpgradesController } from './upgrades.controller';
import { UpgradesService } from './upgrades.service';

/**
 * Upgrade life cycle, the executor that drives plans, auto-upgrade, and the package upload (whose
 * mode=install creates an upgrade). Uses cluster, packages, progress and the pure planner, and binds
 * the ports those modules declare for what only this one knows (docs/ARCHITECTURE.md, "Ports").
 */
@Module({
  imports: [ClusterModule, PackagesModule, ProgressModule, MetricsModule],
  controllers: [UpgradesController, RollbacksController, PackageUploadController],
  providers: [
    UpgradeRepository,
    UpgradeWriter,
    RollbackPlanning,
    UpgradeExecutor,
    UpgradesService,
    RollbacksService,
    AutoUpgrader,
    // Reports on the commands the executor issues move its steps, in the report's transaction.
    { provide: CommandIssuer, useExisting: UpgradeExecutor },
    { provide: FailedAgentReconciler, useExisting: UpgradeExecutor },
    // A cluster with packages or upgrades is not deleted (409 CLUSTER_NOT_EMPTY); packages first.
    {
      provide: ClusterContents,
      inject: [PackagesService, UpgradesService],
      useFactory: (packages: PackagesService, upgrades: UpgradesService): ClusterContents => ({
        leftIn: async (tx, clusterId) => {
          const left = [await packages.leftIn(tx, clusterId), await upgrades.leftIn(tx, clusterId)];
          return left.filter((what): what is string => what !== null);
        },
      }),
    },
    // Streams, tickets and history of an unknown cluster or upgrade are a 404.
    {
      provide: StreamScopeDirectory,
      inject: [ClustersService, UpgradesService],
      useFactory: (clusters: ClustersService, upgrades: UpgradesService): StreamScopeDirectory => ({
        exists: (scope) => (scope.kind === 'cluster' ? clusters.exists(scope.id) : upgrades.exists(scope.id)),
      }),
    },
  ],
  exports: [UpgradesService],
})
export class UpgradesModule {}
