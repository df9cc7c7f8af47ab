import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tar from 'tar';
import { commandLineOrExit, parseCommandLine, type CommandLine } from './cli';

export interface PackageSpec {
  dir: string;
  product: string;
  version: string;
  from?: string;
  kind?: 'full' | 'webapps';
  migration?: string;
  minFreeDiskMb?: number;
  os?: string[];
  notes?: string;
  out: string;
}

/**
 * Builds a package Lockstep accepts: the folder's files and a manifest.json at the root of a
 * .tar.gz. A manifest already in the folder is replaced by the one described here.
 */
export async function buildPackage(spec: PackageSpec): Promise<string> {
  if (spec.migration && !fs.existsSync(path.join(spec.dir, spec.migration))) throw new Error(`--migration ${spec.migration} is not in ${spec.dir}`);
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-package-'));
  try {
    fs.cpSync(spec.dir, staging, { recursive: true });
    const prerequisites = {
      ...(spec.from ? { fromVersion: spec.from } : {}),
      ...(spec.minFreeDiskMb !== undefined ? { minFreeDiskMb: spec.minFreeDiskMb } : {}),
      ...(spec.os ? { os: spec.os } : {}),
    };
    const manifest = { product: spec.product, version: spec.version, kind: spec.kind ?? 'full', prerequisites, ...(spec.migration ? { migration: spec.migration } : {}), ...(spec.notes ? { notes: spec.notes } : {}) };
    fs.writeFileSync(path.join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2));
    fs.mkdirSync(path.dirname(path.resolve(spec.out)), { recursive: true });
    await tar.c({ gzip: true, file: spec.out, cwd: staging, portable: true }, fs.readdirSync(staging));
    return path.resolve(spec.out);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

export const PACKAGE_USAGE = `usage: npm run package -- --dir FOLDER --product NAME --version V --out FILE.tar.gz [options]
Builds a package Lockstep accepts: FOLDER's files with a manifest.json at the root of a .tar.gz.

  --dir FOLDER              the payload (required)
  --product NAME            the product the package is for, as the cluster names it (required)
  --version V               the version it installs, semver (required)
  --out FILE.tar.gz         where to write it (required)
  --from RANGE              the versions it upgrades from, e.g. ">=1.0.0 <1.1.0"
  --kind full|webapps       the whole product (default) or its web apps only
  --migration FILE          a script in FOLDER run as "node FILE <dataDir>" during the upgrade
  --min-free-disk-mb N      free disk an agent needs
  --os LIST                 operating systems it runs on, e.g. linux,darwin
  --notes TEXT              free text shown with the package
  -h, --help                this text`;

/** The package builder's command line, read without side effects (see cli.ts). */
export function parsePackageArgs(argv: string[]): CommandLine<PackageSpec> {
  return parseCommandLine(
    argv,
    {
      dir: { type: 'string' },
      product: { type: 'string' },
      version: { type: 'string' },
      from: { type: 'string' },
      kind: { type: 'string' },
      migration: { type: 'string' },
      'min-free-disk-mb': { type: 'string' },
      os: { type: 'string' },
      notes: { type: 'string' },
      out: { type: 'string' },
    },
    (values) => {
      const text = (flag: string) => values[flag] as string | undefined;
      for (const flag of ['dir', 'product', 'version', 'out']) if (!text(flag)?.trim()) return `missing --${flag}`;
      const kind = text('kind');
      if (kind !== undefined && kind !== 'full' && kind !== 'webapps') return `--kind must be full or webapps (got "${kind}")`;
      const disk = text('min-free-disk-mb');
      if (disk !== undefined && !/^\d+$/.test(disk)) return `--min-free-disk-mb must be a whole number of MiB (got "${disk}")`;
      return {
        dir: text('dir')!,
        product: text('product')!,
        version: text('version')!,
        from: text('from'),
        kind,
        migration: text('migration'),
        minFreeDiskMb: disk !== undefined ? Number(disk) : undefined,
        os: text('os')?.split(','),
        notes: text('notes'),
        out: text('out')!,
      };
    },
  );
}

if (require.main === module) {
  buildPackage(commandLineOrExit('lockstep package', PACKAGE_USAGE, parsePackageArgs(process.argv.slice(2)))).then(
    (file) => console.log(file),
    (error: Error) => {
      console.error(`lockstep package: ${error.message}`);
      process.exit(1);
    },
  );
}
