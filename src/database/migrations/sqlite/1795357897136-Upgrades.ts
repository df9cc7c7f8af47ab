import { MigrationInterface, QueryRunner } from 'typeorm';

export class Upgrades1795357897136 implements MigrationInterface {
  name = 'Upgrades1795357897136';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "upgrades" ("id" varchar(36) PRIMARY KEY NOT NULL, "clusterId" varchar(36) NOT NULL, "packageId" varchar(36) NOT NULL, "packageVersion" varchar(64) NOT NULL, "packageKind" varchar(16) NOT NULL, "status" varchar(24) NOT NULL, "origin" varchar(16) NOT NULL, "target" text NOT NULL, "policy" varchar(32) NOT NULL, "resolvedPolicy" varchar(32) NOT NULL, "options" text NOT NULL, "units" integer NOT NULL, "failureLimit" integer, "canaryPending" boolean NOT NULL DEFAULT (0), "warnings" text NOT NULL, "percent" integer NOT NULL DEFAULT (0), "reason" varchar(500), "createdByTokenId" varchar(36), "scheduledAt" varchar(24), "startedAt" varchar(24), "finishedAt" varchar(24), "createdAt" varchar(24) NOT NULL, "updatedAt" varchar(24) NOT NULL)`,
    );
    await queryRunner.query(`CREATE INDEX "idx_upgrades_status" ON "upgrades" ("status") `);
    await queryRunner.query(`CREATE INDEX "idx_upgrades_cluster_created" ON "upgrades" ("clusterId", "createdAt") `);
    await queryRunner.query(
      `CREATE TABLE "upgrade_steps" ("id" varchar(36) PRIMARY KEY NOT NULL, "upgradeId" varchar(36) NOT NULL, "ordinal" integer NOT NULL, "kind" varchar(16) NOT NULL, "agentId" varchar(36) NOT NULL, "fromAgentId" varchar(36), "failoverGroup" varchar(100), "unit" integer NOT NULL, "batch" integer NOT NULL, "dependsOn" text NOT NULL, "runWhen" varchar(16) NOT NULL, "status" varchar(16) NOT NULL, "waitingFor" varchar(16), "waitingSince" varchar(24), "phase" varchar(32), "phaseStartedAt" varchar(24), "percent" integer NOT NULL DEFAULT (0), "attempts" integer NOT NULL DEFAULT (0), "commandId" varchar(36), "note" varchar(500), "error" varchar(2000), "startedAt" varchar(24), "endedAt" varchar(24), "updatedAt" varchar(24) NOT NULL)`,
    );
    await queryRunner.query(`CREATE INDEX "idx_upgrade_steps_agent_status" ON "upgrade_steps" ("agentId", "status") `);
    await queryRunner.query(`CREATE INDEX "idx_upgrade_steps_upgrade" ON "upgrade_steps" ("upgradeId", "ordinal") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "idx_upgrade_steps_upgrade"`);
    await queryRunner.query(`DROP INDEX "idx_upgrade_steps_agent_status"`);
    await queryRunner.query(`DROP TABLE "upgrade_steps"`);
    await queryRunner.query(`DROP INDEX "idx_upgrades_cluster_created"`);
    await queryRunner.query(`DROP INDEX "idx_upgrades_status"`);
    await queryRunner.query(`DROP TABLE "upgrades"`);
  }
}
