import { MigrationInterface, QueryRunner } from 'typeorm';

/** The audit trail (docs/audit.md), and the name of the person behind each event. */
export class AuditTrail1796500000000 implements MigrationInterface {
  name = 'AuditTrail1796500000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "audit_records" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "createdAt" varchar(24) NOT NULL, "actorKind" varchar(10) NOT NULL, "actorTokenId" varchar(36), "actorName" varchar(100), "actorRole" varchar(10), "actorAgentId" varchar(36), "action" varchar(60) NOT NULL, "targetType" varchar(30) NOT NULL, "targetId" varchar(100), "clusterId" varchar(36), "requestId" varchar(100), "summary" varchar(500) NOT NULL, "outcome" varchar(10) NOT NULL, "status" integer, "code" varchar(60))`,
    );
    await queryRunner.query(`CREATE INDEX "idx_audit_records_created" ON "audit_records" ("createdAt", "id") `);
    await queryRunner.query(
      `CREATE INDEX "idx_audit_records_cluster_created" ON "audit_records" ("clusterId", "createdAt") `,
    );
    await queryRunner.query(`CREATE INDEX "idx_audit_records_actor_token" ON "audit_records" ("actorTokenId") `);
    await queryRunner.query(`CREATE INDEX "idx_audit_records_target" ON "audit_records" ("targetId") `);
    // Nullable, no default: SQLite adds it in place, and earlier events read as caused by nobody named.
    await queryRunner.query(`ALTER TABLE "events" ADD COLUMN "actor" varchar(100)`);
    // Who created each upgrade and uploaded each package, by name (the API shows createdBy, uploadedBy).
    await queryRunner.query(`ALTER TABLE "upgrades" ADD COLUMN "createdByName" varchar(100)`);
    await queryRunner.query(`ALTER TABLE "packages" ADD COLUMN "uploadedByName" varchar(100)`);
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
