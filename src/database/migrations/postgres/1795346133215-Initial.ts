import { MigrationInterface, QueryRunner } from 'typeorm';

export class Initial1795346133215 implements MigrationInterface {
  name = 'Initial1795346133215';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "access_tokens" ("id" character varying(36) NOT NULL, "name" character varying(100) NOT NULL, "role" character varying(10) NOT NULL, "agentId" character varying(36), "secretHash" character varying(64) NOT NULL, "prefix" character varying(12) NOT NULL, "createdByTokenId" character varying(36), "createdAt" character varying(24) NOT NULL, "revokedAt" character varying(24), CONSTRAINT "PK_65140f59763ff994a0252488166" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "idx_access_tokens_agent" ON "access_tokens"  ("agentId") `);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_access_tokens_secret_hash" ON "access_tokens"  ("secretHash") `);
    await queryRunner.query(
      `CREATE TABLE "agent_commands" ("id" character varying(36) NOT NULL, "agentId" character varying(36) NOT NULL, "clusterId" character varying(36) NOT NULL, "type" character varying(16) NOT NULL, "payload" text NOT NULL, "reference" character varying(80), "status" character varying(16) NOT NULL, "phase" character varying(32), "percent" integer NOT NULL DEFAULT '0', "message" character varying(500), "resultVersion" character varying(64), "error" character varying(2000), "createdAt" character varying(24) NOT NULL, "updatedAt" character varying(24) NOT NULL, "endedAt" character varying(24), CONSTRAINT "PK_da43ab3c04ebfb27fc7f408a311" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "idx_agent_commands_reference" ON "agent_commands"  ("reference") `);
    await queryRunner.query(
      `CREATE INDEX "idx_agent_commands_agent_status" ON "agent_commands"  ("agentId", "status") `,
    );
    await queryRunner.query(
      `CREATE TABLE "agents" ("id" character varying(36) NOT NULL, "clusterId" character varying(36) NOT NULL, "name" character varying(100) NOT NULL, "address" character varying(253) NOT NULL, "role" character varying(16) NOT NULL, "failoverGroup" character varying(100), "active" boolean NOT NULL, "version" character varying(64), "webappsVersion" character varying(64), "busy" boolean NOT NULL DEFAULT false, "facts" text, "remoteUpgrade" boolean NOT NULL DEFAULT true, "autoUpgrade" boolean NOT NULL DEFAULT true, "pairingKeyHash" character varying(64), "pairingKeyExpiresAt" character varying(24), "pairingKeyUsedAt" character varying(24), "pairedAt" character varying(24), "lastSeenAt" character varying(24), "online" boolean NOT NULL DEFAULT false, "removalRequestedAt" character varying(24), "upgradeId" character varying(36), "hold" boolean NOT NULL DEFAULT false, "upgrading" boolean NOT NULL DEFAULT false, "lastUpgradeFailed" boolean NOT NULL DEFAULT false, "state" character varying(16) NOT NULL, "versionStatus" character varying(16) NOT NULL, "createdAt" character varying(24) NOT NULL, "updatedAt" character varying(24) NOT NULL, CONSTRAINT "PK_9c653f28ae19c5884d5baf6a1d9" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_agents_pairing_key" ON "agents"  ("pairingKeyHash") `);
    await queryRunner.query(`CREATE INDEX "idx_agents_upgrade" ON "agents"  ("upgradeId") `);
    await queryRunner.query(`CREATE INDEX "idx_agents_liveness" ON "agents"  ("online", "lastSeenAt") `);
    await queryRunner.query(`CREATE INDEX "idx_agents_cluster_state" ON "agents"  ("clusterId", "state") `);
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_agents_group_role" ON "agents"  ("clusterId", "failoverGroup", "role") `,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_agents_cluster_name" ON "agents"  ("clusterId", "name") `);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_agents_cluster_address" ON "agents"  ("clusterId", "address") `);
    await queryRunner.query(
      `CREATE TABLE "clusters" ("id" character varying(36) NOT NULL, "name" character varying(100) NOT NULL, "product" character varying(100) NOT NULL, "targetVersion" character varying(64), "targetPackageId" character varying(36), "defaultPolicy" character varying(32) NOT NULL, "defaultOptions" text NOT NULL, "createdAt" character varying(24) NOT NULL, "updatedAt" character varying(24) NOT NULL, CONSTRAINT "PK_56c8e201f375e1e961dcdd6831c" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_clusters_name" ON "clusters"  ("name") `);
    await queryRunner.query(
      `CREATE TABLE "events" ("id" bigint NOT NULL, "type" character varying(32) NOT NULL, "clusterId" character varying(36) NOT NULL, "upgradeId" character varying(36), "agentId" character varying(36), "data" text NOT NULL, "createdAt" character varying(24) NOT NULL, CONSTRAINT "PK_40731c7151fe4be3116e45ddf73" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "idx_events_created_at" ON "events"  ("createdAt") `);
    await queryRunner.query(`CREATE INDEX "idx_events_upgrade" ON "events"  ("upgradeId", "id") `);
    await queryRunner.query(`CREATE INDEX "idx_events_cluster" ON "events"  ("clusterId", "id") `);
    await queryRunner.query(
      `CREATE TABLE "event_sequence" ("name" character varying(16) NOT NULL, "lastId" bigint NOT NULL, CONSTRAINT "PK_162df1adfec8339ac95a137c2aa" PRIMARY KEY ("name"))`,
    );
    await queryRunner.query(`INSERT INTO "event_sequence" ("name", "lastId") VALUES (\'events\', 0)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "event_sequence"`);
    await queryRunner.query(`DROP INDEX "public"."idx_events_cluster"`);
    await queryRunner.query(`DROP INDEX "public"."idx_events_upgrade"`);
    await queryRunner.query(`DROP INDEX "public"."idx_events_created_at"`);
    await queryRunner.query(`DROP TABLE "events"`);
    await queryRunner.query(`DROP INDEX "public"."uq_clusters_name"`);
    await queryRunner.query(`DROP TABLE "clusters"`);
    await queryRunner.query(`DROP INDEX "public"."uq_agents_cluster_address"`);
    await queryRunner.query(`DROP INDEX "public"."uq_agents_cluster_name"`);
    await queryRunner.query(`DROP INDEX "public"."uq_agents_group_role"`);
    await queryRunner.query(`DROP INDEX "public"."idx_agents_cluster_state"`);
    await queryRunner.query(`DROP INDEX "public"."idx_agents_liveness"`);
    await queryRunner.query(`DROP INDEX "public"."idx_agents_upgrade"`);
    await queryRunner.query(`DROP INDEX "public"."uq_agents_pairing_key"`);
    await queryRunner.query(`DROP TABLE "agents"`);
    await queryRunner.query(`DROP INDEX "public"."idx_agent_commands_agent_status"`);
    await queryRunner.query(`DROP INDEX "public"."idx_agent_commands_reference"`);
    await queryRunner.query(`DROP TABLE "agent_commands"`);
    await queryRunner.query(`DROP INDEX "public"."uq_access_tokens_secret_hash"`);
    await queryRunner.query(`DROP INDEX "public"."idx_access_tokens_agent"`);
    await queryRunner.query(`DROP TABLE "access_tokens"`);
  }
}
