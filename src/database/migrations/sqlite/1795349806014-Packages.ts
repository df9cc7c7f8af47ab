import { MigrationInterface, QueryRunner } from 'typeorm';

export class Packages1795349806014 implements MigrationInterface {
  name = 'Packages1795349806014';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "packages" ("id" varchar(36) PRIMARY KEY NOT NULL, "clusterId" varchar(36) NOT NULL, "product" varchar(100) NOT NULL, "version" varchar(64) NOT NULL, "kind" varchar(16) NOT NULL, "status" varchar(16) NOT NULL, "sha256" varchar(64) NOT NULL, "size" bigint NOT NULL, "prerequisites" text NOT NULL, "migration" varchar(200), "notes" varchar(4000), "warnings" text NOT NULL, "uploadedByTokenId" varchar(36), "uploadedAt" varchar(24) NOT NULL, "reservedByUpgradeId" varchar(36), "completedAt" varchar(24), "usedByUpgradeId" varchar(36))`,
    );
    await queryRunner.query(`CREATE INDEX "idx_packages_cluster_uploaded" ON "packages" ("clusterId", "uploadedAt") `);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_packages_cluster_sha256" ON "packages" ("clusterId", "sha256") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "uq_packages_cluster_sha256"`);
    await queryRunner.query(`DROP INDEX "idx_packages_cluster_uploaded"`);
    await queryRunner.query(`DROP TABLE "packages"`);
  }
}
