import { MigrationInterface, QueryRunner } from 'typeorm';

export class Upgrades1795357903849 implements MigrationInterface {
  name = 'Upgrades1795357903849';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "upgrades" ("id" character varying(36) NOT NULL, "clusterId" character varying(36) NOT NULL, "packageId" character varying(36) NOT NULL, "packageVersion" character varying(64) NOT NULL, "packageKind" character varying(16) NOT NULL, "status" character varying(24) NOT NULL, "origin" character varying(16) NOT NULL, "target" text NOT NULL, "policy" character varying(32) NOT NULL, "resolvedPolicy" character varying(32) NOT NULL, "options" text NOT NULL, "units" integer NOT NULL, "failureLimit" integer, "canaryPending" boolean NOT NULL DEFAULT false, "warnings" text NOT NULL, "percent" integer NOT NULL DEFAULT '0', "reason" character varying(500), "createdByTokenId" character varying(36), "scheduledAt" character varying(24), "startedAt" character varying(24), "finishedAt" character varying(24), "createdAt" character varying(24) NOT NULL, "updatedAt" character varying(24) NOT NULL, CONSTRAINT "PK_2caaffed78e7c935acd382e4c86" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "idx_upgrades_status" ON "upgrades"  ("status") `);
    await queryRunner.query(`CREATE INDEX "idx_upgrades_cluster_created" ON "upgrades"  ("clusterId", "createdAt") `);
    await queryRunner.query(
      `CREATE TABLE "upgrade_steps" ("id" character varying(36) NOT NULL, "upgradeId" character varying(36) NOT NULL, "ordinal" integer NOT NULL, "kind" character varying(16) NOT NULL, "agentId" character varying(36) NOT NULL, "fromAgentId" character varying(36), "failoverGroup" character varying(100), "unit" integer NOT NULL, "batch" integer NOT NULL, "dependsOn" text NOT NULL, "runWhen" character varying(16) NOT NULL, "status" character varying(16) NOT NULL, "waitingFor" character varying(16), "waitingSince" character varying(24), "phase" character varying(32), "phaseStartedAt" character varying(24), "percent" integer NOT NULL DEFAULT '0', "attempts" integer NOT NULL DEFAULT '0', "commandId" character varying(36), "note" character varying(500), "error" character varying(2000), "startedAt" character varying(24), "endedAt" character varying(24), "updatedAt" character varying(24) NOT NULL, CONSTRAINT "PK_1b4294e570ab55fa02c10c68db7" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "idx_upgrade_steps_agent_status" ON "upgrade_steps"  ("agentId", "status") `);
    await queryRunner.query(`CREATE INDEX "idx_upgrade_steps_upgrade" ON "upgrade_steps"  ("upgradeId", "ordinal") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."idx_upgrade_steps_upgrade"`);
    await queryRunner.query(`DROP INDEX "public"."idx_upgrade_steps_agent_status"`);
    await queryRunner.query(`DROP TABLE "upgrade_steps"`);
    await queryRunner.query(`DROP INDEX "public"."idx_upgrades_cluster_created"`);
    await queryRunner.query(`DROP INDEX "public"."idx_upgrades_status"`);
    await queryRunner.query(`DROP TABLE "upgrades"`);
  }
}
