import { plainToInstance, Type } from 'class-transformer';
import {
  IsArray,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Matches,
  Min,
  ValidateNested,
  validateSync,
} from 'class-validator';
import { BadInputError } from '../common/errors';
import { toFieldProblems } from '../common/validation';
import { IsPrintableText, IsSemverRange, IsSemverVersion, IsSingleLineText } from '../common/validators';

export const PACKAGE_KINDS = ['full', 'webapps'] as const;
export type PackageKind = (typeof PACKAGE_KINDS)[number];

export class PrerequisitesManifest {
  @IsOptional()
  @IsSemverRange()
  fromVersion?: string;

  @IsOptional()
  @IsInt({ message: 'minFreeDiskMb must be a whole number of megabytes' })
  @Min(0, { message: 'minFreeDiskMb must be a whole number of megabytes' })
  minFreeDiskMb?: number;

  @IsOptional()
  @IsArray({ message: 'os must be a list such as ["linux"]' })
  @IsString({ each: true, message: 'os must be a list of operating system names such as ["linux"]' })
  @Length(1, 32, { each: true, message: 'each os must be 1-32 characters' })
  @IsSingleLineText({ each: true, message: 'each os must be one line of printable text' })
  os?: string[];
}

/** manifest.json at the root of a package. */
export class PackageManifest {
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, { message: 'product must be 1-100 letters, digits, ".", "_" or "-"' })
  product: string;

  @IsSemverVersion()
  version: string;

  @IsIn(PACKAGE_KINDS, { message: `kind must be one of: ${PACKAGE_KINDS.join(', ')}` })
  kind: PackageKind;

  @IsOptional()
  @ValidateNested()
  @Type(() => PrerequisitesManifest)
  prerequisites?: PrerequisitesManifest;

  @IsOptional()
  @IsString()
  @Length(1, 200)
  @IsSingleLineText()
  migration?: string;

  @IsOptional()
  @IsString()
  @Length(0, 4000)
  @IsPrintableText()
  notes?: string;
}

/** Archive entry names as tar tools write them: `./manifest.json` and `manifest.json` are the same file. */
export const normaliseEntryPath = (path: string): string => path.replace(/^(\.\/)+/, '').replace(/\/+$/, '');

/**
 * Parses and checks manifest.json; every problem is named as `manifest.<field>`. `entries` are the
 * archive's file paths, so a migration script that is not in the archive is refused.
 */
export function parseManifest(text: string, entries: ReadonlySet<string>): PackageManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new BadInputError(
      'manifest.json is not valid JSON; check its syntax.',
      [{ field: 'manifest', problems: ['manifest.json is not valid JSON'] }],
      'MANIFEST_INVALID',
    );
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new BadInputError(
      'manifest.json must hold a JSON object.',
      [{ field: 'manifest', problems: ['manifest.json must hold a JSON object'] }],
      'MANIFEST_INVALID',
    );
  }
  const manifest = plainToInstance(PackageManifest, raw);
  const problems = toFieldProblems(validateSync(manifest, { whitelist: true, forbidNonWhitelisted: true }), 'manifest');
  if (
    manifest.migration &&
    !problems.some((p) => p.field === 'manifest.migration') &&
    !entries.has(normaliseEntryPath(manifest.migration))
  ) {
    problems.push({
      field: 'manifest.migration',
      problems: [`manifest.migration names ${manifest.migration}, which is not in the archive`],
    });
  }
  if (problems.length > 0) {
    throw new BadInputError(
      `manifest.json is invalid: ${problems.flatMap((p) => p.problems).join('; ')}.`,
      problems,
      'MANIFEST_INVALID',
    );
  }
  return manifest;
}
