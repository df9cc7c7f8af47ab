import { Module } from '@nestjs/common';
import { ClusterModule } from '../cluster/cluster.module';
import { ProgressModule } from '../progress/progress.module';
import { PackageRepository } from './package.repository';
import { PackageStore } from './package-store';
import { PackagesController } from './packages.controller';
import { PackagesService } from './packages.service';
import { UploadReceiver } from './upload-receiver';

/**
 * Upload, storage, manifest, prerequisites and the package life cycle. The upload's route is in the
 * upgrades module (mode=install creates an upgrade), which reads uploads with UploadReceiver.
 */
@Module({
  imports: [ClusterModule, ProgressModule],
  controllers: [PackagesController],
  providers: [PackageRepository, PackageStore, UploadReceiver, PackagesService],
  exports: [PackagesService, UploadReceiver],
})
export class PackagesModule {}
