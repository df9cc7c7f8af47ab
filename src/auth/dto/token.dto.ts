import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsDateTime, IsSingleLineText } from '../../common/validators';
import { Transform } from 'class-transformer';
import { IsBoolean, IsIn, IsISO8601, IsOptional, IsString, Length } from 'class-validator';
import { AccessToken, USER_ROLES, type UserRole } from '../access-token.entity';

const EXPIRES_AT_FORM = 'expiresAt must be an ISO-8601 date and time such as 2027-06-30T00:00:00Z';

export class CreateTokenDto {
  @ApiProperty({ description: 'What the token is for, e.g. "ci-uploader".', minLength: 1, maxLength: 100 })
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value))
  @IsString()
  @Length(1, 100)
  @IsSingleLineText()
  name: string;

  @ApiProperty({ enum: USER_ROLES, enumName: 'UserRole' })
  @IsIn(USER_ROLES, { message: `role must be one of: ${USER_ROLES.join(', ')}` })
  role: UserRole;

  @ApiPropertyOptional({
    format: 'date-time',
    nullable: true,
    type: String,
    description:
      'When the token stops working (ISO-8601, in the future, at most 10 years ahead); absent or null: never.',
  })
  @IsOptional()
  // The pattern pins the form; IsISO8601 strict refuses dates that do not exist (2027-02-30).
  @IsDateTime({ message: EXPIRES_AT_FORM })
  @IsISO8601({ strict: true }, { message: EXPIRES_AT_FORM })
  expiresAt?: string | null;
}

export class ListTokensQuery {
  @ApiPropertyOptional({ description: 'Include revoked tokens.', default: false })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean({ message: 'includeRevoked must be true or false' })
  includeRevoked?: boolean;
}

export class TokenDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: USER_ROLES, enumName: 'UserRole' }) role: UserRole;
  @ApiProperty({ description: 'The first characters of the secret, to tell tokens apart.' }) prefix: string;
  @ApiProperty({ format: 'uuid', nullable: true, type: String }) createdByTokenId: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) revokedAt: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'When the token stops working; null: never.',
  })
  expiresAt: string | null;
}

export class IssuedTokenDto extends TokenDto {
  @ApiProperty({ description: 'The bearer secret. Shown only in this response; store it now.' })
  secret: string;
}

export function toTokenDto(token: AccessToken): TokenDto {
  return {
    id: token.id,
    name: token.name,
    role: token.role as UserRole,
    prefix: token.prefix,
    createdByTokenId: token.createdByTokenId,
    createdAt: token.createdAt.toISOString(),
    revokedAt: token.revokedAt?.toISOString() ?? null,
    expiresAt: token.expiresAt?.toISOString() ?? null,
  };
}

/** The caller's token, as GET /api/v1/session shows it. */
export class SessionDto {
  @ApiProperty({ format: 'uuid' }) tokenId: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: ['viewer', 'operator', 'admin'] }) role: string;
}
