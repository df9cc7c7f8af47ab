import { MigrationInterface, QueryRunner } from 'typeorm';

export class StreamTickets1795347938161 implements MigrationInterface {
  name = 'StreamTickets1795347938161';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "stream_tickets" ("id" character varying(36) NOT NULL, "secretHash" character varying(64) NOT NULL, "scope" character varying(16) NOT NULL, "scopeId" character varying(36) NOT NULL, "issuedByTokenId" character varying(36) NOT NULL, "expiresAt" character varying(24) NOT NULL, "usedAt" character varying(24), "createdAt" character varying(24) NOT NULL, CONSTRAINT "PK_33c3996f31c1333c83c3b8e146a" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "uq_stream_tickets_secret_hash" ON "stream_tickets"  ("secretHash") `);
    await queryRunner.query(`CREATE INDEX "idx_stream_tickets_expires_at" ON "stream_tickets"  ("expiresAt") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."idx_stream_tickets_expires_at"`);
    await queryRunner.query(`DROP INDEX "public"."uq_stream_tickets_secret_hash"`);
    await queryRunner.query(`DROP TABLE "stream_tickets"`);
  }
}
