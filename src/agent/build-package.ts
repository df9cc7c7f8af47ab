import { createHash, generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tar from 'tar';
import { parsePublicKey, signPackage } from '../protocol/package-signing';
import { commandLineOrExit, fromInvocationDir, parseCommandLine, type CommandLine } from './cli';

/** The product the reference agent runs in the demo and the tests (bin/product.js, migrate.js): --sample. */
export const SAMPLE_PRODUCT = path.resolve(__dirname, '..', '..', 'src', 'agent', 'sample-product');
/** What the reference agent starts from a full package (src/agent/product.ts; docs/packages.md). */
export const REFERENCE_AGENT_ENTRY = path.join('bin', 'product.js');

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
  /** An Ed25519 private key (PEM): the package is signed with it, the signature written to `<out>.sig`. */
  signKey?: string;
}

/**
 * Builds a package Lockstep accepts: the folder's files and a manifest.json at the root of a
 * .tar.gz. A manifest already in the folder is replaced by the one described here.
 */
export async function buildPackage(spec: PackageSpec): Promise<string> {
  if (!fs.statSync(spec.dir, { throwIfNoEntry: false })?.isDirectory())
    throw new Error(`--dir ${spec.dir} is not a folder`);
  if (spec.migration && !fs.existsSync(path.join(spec.dir, spec.migration)))
    throw new Error(`--migration ${spec.migration} is not in ${spec.dir}`);
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-package-'));
  try {
    fs.cpSync(spec.dir, staging, { recursive: true });
    const prerequisites = {
      ...(spec.from ? { fromVersion: spec.from } : {}),
      ...(spec.minFreeDiskMb !== undefined ? { minFreeDiskMb: spec.minFreeDiskMb } : {}),
      ...(spec.os ? { os: spec.os } : {}),
    };
    const manifest = {
      product: spec.product,
      version: spec.version,
      kind: spec.kind ?? 'full',
      prerequisites,
      ...(spec.migration ? { migration: spec.migration } : {}),
      ...(spec.notes ? { notes: spec.notes } : {}),
    };
    fs.writeFileSync(path.join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2));
    fs.mkdirSync(path.dirname(path.resolve(spec.out)), { recursive: true });
    await tar.c({ gzip: true, file: spec.out, cwd: staging, portable: true }, fs.readdirSync(staging));
    return path.resolve(spec.out);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/** A new Ed25519 key pair, PEM: the private key (PKCS#8) signs packages, the public key (SPKI) is registered with the cluster. */
export function generateSigningKeyPair(): { privateKey: string; publicKey: string; fingerprint: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicPem,
    fingerprint: parsePublicKey(publicPem).fingerprint,
  };
}

/**
 * Signs a built package with an Ed25519 private key (PEM file): the signature (base64) of the text
 * "lockstep-package-v1 sha256:<its sha256>" is written to `<archive>.sig` and returned.
 */
export async function signArchive(archive: string, keyFile: string): Promise<{ signature: string; file: string }> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(archive)) hash.update(chunk as Buffer);
  let key: string;
  try {
    key = fs.readFileSync(keyFile, 'utf8');
  } catch (error) {
    throw new Error(`--sign-key ${keyFile} cannot be read: ${(error as Error).message}`);
  }
  let signature: string;
  try {
    signature = signPackage(hash.digest('hex'), key);
  } catch (error) {
    throw new Error(`--sign-key ${keyFile}: ${(error as Error).message} (npm run package -- --keygen makes one)`);
  }
  const file = `${archive}.sig`;
  fs.writeFileSync(file, `${signature}\n`);
  return { signature, file };
}

/**
 * What the reference agent would miss in this package: a full package's bin/product.js, the
 * program it starts. Said, not refused: an agent of one's own may run something else.
 */
export function referenceAgentNotes(spec: PackageSpec): string[] {
  if ((spec.kind ?? 'full') !== 'full' || !fs.statSync(spec.dir, { throwIfNoEntry: false })?.isDirectory()) return [];
  if (fs.existsSync(path.join(spec.dir, REFERENCE_AGENT_ENTRY))) return [];
  return [
    `${spec.dir} has no ${REFERENCE_AGENT_ENTRY}, the program the reference agent starts: its upgrade to this package would roll back (fine for an agent of your own; see docs/packages.md)`,
  ];
}

export const PACKAGE_USAGE = `usage: npm run package -- (--dir FOLDER | --sample) --product NAME --version V --out FILE.tar.gz [options]
Builds a package Lockstep accepts: FOLDER's files with a manifest.json at the root of a .tar.gz.
For the reference agent FOLDER holds bin/product.js, the program it runs (docs/packages.md).
Relative paths are read from the folder npm run was typed in.

  --dir FOLDER              the payload (required, or --sample)
  --sample                  the payload is the sample product (src/agent/sample-product:
                            bin/product.js and migrate.js), with --migration migrate.js
  --product NAME            the product the package is for, as the cluster names it (required)
  --version V               the version it installs, semver (required)
  --out FILE.tar.gz         where to write it (required)
  --from RANGE              the versions it upgrades from, e.g. ">=1.0.0 <1.1.0"
  --kind full|webapps       the whole product (default) or its web apps only
  --migration FILE          a script in FOLDER run as "node FILE <dataDir>" during the upgrade
  --min-free-disk-mb N      free disk an agent needs
  --os LIST                 operating systems it runs on, e.g. linux,darwin
  --notes TEXT              free text shown with the package
  --sign-key KEY.pem        sign it with this Ed25519 private key: the signature (base64) is
                            printed and written to FILE.tar.gz.sig (docs/packages.md, "Signing")
  --keygen                  alone: print a new Ed25519 key pair (private, then public key, PEM)
  -h, --help                this text
  --version                 alone: the version of Lockstep`;

/**
 * The package builder's command line, read without side effects (see cli.ts). Relative --dir and
 * --out are resolved against `cwd`: where the user typed npm run (INIT_CWD), not the clone's root.
 */
export function parsePackageArgs(
  argv: string[],
  cwd: string = process.env.INIT_CWD || process.cwd(),
): CommandLine<PackageSpec> {
  return parseCommandLine(
    argv,
    {
      dir: { type: 'string' },
      sample: { type: 'boolean' },
      product: { type: 'string' },
      version: { type: 'string' },
      from: { type: 'string' },
      kind: { type: 'string' },
      migration: { type: 'string' },
      'min-free-disk-mb': { type: 'string' },
      os: { type: 'string' },
      notes: { type: 'string' },
      out: { type: 'string' },
      'sign-key': { type: 'string' },
    },
    (values) => {
      const text = (flag: string) => values[flag] as string | undefined;
      const problem = packageArgsProblem(!!values.sample, text);
      if (problem) return problem;
      const kind = text('kind');
      const disk = text('min-free-disk-mb');
      return {
        dir: values.sample ? SAMPLE_PRODUCT : fromInvocationDir(text('dir')!, cwd),
        product: text('product')!,
        version: text('version')!,
        from: text('from'),
        kind: kind as PackageSpec['kind'], // checked by packageArgsProblem
        migration: text('migration') ?? (values.sample ? 'migrate.js' : undefined),
        minFreeDiskMb: disk !== undefined ? Number(disk) : undefined,
        os: text('os')?.split(','),
        notes: text('notes'),
        out: fromInvocationDir(text('out')!, cwd),
        ...(text('sign-key') ? { signKey: fromInvocationDir(text('sign-key')!, cwd) } : {}),
      };
    },
  );
}

/** Why the flags do not describe a package, or null. */
function packageArgsProblem(sample: boolean, text: (flag: string) => string | undefined): string | null {
  if (sample && text('dir') !== undefined)
    return '--dir and --sample are exclusive: --sample builds the sample product';
  if (!sample && !text('dir')?.trim()) return 'missing --dir FOLDER (or --sample for the sample product)';
  for (const flag of ['product', 'version', 'out']) if (!text(flag)?.trim()) return `missing --${flag}`;
  const kind = text('kind');
  if (kind !== undefined && kind !== 'full' && kind !== 'webapps')
    return `--kind must be full or webapps (got "${kind}")`;
  const disk = text('min-free-disk-mb');
  if (disk !== undefined && !/^\d+$/.test(disk))
    return `--min-free-disk-mb must be a whole number of MiB (got "${disk}")`;
  return null;
}

if (require.main === module && process.argv.slice(2).join(' ') === '--keygen') {
  const pair = generateSigningKeyPair();
  process.stdout.write(pair.privateKey + pair.publicKey);
  console.error(
    `lockstep package: a new Ed25519 key pair (fingerprint ${pair.fingerprint}). Keep the private key secret (sign with --sign-key); register the public key with POST /api/v1/clusters/{id}/signing-keys.`,
  );
} else if (require.main === module) {
  const spec = commandLineOrExit('lockstep package', PACKAGE_USAGE, parsePackageArgs(process.argv.slice(2)));
  for (const note of referenceAgentNotes(spec)) console.error(`lockstep package: note: ${note}`);
  const build = async () => {
    const file = await buildPackage(spec);
    if (!spec.signKey) return file;
    const signed = await signArchive(file, spec.signKey);
    console.error(`lockstep package: signed; signature written to ${signed.file}`);
    return `${file}\n${signed.signature}`;
  };
  build().then(
    (file) => console.log(file),
    (error: Error) => {
      console.error(`lockstep package: ${error.message}`);
      process.exit(1);
    },
  );
}
