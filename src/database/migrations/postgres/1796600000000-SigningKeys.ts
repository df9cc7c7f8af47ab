import { MigrationInterface, QueryRunner } from 'typeorm';

export class SigningKeys1796600000000 implements MigrationInterface {
  name = 'SigningKeys1796600000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "signing_keys" ("id" character varying(36) NOT NULL, "clusterId" character varying(36) NOT NULL, "name" character varying(100) NOT NULL, "publicKey" character varying(400) NOT NULL, "fingerprint" character varying(64) NOT NULL, "createdAt" character varying(24) NOT NULL, "createdByTokenId" character varying(36), CONSTRAINT "PK_ab7d78cf6e61dc3904133b4cd55" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_signing_keys_cluster_name" ON "signing_keys" ("clusterId", "name") `,
    );
    // Existing clusters require no signatures; existing packages are unsigned.
    await queryRunner.query(`ALTER TABLE "clusters" ADD "requireSignedPackages" boolean NOT NULL DEFAULT false`);
    await queryRunner.query(`ALTER TABLE "clusters" ADD "signingRevision" integer NOT NULL DEFAULT 0`);
    await queryRunner.query(`ALTER TABLE "packages" ADD "signature" character varying(100)`);
    await queryRunner.query(`ALTER TABLE "packages" ADD "signingKeyId" character varying(36)`);
    await queryRunner.query(`ALTER TABLE "packages" ADD "signingKeyName" character varying(100)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "packages" DROP COLUMN "signingKeyName"`);
    await queryRunner.query(`ALTER TABLE "packages" DROP COLUMN "signingKeyId"`);
    await queryRunner.query(`ALTER TABLE "packages" DROP COLUMN "signature"`);
    await queryRunner.query(`ALTER TABLE "clusters" DROP COLUMN "signingRevision"`);
    await queryRunner.query(`ALTER TABLE "clusters" DROP COLUMN "requireSignedPackages"`);
    await queryRunner.query(`DROP INDEX "public"."uq_signing_keys_cluster_name"`);
    await queryRunner.query(`DROP TABLE "signing_keys"`);
  }
}
