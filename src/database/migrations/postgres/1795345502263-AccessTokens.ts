import { MigrationInterface, QueryRunner } from "typeorm";

export class AccessTokens1795345502263 implements MigrationInterface {
    name = 'AccessTokens1795345502263'

    public async up(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`CREATE TABLE "access_tokens" ("id" character varying(36) NOT NULL, "name" character varying(100) NOT NULL, "role" character varying(10) NOT NULL, "agentId" character varying(36), "secretHash" character varying(64) NOT NULL, "prefix" character varying(12) NOT NULL, "createdByTokenId" character varying(36), "createdAt" character varying(24) NOT NULL, "revokedAt" character varying(24), CONSTRAINT "PK_65140f59763ff994a0252488166" PRIMARY KEY ("id"))`);
        await queryRunner.query(`CREATE INDEX "idx_access_tokens_agent" ON "access_tokens"  ("agentId") `);
        await queryRunner.query(`CREATE UNIQUE INDEX "uq_access_tokens_secret_hash" ON "access_tokens"  ("secretHash") `);
    }

    public async down(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`DROP INDEX "public"."uq_access_tokens_secret_hash"`);
        await queryRunner.query(`DROP INDEX "public"."idx_access_tokens_agent"`);
        await queryRunner.query(`DROP TABLE "access_tokens"`);
    }

}
