import { MigrationInterface, QueryRunner } from 'typeorm';

export class StreamTickets1795347929513 implements MigrationInterface {
  name = 'StreamTickets1795347929513';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "stream_tickets" ("id" varchar(36) PRIMARY KEY NOT NULL, "secretHash" varchar(64) NOT NULL, "scope" varchar(16) NOT NULL, "scopeId" varchar(36) NOT NULL, "issuedByTokenId" varchar(36) NOT NULL, "expiresAt" varchar(24) NOT NULL, "usedAt" varchar(24), "createdAt" varchar(24) NOT NULL)`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_stream_tickets_secret_hash" ON "stream_tickets" ("secretHash") `);
    await queryRunner.query(`CREATE INDEX "idx_stream_tickets_expires_at" ON "stream_tickets" ("expiresAt") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "idx_stream_tickets_expires_at"`);
    await queryRunner.query(`DROP INDEX "uq_stream_tickets_secret_hash"`);
    await queryRunner.query(`DROP TABLE "stream_tickets"`);
  }
}
