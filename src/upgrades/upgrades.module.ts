import { Module } from '@nestjs/common';
import { ClusterModule } from '../cluster/cluster.module';
import { PackagesModule } from '../packages/packages.module';
import { ProgressModule } from '../progress/progress.module';
import { AutoUpgrader } from './auto-upgrader';
import { UpgradeExecutor } from './upgrade-executor';
import { UpgradeRepository } from './upgrade.repository';
import { UpgradeWriter } from './upgrade-writer';
import { UpgradesController } from './upgrades.controller';
import { UpgradesService } from './upgrades.service';

/** Upgrade life cycle, the executor that drives plans, and auto-upgrade. Uses cluster, packages, progress and the pure planner. */
@Module({
  imports: [ClusterModule, PackagesModule, ProgressModule],
  controllers: [UpgradesController],
  providers: [UpgradeRepository, UpgradeWriter, UpgradeExecutor, UpgradesService, AutoUpgrader],
  exports: [UpgradesService],
})
export class UpgradesModule {}
