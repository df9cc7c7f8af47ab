import { MigrationInterface, QueryRunner } from 'typeorm';

export class Packages1795349815524 implements MigrationInterface {
  name = 'Packages1795349815524';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "packages" ("id" character varying(36) NOT NULL, "clusterId" character varying(36) NOT NULL, "product" character varying(100) NOT NULL, "version" character varying(64) NOT NULL, "kind" character varying(16) NOT NULL, "status" character varying(16) NOT NULL, "sha256" character varying(64) NOT NULL, "size" bigint NOT NULL, "prerequisites" text NOT NULL, "migration" character varying(200), "notes" character varying(4000), "warnings" text NOT NULL, "uploadedByTokenId" character varying(36), "uploadedAt" character varying(24) NOT NULL, "reservedByUpgradeId" character varying(36), "completedAt" character varying(24), "usedByUpgradeId" character varying(36), CONSTRAINT "PK_020801f620e21f943ead9311c98" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "idx_packages_cluster_uploaded" ON "packages"  ("clusterId", "uploadedAt") `);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_packages_cluster_sha256" ON "packages"  ("clusterId", "sha256") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."uq_packages_cluster_sha256"`);
    await queryRunner.query(`DROP INDEX "public"."idx_packages_cluster_uploaded"`);
    await queryRunner.query(`DROP TABLE "packages"`);
  }
}
