import { nullableTokenRef, type TokenRefDto, tokenRefOf } from '../../audit/dto/audit.dto';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional } from 'class-validator';
import { PageQuery } from '../../common/page-query';
import { PACKAGE_KINDS, type PackageKind } from '../manifest';
import { Package, PACKAGE_STATUSES, type PackageStatus } from '../package.entity';
import type { Prerequisites, PrerequisiteWarning } from '../prerequisites';

export const UPLOAD_MODES = ['upload-only', 'install'] as const;

export class UploadPackageForm {
  @ApiProperty({ type: 'string', format: 'binary', description: 'The .tar.gz package.' }) file: unknown;
  @ApiProperty({ enum: UPLOAD_MODES, enumName: 'UploadMode' }) mode: (typeof UPLOAD_MODES)[number];
  @ApiPropertyOptional({ description: 'mode=install: JSON target, default {"all": true}' }) target?: string;
  @ApiPropertyOptional({ description: 'mode=install: failover policy' }) policy?: string;
  @ApiPropertyOptional({ description: 'mode=install: JSON upgrade options' }) options?: string;
  @ApiPropertyOptional({ description: 'mode=install: ISO-8601 start time' }) scheduledAt?: string;
  @ApiPropertyOptional({
    description:
      'The Ed25519 signature of the package (base64 of 64 bytes) over the text "lockstep-package-v1 sha256:<the archive\'s sha256, lower-case hex>" by one of the cluster\'s signing keys (docs/packages.md, "Signing"). Required where the cluster has requireSignedPackages; checked whenever given.',
  })
  signature?: string;
}

/** The key a package's signature was verified with when it was uploaded (its name then). */
export interface PackageSigningKeyDto {
  id: string;
  name: string;
}

export class ListPackagesQuery extends PageQuery {
  @ApiPropertyOptional({ enum: PACKAGE_STATUSES, enumName: 'PackageStatus' })
  @IsOptional()
  @IsIn(PACKAGE_STATUSES, { message: `status must be one of: ${PACKAGE_STATUSES.join(', ')}` })
  status?: PackageStatus;

  @ApiPropertyOptional({ enum: PACKAGE_KINDS, enumName: 'PackageKind' })
  @IsOptional()
  @IsIn(PACKAGE_KINDS, { message: `kind must be one of: ${PACKAGE_KINDS.join(', ')}` })
  kind?: PackageKind;
}

export class PackageDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) clusterId: string;
  @ApiProperty() product: string;
  @ApiProperty() version: string;
  @ApiProperty({ enum: PACKAGE_KINDS, enumName: 'PackageKind' }) kind: PackageKind;
  @ApiProperty({ enum: PACKAGE_STATUSES, enumName: 'PackageStatus' }) status: PackageStatus;
  @ApiProperty() sha256: string;
  @ApiProperty() size: number;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    example: { fromVersion: '>=10.1.0 <10.3.0', minFreeDiskMb: 512, os: ['linux'] },
  })
  prerequisites: Prerequisites;
  @ApiProperty({ type: String, nullable: true }) migration: string | null;
  @ApiProperty({ type: String, nullable: true }) notes: string | null;
  @ApiProperty({ format: 'date-time' }) uploadedAt: string;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) completedAt: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'uuid' }) usedByUpgradeId: string | null;
  @ApiProperty(nullableTokenRef('The API token that uploaded it.'))
  uploadedBy: TokenRefDto | null;
  @ApiProperty({
    type: 'array',
    items: { type: 'object' },
    description: 'Agents that could not be checked (unknown version or facts).',
  })
  warnings: PrerequisiteWarning[];
  @ApiProperty({ description: "Uploaded with a signature that one of the cluster's signing keys verified." })
  signed: boolean;
  @ApiProperty({
    type: 'object',
    nullable: true,
    required: ['id', 'name'],
    selfRequired: true,
    properties: {
      id: { type: 'string', format: 'uuid' },
      name: { type: 'string', description: 'Its name when the package was uploaded.' },
    },
    description: 'The key that verified its signature (null: unsigned).',
  })
  signingKey: PackageSigningKeyDto | null;
}

export class PackagePageDto {
  @ApiProperty({ type: [PackageDto] }) items: PackageDto[];
  @ApiProperty() total: number;
  @ApiProperty() limit: number;
  @ApiProperty() offset: number;
}

export function toPackageDto(pkg: Package): PackageDto {
  return {
    id: pkg.id,
    clusterId: pkg.clusterId,
    product: pkg.product,
    version: pkg.version,
    kind: pkg.kind,
    status: pkg.status,
    sha256: pkg.sha256,
    size: pkg.size,
    prerequisites: pkg.prerequisites,
    migration: pkg.migration,
    notes: pkg.notes,
    uploadedAt: pkg.uploadedAt.toISOString(),
    completedAt: pkg.completedAt?.toISOString() ?? null,
    usedByUpgradeId: pkg.usedByUpgradeId,
    uploadedBy: tokenRefOf(pkg.uploadedByTokenId, pkg.uploadedByName),
    warnings: pkg.warnings,
    signed: pkg.signature !== null && pkg.signingKeyId !== null,
    signingKey: pkg.signingKeyId ? { id: pkg.signingKeyId, name: pkg.signingKeyName ?? '' } : null,
  };
}

/** A `package.status` event's data: a package arrived, moved in its life cycle, or was deleted. */
export class PackageStatusEventData {
  @ApiProperty({ format: 'uuid' }) packageId: string;
  @ApiProperty() version: string;
  @ApiProperty({ enum: PACKAGE_KINDS, enumName: 'PackageKind' }) kind: PackageKind;
  @ApiProperty({ enum: PACKAGE_STATUSES, enumName: 'PackageStatus' }) status: PackageStatus;
  @ApiProperty({ type: String, nullable: true, format: 'uuid' }) usedByUpgradeId: string | null;
  @ApiPropertyOptional({ enum: [true], description: 'Present, true, on the event of its deletion: it is gone.' })
  deleted?: true;
}

declare module '../../progress/event-map' {
  interface EventDataMap {
    'package.status': PackageStatusEventData;
  }
}
