import { MigrationInterface, QueryRunner } from 'typeorm';

export class ReportIndexes1796190000000 implements MigrationInterface {
  name = 'ReportIndexes1796190000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // An agent's steps in one upgrade, and the upgrade's percent (a covering index), on every
    // report: without them SQLite reads every step of the upgrade (see UpgradeRepository). The
    // versions a cluster's agents run, at each end of its first upgrade (see AgentRepository).
    await queryRunner.query(
      `CREATE INDEX "idx_upgrade_steps_upgrade_agent" ON "upgrade_steps" ("upgradeId", "agentId") `,
    );
    await queryRunner.query(
      `CREATE INDEX "idx_upgrade_steps_upgrade_status" ON "upgrade_steps" ("upgradeId", "status", "percent") `,
    );
    await queryRunner.query(`CREATE INDEX "idx_agents_cluster_version" ON "agents" ("clusterId", "version") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "idx_agents_cluster_version"`);
    await queryRunner.query(`DROP INDEX "idx_upgrade_steps_upgrade_status"`);
    await queryRunner.query(`DROP INDEX "idx_upgrade_steps_upgrade_agent"`);
  }
}
