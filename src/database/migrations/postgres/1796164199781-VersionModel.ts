import { MigrationInterface, QueryRunner } from 'typeorm';

export class VersionModel1796164199781 implements MigrationInterface {
  name = 'VersionModel1796164199781';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "agent_commands" ADD "notes" text`);
    await queryRunner.query(`ALTER TABLE "agent_commands" ADD "fetchedAt" character varying(24)`);
    await queryRunner.query(`ALTER TABLE "agents" ADD "autoUpgradeBlocked" character varying(500)`);
    await queryRunner.query(`ALTER TABLE "agents" ADD "autoUpgradeRetryAt" character varying(24)`);
    await queryRunner.query(`ALTER TABLE "agents" ADD "autoUpgradeAttempts" integer NOT NULL DEFAULT '0'`);
    await queryRunner.query(`ALTER TABLE "clusters" ADD "webappsTargetVersion" character varying(64)`);
    await queryRunner.query(`ALTER TABLE "clusters" ADD "webappsTargetPackageId" character varying(36)`);
    await queryRunner.query(`ALTER TABLE "upgrade_steps" ADD "message" character varying(500)`);
    await queryRunner.query(`ALTER TABLE "upgrade_steps" ADD "agentNotes" text`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "upgrade_steps" DROP COLUMN "agentNotes"`);
    await queryRunner.query(`ALTER TABLE "upgrade_steps" DROP COLUMN "message"`);
    await queryRunner.query(`ALTER TABLE "clusters" DROP COLUMN "webappsTargetPackageId"`);
    await queryRunner.query(`ALTER TABLE "clusters" DROP COLUMN "webappsTargetVersion"`);
    await queryRunner.query(`ALTER TABLE "agents" DROP COLUMN "autoUpgradeAttempts"`);
    await queryRunner.query(`ALTER TABLE "agents" DROP COLUMN "autoUpgradeRetryAt"`);
    await queryRunner.query(`ALTER TABLE "agents" DROP COLUMN "autoUpgradeBlocked"`);
    await queryRunner.query(`ALTER TABLE "agent_commands" DROP COLUMN "fetchedAt"`);
    await queryRunner.query(`ALTER TABLE "agent_commands" DROP COLUMN "notes"`);
  }
}
