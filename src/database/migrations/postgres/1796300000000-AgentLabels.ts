import { MigrationInterface, QueryRunner } from 'typeorm';

export class AgentLabels1796300000000 implements MigrationInterface {
  name = 'AgentLabels1796300000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "agents" ADD "labels" text NOT NULL DEFAULT '{}'`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "agents" DROP COLUMN "labels"`);
  }
}
