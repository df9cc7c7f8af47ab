import { MigrationInterface, QueryRunner } from 'typeorm';

/** What a rollback needs (docs/rollback.md): the agents as they were, the rollback rounds' steps, and the mixed-version budget's clock. */
export class Rollbacks1796250000000 implements MigrationInterface {
  name = 'Rollbacks1796250000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "upgrades" ADD "priorState" text`);
    await queryRunner.query(`ALTER TABLE "upgrades" ADD "rollbackRound" integer NOT NULL DEFAULT '0'`);
    await queryRunner.query(`ALTER TABLE "upgrades" ADD "mixedSince" character varying(24)`);
    await queryRunner.query(`ALTER TABLE "upgrades" ADD "budgetFrom" character varying(24)`);
    await queryRunner.query(`ALTER TABLE "upgrade_steps" ADD "round" integer NOT NULL DEFAULT '0'`);
    await queryRunner.query(`ALTER TABLE "upgrade_steps" ADD "backup" character varying(100)`);
    await queryRunner.query(`ALTER TABLE "upgrade_steps" ADD "toVersion" character varying(64)`);
    // What every report reads (the upgrade's percent) is the current round's: the covering index takes the round.
    await queryRunner.query(`DROP INDEX "public"."idx_upgrade_steps_upgrade_status"`);
    await queryRunner.query(
      `CREATE INDEX "idx_upgrade_steps_upgrade_status" ON "upgrade_steps" ("upgradeId", "round", "status", "percent") `,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."idx_upgrade_steps_upgrade_status"`);
    await queryRunner.query(
      `CREATE INDEX "idx_upgrade_steps_upgrade_status" ON "upgrade_steps" ("upgradeId", "status", "percent") `,
    );
    await queryRunner.query(`ALTER TABLE "upgrades" DROP COLUMN "budgetFrom"`);
    await queryRunner.query(`ALTER TABLE "upgrades" DROP COLUMN "mixedSince"`);
    await queryRunner.query(`ALTER TABLE "upgrade_steps" DROP COLUMN "toVersion"`);
    await queryRunner.query(`ALTER TABLE "upgrade_steps" DROP COLUMN "backup"`);
    await queryRunner.query(`ALTER TABLE "upgrade_steps" DROP COLUMN "round"`);
    await queryRunner.query(`ALTER TABLE "upgrades" DROP COLUMN "rollbackRound"`);
    await queryRunner.query(`ALTER TABLE "upgrades" DROP COLUMN "priorState"`);
  }
}
