import { MigrationInterface, QueryRunner } from 'typeorm';

export class VersionModel1796164184487 implements MigrationInterface {
  name = 'VersionModel1796164184487';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "idx_agent_commands_agent_status"`);
    await queryRunner.query(`DROP INDEX "idx_agent_commands_reference"`);
    await queryRunner.query(
      `CREATE TABLE "temporary_agent_commands" ("id" varchar(36) PRIMARY KEY NOT NULL, "agentId" varchar(36) NOT NULL, "clusterId" varchar(36) NOT NULL, "type" varchar(16) NOT NULL, "payload" text NOT NULL, "reference" varchar(80), "status" varchar(16) NOT NULL, "phase" varchar(32), "percent" integer NOT NULL DEFAULT (0), "message" varchar(500), "resultVersion" varchar(64), "error" varchar(2000), "createdAt" varchar(24) NOT NULL, "updatedAt" varchar(24) NOT NULL, "endedAt" varchar(24), "notes" text, "fetchedAt" varchar(24))`,
    );
    await queryRunner.query(
      `INSERT INTO "temporary_agent_commands"("id", "agentId", "clusterId", "type", "payload", "reference", "status", "phase", "percent", "message", "resultVersion", "error", "createdAt", "updatedAt", "endedAt") SELECT "id", "agentId", "clusterId", "type", "payload", "reference", "status", "phase", "percent", "message", "resultVersion", "error", "createdAt", "updatedAt", "endedAt" FROM "agent_commands"`,
    );
    await queryRunner.query(`DROP TABLE "agent_commands"`);
    await queryRunner.query(`ALTER TABLE "temporary_agent_commands" RENAME TO "agent_commands"`);
    await queryRunner.query(
      `CREATE INDEX "idx_agent_commands_agent_status" ON "agent_commands" ("agentId", "status") `,
    );
    await queryRunner.query(`CREATE INDEX "idx_agent_commands_reference" ON "agent_commands" ("reference") `);
    await queryRunner.query(`DROP INDEX "uq_agents_cluster_address"`);
    await queryRunner.query(`DROP INDEX "uq_agents_cluster_name"`);
    await queryRunner.query(`DROP INDEX "uq_agents_group_role"`);
    await queryRunner.query(`DROP INDEX "idx_agents_cluster_state"`);
    await queryRunner.query(`DROP INDEX "idx_agents_liveness"`);
    await queryRunner.query(`DROP INDEX "idx_agents_upgrade"`);
    await queryRunner.query(`DROP INDEX "uq_agents_pairing_key"`);
    await queryRunner.query(
      `CREATE TABLE "temporary_agents" ("id" varchar(36) PRIMARY KEY NOT NULL, "clusterId" varchar(36) NOT NULL, "name" varchar(100) NOT NULL, "address" varchar(253) NOT NULL, "role" varchar(16) NOT NULL, "failoverGroup" varchar(100), "active" boolean NOT NULL, "version" varchar(64), "webappsVersion" varchar(64), "busy" boolean NOT NULL DEFAULT (0), "facts" text, "remoteUpgrade" boolean NOT NULL DEFAULT (1), "autoUpgrade" boolean NOT NULL DEFAULT (1), "pairingKeyHash" varchar(64), "pairingKeyExpiresAt" varchar(24), "pairingKeyUsedAt" varchar(24), "pairedAt" varchar(24), "lastSeenAt" varchar(24), "online" boolean NOT NULL DEFAULT (0), "removalRequestedAt" varchar(24), "upgradeId" varchar(36), "hold" boolean NOT NULL DEFAULT (0), "upgrading" boolean NOT NULL DEFAULT (0), "lastUpgradeFailed" boolean NOT NULL DEFAULT (0), "state" varchar(16) NOT NULL, "versionStatus" varchar(16) NOT NULL, "createdAt" varchar(24) NOT NULL, "updatedAt" varchar(24) NOT NULL, "autoUpgradeBlocked" varchar(500), "autoUpgradeRetryAt" varchar(24), "autoUpgradeAttempts" integer NOT NULL DEFAULT (0))`,
    );
    await queryRunner.query(
      `INSERT INTO "temporary_agents"("id", "clusterId", "name", "address", "role", "failoverGroup", "active", "version", "webappsVersion", "busy", "facts", "remoteUpgrade", "autoUpgrade", "pairingKeyHash", "pairingKeyExpiresAt", "pairingKeyUsedAt", "pairedAt", "lastSeenAt", "online", "removalRequestedAt", "upgradeId", "hold", "upgrading", "lastUpgradeFailed", "state", "versionStatus", "createdAt", "updatedAt") SELECT "id", "clusterId", "name", "address", "role", "failoverGroup", "active", "version", "webappsVersion", "busy", "facts", "remoteUpgrade", "autoUpgrade", "pairingKeyHash", "pairingKeyExpiresAt", "pairingKeyUsedAt", "pairedAt", "lastSeenAt", "online", "removalRequestedAt", "upgradeId", "hold", "upgrading", "lastUpgradeFailed", "state", "versionStatus", "createdAt", "updatedAt" FROM "agents"`,
    );
    await queryRunner.query(`DROP TABLE "agents"`);
    await queryRunner.query(`ALTER TABLE "temporary_agents" RENAME TO "agents"`);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_agents_cluster_address" ON "agents" ("clusterId", "address") `);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_agents_cluster_name" ON "agents" ("clusterId", "name") `);
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_agents_group_role" ON "agents" ("clusterId", "failoverGroup", "role") `,
    );
    await queryRunner.query(`CREATE INDEX "idx_agents_cluster_state" ON "agents" ("clusterId", "state") `);
    await queryRunner.query(`CREATE INDEX "idx_agents_liveness" ON "agents" ("online", "lastSeenAt") `);
    await queryRunner.query(`CREATE INDEX "idx_agents_upgrade" ON "agents" ("upgradeId") `);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_agents_pairing_key" ON "agents" ("pairingKeyHash") `);
    await queryRunner.query(`DROP INDEX "uq_clusters_name"`);
    await queryRunner.query(
      `CREATE TABLE "temporary_clusters" ("id" varchar(36) PRIMARY KEY NOT NULL, "name" varchar(100) NOT NULL, "product" varchar(100) NOT NULL, "targetVersion" varchar(64), "targetPackageId" varchar(36), "defaultPolicy" varchar(32) NOT NULL, "defaultOptions" text NOT NULL, "createdAt" varchar(24) NOT NULL, "updatedAt" varchar(24) NOT NULL, "webappsTargetVersion" varchar(64), "webappsTargetPackageId" varchar(36))`,
    );
    await queryRunner.query(
      `INSERT INTO "temporary_clusters"("id", "name", "product", "targetVersion", "targetPackageId", "defaultPolicy", "defaultOptions", "createdAt", "updatedAt") SELECT "id", "name", "product", "targetVersion", "targetPackageId", "defaultPolicy", "defaultOptions", "createdAt", "updatedAt" FROM "clusters"`,
    );
    await queryRunner.query(`DROP TABLE "clusters"`);
    await queryRunner.query(`ALTER TABLE "temporary_clusters" RENAME TO "clusters"`);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_clusters_name" ON "clusters" ("name") `);
    await queryRunner.query(`DROP INDEX "idx_upgrade_steps_upgrade"`);
    await queryRunner.query(`DROP INDEX "idx_upgrade_steps_agent_status"`);
    await queryRunner.query(
      `CREATE TABLE "temporary_upgrade_steps" ("id" varchar(36) PRIMARY KEY NOT NULL, "upgradeId" varchar(36) NOT NULL, "ordinal" integer NOT NULL, "kind" varchar(16) NOT NULL, "agentId" varchar(36) NOT NULL, "fromAgentId" varchar(36), "failoverGroup" varchar(100), "unit" integer NOT NULL, "batch" integer NOT NULL, "dependsOn" text NOT NULL, "runWhen" varchar(16) NOT NULL, "status" varchar(16) NOT NULL, "waitingFor" varchar(16), "waitingSince" varchar(24), "phase" varchar(32), "phaseStartedAt" varchar(24), "percent" integer NOT NULL DEFAULT (0), "attempts" integer NOT NULL DEFAULT (0), "commandId" varchar(36), "note" varchar(500), "error" varchar(2000), "startedAt" varchar(24), "endedAt" varchar(24), "updatedAt" varchar(24) NOT NULL, "message" varchar(500), "agentNotes" text)`,
    );
    await queryRunner.query(
      `INSERT INTO "temporary_upgrade_steps"("id", "upgradeId", "ordinal", "kind", "agentId", "fromAgentId", "failoverGroup", "unit", "batch", "dependsOn", "runWhen", "status", "waitingFor", "waitingSince", "phase", "phaseStartedAt", "percent", "attempts", "commandId", "note", "error", "startedAt", "endedAt", "updatedAt") SELECT "id", "upgradeId", "ordinal", "kind", "agentId", "fromAgentId", "failoverGroup", "unit", "batch", "dependsOn", "runWhen", "status", "waitingFor", "waitingSince", "phase", "phaseStartedAt", "percent", "attempts", "commandId", "note", "error", "startedAt", "endedAt", "updatedAt" FROM "upgrade_steps"`,
    );
    await queryRunner.query(`DROP TABLE "upgrade_steps"`);
    await queryRunner.query(`ALTER TABLE "temporary_upgrade_steps" RENAME TO "upgrade_steps"`);
    await queryRunner.query(`CREATE INDEX "idx_upgrade_steps_upgrade" ON "upgrade_steps" ("upgradeId", "ordinal") `);
    await queryRunner.query(`CREATE INDEX "idx_upgrade_steps_agent_status" ON "upgrade_steps" ("agentId", "status") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "idx_upgrade_steps_agent_status"`);
    await queryRunner.query(`DROP INDEX "idx_upgrade_steps_upgrade"`);
    await queryRunner.query(`ALTER TABLE "upgrade_steps" RENAME TO "temporary_upgrade_steps"`);
    await queryRunner.query(
      `CREATE TABLE "upgrade_steps" ("id" varchar(36) PRIMARY KEY NOT NULL, "upgradeId" varchar(36) NOT NULL, "ordinal" integer NOT NULL, "kind" varchar(16) NOT NULL, "agentId" varchar(36) NOT NULL, "fromAgentId" varchar(36), "failoverGroup" varchar(100), "unit" integer NOT NULL, "batch" integer NOT NULL, "dependsOn" text NOT NULL, "runWhen" varchar(16) NOT NULL, "status" varchar(16) NOT NULL, "waitingFor" varchar(16), "waitingSince" varchar(24), "phase" varchar(32), "phaseStartedAt" varchar(24), "percent" integer NOT NULL DEFAULT (0), "attempts" integer NOT NULL DEFAULT (0), "commandId" varchar(36), "note" varchar(500), "error" varchar(2000), "startedAt" varchar(24), "endedAt" varchar(24), "updatedAt" varchar(24) NOT NULL)`,
    );
    await queryRunner.query(
      `INSERT INTO "upgrade_steps"("id", "upgradeId", "ordinal", "kind", "agentId", "fromAgentId", "failoverGroup", "unit", "batch", "dependsOn", "runWhen", "status", "waitingFor", "waitingSince", "phase", "phaseStartedAt", "percent", "attempts", "commandId", "note", "error", "startedAt", "endedAt", "updatedAt") SELECT "id", "upgradeId", "ordinal", "kind", "agentId", "fromAgentId", "failoverGroup", "unit", "batch", "dependsOn", "runWhen", "status", "waitingFor", "waitingSince", "phase", "phaseStartedAt", "percent", "attempts", "commandId", "note", "error", "startedAt", "endedAt", "updatedAt" FROM "temporary_upgrade_steps"`,
    );
    await queryRunner.query(`DROP TABLE "temporary_upgrade_steps"`);
    await queryRunner.query(`CREATE INDEX "idx_upgrade_steps_agent_status" ON "upgrade_steps" ("agentId", "status") `);
    await queryRunner.query(`CREATE INDEX "idx_upgrade_steps_upgrade" ON "upgrade_steps" ("upgradeId", "ordinal") `);
    await queryRunner.query(`DROP INDEX "uq_clusters_name"`);
    await queryRunner.query(`ALTER TABLE "clusters" RENAME TO "temporary_clusters"`);
    await queryRunner.query(
      `CREATE TABLE "clusters" ("id" varchar(36) PRIMARY KEY NOT NULL, "name" varchar(100) NOT NULL, "product" varchar(100) NOT NULL, "targetVersion" varchar(64), "targetPackageId" varchar(36), "defaultPolicy" varchar(32) NOT NULL, "defaultOptions" text NOT NULL, "createdAt" varchar(24) NOT NULL, "updatedAt" varchar(24) NOT NULL)`,
    );
    await queryRunner.query(
      `INSERT INTO "clusters"("id", "name", "product", "targetVersion", "targetPackageId", "defaultPolicy", "defaultOptions", "createdAt", "updatedAt") SELECT "id", "name", "product", "targetVersion", "targetPackageId", "defaultPolicy", "defaultOptions", "createdAt", "updatedAt" FROM "temporary_clusters"`,
    );
    await queryRunner.query(`DROP TABLE "temporary_clusters"`);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_clusters_name" ON "clusters" ("name") `);
    await queryRunner.query(`DROP INDEX "uq_agents_pairing_key"`);
    await queryRunner.query(`DROP INDEX "idx_agents_upgrade"`);
    await queryRunner.query(`DROP INDEX "idx_agents_liveness"`);
    await queryRunner.query(`DROP INDEX "idx_agents_cluster_state"`);
    await queryRunner.query(`DROP INDEX "uq_agents_group_role"`);
    await queryRunner.query(`DROP INDEX "uq_agents_cluster_name"`);
    await queryRunner.query(`DROP INDEX "uq_agents_cluster_address"`);
    await queryRunner.query(`ALTER TABLE "agents" RENAME TO "temporary_agents"`);
    await queryRunner.query(
      `CREATE TABLE "agents" ("id" varchar(36) PRIMARY KEY NOT NULL, "clusterId" varchar(36) NOT NULL, "name" varchar(100) NOT NULL, "address" varchar(253) NOT NULL, "role" varchar(16) NOT NULL, "failoverGroup" varchar(100), "active" boolean NOT NULL, "version" varchar(64), "webappsVersion" varchar(64), "busy" boolean NOT NULL DEFAULT (0), "facts" text, "remoteUpgrade" boolean NOT NULL DEFAULT (1), "autoUpgrade" boolean NOT NULL DEFAULT (1), "pairingKeyHash" varchar(64), "pairingKeyExpiresAt" varchar(24), "pairingKeyUsedAt" varchar(24), "pairedAt" varchar(24), "lastSeenAt" varchar(24), "online" boolean NOT NULL DEFAULT (0), "removalRequestedAt" varchar(24), "upgradeId" varchar(36), "hold" boolean NOT NULL DEFAULT (0), "upgrading" boolean NOT NULL DEFAULT (0), "lastUpgradeFailed" boolean NOT NULL DEFAULT (0), "state" varchar(16) NOT NULL, "versionStatus" varchar(16) NOT NULL, "createdAt" varchar(24) NOT NULL, "updatedAt" varchar(24) NOT NULL)`,
    );
    await queryRunner.query(
      `INSERT INTO "agents"("id", "clusterId", "name", "address", "role", "failoverGroup", "active", "version", "webappsVersion", "busy", "facts", "remoteUpgrade", "autoUpgrade", "pairingKeyHash", "pairingKeyExpiresAt", "pairingKeyUsedAt", "pairedAt", "lastSeenAt", "online", "removalRequestedAt", "upgradeId", "hold", "upgrading", "lastUpgradeFailed", "state", "versionStatus", "createdAt", "updatedAt") SELECT "id", "clusterId", "name", "address", "role", "failoverGroup", "active", "version", "webappsVersion", "busy", "facts", "remoteUpgrade", "autoUpgrade", "pairingKeyHash", "pairingKeyExpiresAt", "pairingKeyUsedAt", "pairedAt", "lastSeenAt", "online", "removalRequestedAt", "upgradeId", "hold", "upgrading", "lastUpgradeFailed", "state", "versionStatus", "createdAt", "updatedAt" FROM "temporary_agents"`,
    );
    await queryRunner.query(`DROP TABLE "temporary_agents"`);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_agents_pairing_key" ON "agents" ("pairingKeyHash") `);
    await queryRunner.query(`CREATE INDEX "idx_agents_upgrade" ON "agents" ("upgradeId") `);
    await queryRunner.query(`CREATE INDEX "idx_agents_liveness" ON "agents" ("online", "lastSeenAt") `);
    await queryRunner.query(`CREATE INDEX "idx_agents_cluster_state" ON "agents" ("clusterId", "state") `);
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_agents_group_role" ON "agents" ("clusterId", "failoverGroup", "role") `,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_agents_cluster_name" ON "agents" ("clusterId", "name") `);
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_agents_cluster_address" ON "agents" ("clusterId", "address") `);
    await queryRunner.query(`DROP INDEX "idx_agent_commands_reference"`);
    await queryRunner.query(`DROP INDEX "idx_agent_commands_agent_status"`);
    await queryRunner.query(`ALTER TABLE "agent_commands" RENAME TO "temporary_agent_commands"`);
    await queryRunner.query(
      `CREATE TABLE "agent_commands" ("id" varchar(36) PRIMARY KEY NOT NULL, "agentId" varchar(36) NOT NULL, "clusterId" varchar(36) NOT NULL, "type" varchar(16) NOT NULL, "payload" text NOT NULL, "reference" varchar(80), "status" varchar(16) NOT NULL, "phase" varchar(32), "percent" integer NOT NULL DEFAULT (0), "message" varchar(500), "resultVersion" varchar(64), "error" varchar(2000), "createdAt" varchar(24) NOT NULL, "updatedAt" varchar(24) NOT NULL, "endedAt" varchar(24))`,
    );
    await queryRunner.query(
      `INSERT INTO "agent_commands"("id", "agentId", "clusterId", "type", "payload", "reference", "status", "phase", "percent", "message", "resultVersion", "error", "createdAt", "updatedAt", "endedAt") SELECT "id", "agentId", "clusterId", "type", "payload", "reference", "status", "phase", "percent", "message", "resultVersion", "error", "createdAt", "updatedAt", "endedAt" FROM "temporary_agent_commands"`,
    );
    await queryRunner.query(`DROP TABLE "temporary_agent_commands"`);
    await queryRunner.query(`CREATE INDEX "idx_agent_commands_reference" ON "agent_commands" ("reference") `);
    await queryRunner.query(
      `CREATE INDEX "idx_agent_commands_agent_status" ON "agent_commands" ("agentId", "status") `,
    );
  }
}
