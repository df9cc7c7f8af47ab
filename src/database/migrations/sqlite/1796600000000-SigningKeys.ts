import { MigrationInterface, QueryRunner } from 'typeorm';

export class SigningKeys1796600000000 implements MigrationInterface {
  name = 'SigningKeys1796600000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "signing_keys" ("id" varchar(36) PRIMARY KEY NOT NULL, "clusterId" varchar(36) NOT NULL, "name" varchar(100) NOT NULL, "publicKey" varchar(400) NOT NULL, "fingerprint" varchar(64) NOT NULL, "createdAt" varchar(24) NOT NULL, "createdByTokenId" varchar(36))`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_signing_keys_cluster_name" ON "signing_keys" ("clusterId", "name") `,
    );
    // Columns with constant defaults or none: SQLite adds them in place (the generator would copy
    // each table). Existing clusters require no signatures; existing packages are unsigned.
    await queryRunner.query(`ALTER TABLE "clusters" ADD COLUMN "requireSignedPackages" boolean NOT NULL DEFAULT (0)`);
    await queryRunner.query(`ALTER TABLE "clusters" ADD COLUMN "signingRevision" integer NOT NULL DEFAULT (0)`);
    await queryRunner.query(`ALTER TABLE "packages" ADD COLUMN "signature" varchar(100)`);
    await queryRunner.query(`ALTER TABLE "packages" ADD COLUMN "signingKeyId" varchar(36)`);
    await queryRunner.query(`ALTER TABLE "packages" ADD COLUMN "signingKeyName" varchar(100)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "packages" DROP COLUMN "signingKeyName"`);
    await queryRunner.query(`ALTER TABLE "packages" DROP COLUMN "signingKeyId"`);
    await queryRunner.query(`ALTER TABLE "packages" DROP COLUMN "signature"`);
    await queryRunner.query(`ALTER TABLE "clusters" DROP COLUMN "signingRevision"`);
    await queryRunner.query(`ALTER TABLE "clusters" DROP COLUMN "requireSignedPackages"`);
    await queryRunner.query(`DROP INDEX "uq_signing_keys_cluster_name"`);
    await queryRunner.query(`DROP TABLE "signing_keys"`);
  }
}
