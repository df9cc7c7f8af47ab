import { MigrationInterface, QueryRunner } from 'typeorm';

export class Initial1795346128061 implements MigrationInterface {
  name = 'Initial1795346128061';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "access_tokens" ("id" varchar(36) PRIMARY KEY NOT NULL, "name" varchar(100) NOT NULL, "role" varchar(10) NOT NULL, "agentId" varchar(36), "secretHash" varchar(64) NOT NULL, "prefix" varchar(12) NOT NULL, "createdByTokenId" varchar(36), "createdAt" varchar(24) NOT NULL, "revokedAt" varchar(24))`,
    );
    await queryRunner.query(`CREATE INDEX "idx_access_tokens_agent" ON "access_tokens" ("agentId") `);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_access_tokens_secret_hash" ON "access_tokens" ("secretHash") `);
    await queryRunner.query(
      `CREATE TABLE "agent_commands" ("id" varchar(36) PRIMARY KEY NOT NULL, "agentId" varchar(36) NOT NULL, "clusterId" varchar(36) NOT NULL, "type" varchar(16) NOT NULL, "payload" text NOT NULL, "reference" varchar(80), "status" varchar(16) NOT NULL, "phase" varchar(32), "percent" integer NOT NULL DEFAULT (0), "message" varchar(500), "resultVersion" varchar(64), "error" varchar(2000), "createdAt" varchar(24) NOT NULL, "updatedAt" varchar(24) NOT NULL, "endedAt" varchar(24))`,
    );
    await queryRunner.query(`CREATE INDEX "idx_agent_commands_reference" ON "agent_commands" ("reference") `);
    await queryRunner.query(
      `CREATE INDEX "idx_agent_commands_agent_status" ON "agent_commands" ("agentId", "status") `,
    );
    await queryRunner.query(
      `CREATE TABLE "agents" ("id" varchar(36) PRIMARY KEY NOT NULL, "clusterId" varchar(36) NOT NULL, "name" varchar(100) NOT NULL, "address" varchar(253) NOT NULL, "role" varchar(16) NOT NULL, "failoverGroup" varchar(100), "active" boolean NOT NULL, "version" varchar(64), "webappsVersion" varchar(64), "busy" boolean NOT NULL DEFAULT (0), "facts" text, "remoteUpgrade" boolean NOT NULL DEFAULT (1), "autoUpgrade" boolean NOT NULL DEFAULT (1), "pairingKeyHash" varchar(64), "pairingKeyExpiresAt" varchar(24), "pairingKeyUsedAt" varchar(24), "pairedAt" varchar(24), "lastSeenAt" varchar(24), "online" boolean NOT NULL DEFAULT (0), "removalRequestedAt" varchar(24), "upgradeId" varchar(36), "hold" boolean NOT NULL DEFAULT (0), "upgrading" boolean NOT NULL DEFAULT (0), "lastUpgradeFailed" boolean NOT NULL DEFAULT (0), "state" varchar(16) NOT NULL, "versionStatus" varchar(16) NOT NULL, "createdAt" varchar(24) NOT NULL, "updatedAt" varchar(24) NOT NULL)`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_agents_pairing_key" ON "agents" ("pairingKeyHash") `);
    await queryRunner.query(`CREATE INDEX "idx_agents_upgrade" ON "agents" ("upgradeId") `);
    await queryRunner.query(`CREATE INDEX "idx_agents_liveness" ON "agents" ("online", "lastSeenAt") `);
    await queryRunner.query(`CREATE INDEX "idx_agents_cluster_state" ON "agents" ("clusterId", "state") `);
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_agents_group_role" ON "agents" ("clusterId", "failoverGroup", "role") `,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_agents_cluster_name" ON "agents" ("clusterId", "name") `);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_agents_cluster_address" ON "agents" ("clusterId", "address") `);
    await queryRunner.query(
      `CREATE TABLE "clusters" ("id" varchar(36) PRIMARY KEY NOT NULL, "name" varchar(100) NOT NULL, "product" varchar(100) NOT NULL, "targetVersion" varchar(64), "targetPackageId" varchar(36), "defaultPolicy" varchar(32) NOT NULL, "defaultOptions" text NOT NULL, "createdAt" varchar(24) NOT NULL, "updatedAt" varchar(24) NOT NULL)`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_clusters_name" ON "clusters" ("name") `);
    await queryRunner.query(
      `CREATE TABLE "events" ("id" bigint PRIMARY KEY NOT NULL, "type" varchar(32) NOT NULL, "clusterId" varchar(36) NOT NULL, "upgradeId" varchar(36), "agentId" varchar(36), "data" text NOT NULL, "createdAt" varchar(24) NOT NULL)`,
    );
    await queryRunner.query(`CREATE INDEX "idx_events_created_at" ON "events" ("createdAt") `);
    await queryRunner.query(`CREATE INDEX "idx_events_upgrade" ON "events" ("upgradeId", "id") `);
    await queryRunner.query(`CREATE INDEX "idx_events_cluster" ON "events" ("clusterId", "id") `);
    await queryRunner.query(
      `CREATE TABLE "event_sequence" ("name" varchar(16) PRIMARY KEY NOT NULL, "lastId" bigint NOT NULL)`,
    );
    await queryRunner.query(`INSERT INTO "event_sequence" ("name", "lastId") VALUES (\'events\', 0)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "event_sequence"`);
    await queryRunner.query(`DROP INDEX "idx_events_cluster"`);
    await queryRunner.query(`DROP INDEX "idx_events_upgrade"`);
    await queryRunner.query(`DROP INDEX "idx_events_created_at"`);
    await queryRunner.query(`DROP TABLE "events"`);
    await queryRunner.query(`DROP INDEX "uq_clusters_name"`);
    await queryRunner.query(`DROP TABLE "clusters"`);
    await queryRunner.query(`DROP INDEX "uq_agents_cluster_address"`);
    await queryRunner.query(`DROP INDEX "uq_agents_cluster_name"`);
    await queryRunner.query(`DROP INDEX "uq_agents_group_role"`);
    await queryRunner.query(`DROP INDEX "idx_agents_cluster_state"`);
    await queryRunner.query(`DROP INDEX "idx_agents_liveness"`);
    await queryRunner.query(`DROP INDEX "idx_agents_upgrade"`);
    await queryRunner.query(`DROP INDEX "uq_agents_pairing_key"`);
    await queryRunner.query(`DROP TABLE "agents"`);
    await queryRunner.query(`DROP INDEX "idx_agent_commands_agent_status"`);
    await queryRunner.query(`DROP INDEX "idx_agent_commands_reference"`);
    await queryRunner.query(`DROP TABLE "agent_commands"`);
    await queryRunner.query(`DROP INDEX "uq_access_tokens_secret_hash"`);
    await queryRunner.query(`DROP INDEX "idx_access_tokens_agent"`);
    await queryRunner.query(`DROP TABLE "access_tokens"`);
  }
}
