import { MigrationInterface, QueryRunner } from "typeorm";

export class AccessTokens1795345497333 implements MigrationInterface {
    name = 'AccessTokens1795345497333'

    public async up(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`CREATE TABLE "access_tokens" ("id" varchar(36) PRIMARY KEY NOT NULL, "name" varchar(100) NOT NULL, "role" varchar(10) NOT NULL, "agentId" varchar(36), "secretHash" varchar(64) NOT NULL, "prefix" varchar(12) NOT NULL, "createdByTokenId" varchar(36), "createdAt" varchar(24) NOT NULL, "revokedAt" varchar(24))`);
        await queryRunner.query(`CREATE INDEX "idx_access_tokens_agent" ON "access_tokens" ("agentId") `);
        await queryRunner.query(`CREATE UNIQUE INDEX "uq_access_tokens_secret_hash" ON "access_tokens" ("secretHash") `);
    }

    public async down(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`DROP INDEX "uq_access_tokens_secret_hash"`);
        await queryRunner.query(`DROP INDEX "idx_access_tokens_agent"`);
        await queryRunner.query(`DROP TABLE "access_tokens"`);
    }

}
