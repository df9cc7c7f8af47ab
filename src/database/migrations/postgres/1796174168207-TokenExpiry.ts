import { MigrationInterface, QueryRunner } from 'typeorm';

export class TokenExpiry1796174168207 implements MigrationInterface {
  name = 'TokenExpiry1796174168207';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "access_tokens" ADD "expiresAt" character varying(24)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "access_tokens" DROP COLUMN "expiresAt"`);
  }
}
