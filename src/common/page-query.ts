import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

/** Query text "25" as the number 25, so the checks below see a number; anything else is left for them to refuse. */
export const QueryInt = () =>
  Transform(({ value }: { value: unknown }) => (/^\d+$/.test(String(value)) ? Number(value) : value));

/** `limit` of a list read a page at a time; lists paged by a cursor (the audit trail) extend it. */
export class LimitQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: 1000, description: 'Items per page (each list has its own default).' })
  @IsOptional()
  @QueryInt()
  @IsInt({ message: 'limit must be a whole number from 1 to 1000' })
  @Min(1, { message: 'limit must be a whole number from 1 to 1000' })
  @Max(1000, { message: 'limit must be a whole number from 1 to 1000' })
  limit?: number;
}

/** `limit` and `offset` of a paged list; lists extend it with their filters. */
export class PageQuery extends LimitQuery {
  @ApiPropertyOptional({ default: 0 })
  @IsOptional()
  @QueryInt()
  @IsInt({ message: 'offset must be a whole number from 0 to 1000000000' })
  @Min(0, { message: 'offset must be a whole number from 0 to 1000000000' })
  @Max(1_000_000_000, { message: 'offset must be a whole number from 0 to 1000000000' })
  offset?: number;
}
