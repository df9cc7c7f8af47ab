import { MigrationInterface, QueryRunner } from 'typeorm';

export class TokenExpiry1796174159207 implements MigrationInterface {
  name = 'TokenExpiry1796174159207';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // A nullable column: SQLite adds it in place, existing tokens read as "never expires".
    await queryRunner.query(`ALTER TABLE "access_tokens" ADD COLUMN "expiresAt" varchar(24)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "access_tokens" DROP COLUMN "expiresAt"`);
  }
}
