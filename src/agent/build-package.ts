import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as tar from 'tar';

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

if (require.main === module) {
  const { values } = parseArgs({
    options: {
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
  });
  if (!values.dir || !values.product || !values.version || !values.out || (values.kind && !['full', 'webapps'].includes(values.kind))) {
    console.error('usage: npm run package -- --dir FOLDER --product NAME --version V --out FILE.tar.gz [--from RANGE] [--kind full|webapps] [--migration FILE] [--min-free-disk-mb N] [--os linux,darwin] [--notes TEXT]');
    process.exit(2);
  }
  buildPackage({
    dir: values.dir,
    product: values.product,
    version: values.version,
    from: values.from,
    kind: values.kind as PackageSpec['kind'],
    migration: values.migration,
    minFreeDiskMb: values['min-free-disk-mb'] ? Number(values['min-free-disk-mb']) : undefined,
    os: values.os?.split(','),
    notes: values.notes,
    out: values.out,
  }).then(
    (file) => console.log(file),
    (error: Error) => {
      console.error(error.message);
      process.exit(1);
    },
  );
}
