import { MigrationInterface, QueryRunner } from 'typeorm';

export class AgentLabels1796300000000 implements MigrationInterface {
  name = 'AgentLabels1796300000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // A column with a constant default: SQLite adds it in place (the generator would copy the whole
    // table), and every existing agent reads as having no labels.
    await queryRunner.query(`ALTER TABLE "agents" ADD COLUMN "labels" text NOT NULL DEFAULT ('{}')`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "agents" DROP COLUMN "labels"`);
  }
}
