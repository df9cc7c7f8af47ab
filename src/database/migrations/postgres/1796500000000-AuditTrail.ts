import { MigrationInterface, QueryRunner } from 'typeorm';

/** The audit trail (docs/audit.md), and the name of the person behind each event. */
export class AuditTrail1796500000000 implements MigrationInterface {
  name = 'AuditTrail1796500000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "audit_records" ("id" SERIAL NOT NULL, "createdAt" character varying(24) NOT NULL, "actorKind" character varying(10) NOT NULL, "actorTokenId" character varying(36), "actorName" character varying(100), "actorRole" character varying(10), "actorAgentId" character varying(36), "action" character varying(60) NOT NULL, "targetType" character varying(30) NOT NULL, "targetId" character varying(100), "clusterId" character varying(36), "requestId" character varying(100), "summary" character varying(500) NOT NULL, "outcome" character varying(10) NOT NULL, "status" integer, "code" character varying(60), CONSTRAINT "PK_audit_records" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "idx_audit_records_created" ON "audit_records" ("createdAt", "id") `);
    await queryRunner.query(
      `CREATE INDEX "idx_audit_records_cluster_created" ON "audit_records" ("clusterId", "createdAt") `,
    );
    await queryRunner.query(`CREATE INDEX "idx_audit_records_actor_token" ON "audit_records" ("actorTokenId") `);
    await queryRunner.query(`CREATE INDEX "idx_audit_records_target" ON "audit_records" ("targetId") `);
    // Nullable, no default: a catalog-only change, and earlier events read as caused by nobody named.
    await queryRunner.query(`ALTER TABLE "events" ADD "actor" character varying(100)`);
    // Who created each upgrade and uploaded each package, by name (the API shows createdBy, uploadedBy).
    await queryRunner.query(`ALTER TABLE "upgrades" ADD "createdByName" character varying(100)`);
    await queryRunner.query(`ALTER TABLE "packages" ADD "uploadedByName" character varying(100)`);
    await queryRunner.query(
      `UPDATE "upgrades" SET "createdByName" = (SELECT "name" FROM "access_tokens" WHERE "access_tokens"."id" = "upgrades"."createdByTokenId")`,
    );
    await queryRunner.query(
      `UPDATE "packages" SET "uploadedByName" = (SELECT "name" FROM "access_tokens" WHERE "access_tokens"."id" = "packages"."uploadedByTokenId")`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "packages" DROP COLUMN "uploadedByName"`);
    await queryRunner.query(`ALTER TABLE "upgrades" DROP COLUMN "createdByName"`);
    await queryRunner.query(`ALTER TABLE "events" DROP COLUMN "actor"`);
    await queryRunner.query(`DROP TABLE "audit_records"`);
  }
}
