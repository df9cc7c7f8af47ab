import { ApiProperty } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsString, Length, MaxLength } from 'class-validator';
import { IsSingleLineText } from '../../common/validators';
import { SigningKey } from '../signing-key.entity';

const trim = () => Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value));

export class CreateSigningKeyDto {
  @ApiProperty({
    description: 'A name for the key, unique in the cluster (who or what signs with it).',
    maxLength: 100,
  })
  @trim()
  @IsString({ message: 'name must be a text' })
  @Length(1, 100, { message: 'name must be 1 to 100 characters' })
  @IsSingleLineText()
  name: string;

  @ApiProperty({
    description:
      'The Ed25519 public key, PEM (SPKI), as `openssl pkey -in key.pem -pubout` or `npm run package -- --keygen` writes it. Other key types are refused.',
    example: '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA...\n-----END PUBLIC KEY-----\n',
  })
  @IsString({ message: 'publicKey must be a PEM public key' })
  @MaxLength(2000, { message: 'publicKey must be at most 2000 characters (an Ed25519 PEM key is about 113)' })
  publicKey: string;
}

export class SigningKeyDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) clusterId: string;
  @ApiProperty() name: string;
  @ApiProperty({ description: 'The Ed25519 public key, PEM (SPKI).' }) publicKey: string;
  @ApiProperty({ description: 'sha256 of the raw 32-byte public key, hex.' }) fingerprint: string;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
}

export function toSigningKeyDto(key: SigningKey): SigningKeyDto {
  return {
    id: key.id,
    clusterId: key.clusterId,
    name: key.name,
    publicKey: key.publicKey,
    fingerprint: key.fingerprint,
    createdAt: key.createdAt.toISOString(),
  };
}

/** A key as agents receive it (SigningPolicyDto.keys). */
export class AgentSigningKeyDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ description: 'The Ed25519 public key, PEM (SPKI).' }) publicKey: string;
}

/** A cluster's signing policy, as the pairing answer and (when it changed) the heartbeat answer carry it. */
export class SigningPolicyDto {
  @ApiProperty({
    description:
      'Bumped on every change of the keys or of requireSignedPackages; send it back as signingRevision on heartbeats.',
  })
  revision: number;
  @ApiProperty({ description: 'Refuse to install a package that carries no signature by one of these keys.' })
  requireSignedPackages: boolean;
  @ApiProperty({ type: [AgentSigningKeyDto] }) keys: AgentSigningKeyDto[];
}
