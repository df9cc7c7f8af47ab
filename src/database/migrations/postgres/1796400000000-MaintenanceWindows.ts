import { MigrationInterface, QueryRunner } from 'typeorm';

export class MaintenanceWindows1796400000000 implements MigrationInterface {
  name = 'MaintenanceWindows1796400000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // Existing clusters have no windows, existing agents take their cluster's, and no step waits for one.
    await queryRunner.query(`ALTER TABLE "clusters" ADD "windows" text`);
    await queryRunner.query(`ALTER TABLE "agents" ADD "windows" text`);
    await queryRunner.query(`ALTER TABLE "upgrade_steps" ADD "windowOpensAt" character varying(24)`);
    // The predictions' read of the latest steps that succeeded (recentStepDurations).
    await queryRunner.query(`CREATE INDEX "idx_upgrade_steps_status_ended" ON "upgrade_steps" ("status", "endedAt") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."idx_upgrade_steps_status_ended"`);
    await queryRunner.query(`ALTER TABLE "upgrade_steps" DROP COLUMN "windowOpensAt"`);
    await queryRunner.query(`ALTER TABLE "agents" DROP COLUMN "windows"`);
    await queryRunner.query(`ALTER TABLE "clusters" DROP COLUMN "windows"`);
  }
}
