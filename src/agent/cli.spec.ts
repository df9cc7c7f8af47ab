import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tar from 'tar';
import { parsePackageArgs, PACKAGE_USAGE, referenceAgentNotes, SAMPLE_PRODUCT } from './build-package';
import { AGENT_USAGE, parseAgentArgs } from './main';

const ROOT = path.resolve(__dirname, '..', '..');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Runs `npm run -s <script> -- <args>` as a user would; resolves with its exit code and output. */
function npmRun(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run('npm', ['run', '-s', script, '--', ...args], ROOT);
}

function run(
  command: string,
  args: string[],
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the command lines of npm run agent and npm run package', () => {
  it('reads a full agent command line', () => {
    expect(
      parseAgentArgs([
        '--server',
        'http://lockstep:8080/',
        '--home',
        '/var/lib/acme',
        '--pairing-key',
        'lsp_x',
        '--service-command',
        'sudo systemctl',
      ]),
    ).toEqual({
      kind: 'run',
      values: {
        server: 'http://lockstep:8080',
        home: '/var/lib/acme',
        pairingKey: 'lsp_x',
        serviceCommand: 'sudo systemctl',
      },
    });
  });

  it.each([
    [['--help'], { kind: 'help' }],
    [['--version'], { kind: 'version' }],
    [['--version', '--help'], { kind: 'help' }],
    [['-h', '--bogus'], { kind: 'error', message: "Unknown option '--bogus'" }],
    [['--server', 'http://x', '--home', 'h', '-h'], { kind: 'help' }],
    [['--home', 'h'], { kind: 'error', message: 'missing --server URL' }],
    [['--server', 'http://x'], { kind: 'error', message: 'missing --home DIR' }],
    [
      ['--server', 'lockstep:8080', '--home', 'h'],
      { kind: 'error', message: '--server must be an http:// or https:// address (got "lockstep:8080")' },
    ],
    [['--server', 'http://x', '--home', 'h', 'extra'], { kind: 'error', message: "Unexpected argument 'extra'" }],
    [
      ['--server', 'http://x', '--home', 'h', '--service-command', ' '],
      { kind: 'error', message: '--service-command must not be empty' },
    ],
    [['--server'], { kind: 'error', message: "Option '--server <value>' argument missing" }],
  ])('agent %j -> %j', (argv, expected) => {
    expect(parseAgentArgs(argv)).toEqual(expected);
  });

  it.each([
    [['-h'], { kind: 'help' }],
    [['--version'], { kind: 'version' }],
    [
      ['--dir', 'd', '--product', 'p', '--version'],
      { kind: 'error', message: "Option '--version <value>' argument missing" },
    ],
    [
      ['--product', 'p', '--version', '1.0.0', '--out', 'o'],
      { kind: 'error', message: 'missing --dir FOLDER (or --sample for the sample product)' },
    ],
    [
      ['--sample', '--dir', 'd', '--product', 'p', '--version', '1.0.0', '--out', 'o'],
      { kind: 'error', message: '--dir and --sample are exclusive: --sample builds the sample product' },
    ],
    [['--dir', 'd', '--product', 'p', '--version', '1.0.0'], { kind: 'error', message: 'missing --out' }],
    [
      ['--dir', 'd', '--product', 'p', '--version', '1.0.0', '--out', 'o', '--kind', 'patch'],
      { kind: 'error', message: '--kind must be full or webapps (got "patch")' },
    ],
    [
      ['--dir', 'd', '--product', 'p', '--version', '1.0.0', '--out', 'o', '--min-free-disk-mb', 'lots'],
      { kind: 'error', message: '--min-free-disk-mb must be a whole number of MiB (got "lots")' },
    ],
  ])('package %j -> %j', (argv, expected) => {
    expect(parsePackageArgs(argv)).toEqual(expected);
  });

  it('reads a full package command line', () => {
    const line = parsePackageArgs([
      '--dir',
      'd',
      '--product',
      'p',
      '--version',
      '1.1.0',
      '--out',
      'o.tar.gz',
      '--from',
      '>=1.0.0',
      '--kind',
      'webapps',
      '--min-free-disk-mb',
      '512',
      '--os',
      'linux,darwin',
    ]);
    expect(line).toEqual({
      kind: 'run',
      values: expect.objectContaining({
        kind: 'webapps',
        minFreeDiskMb: 512,
        os: ['linux', 'darwin'],
        from: '>=1.0.0',
      }),
    });
  });

  // npm runs scripts in the clone's root; INIT_CWD is where the user typed the command.
  it("reads the agent's relative --home, --seed and --busy-file from the folder npm run was typed in", () => {
    const line = parseAgentArgs(
      ['--server', 'http://x', '--home', 'agent-home', '--seed', '../seed.tar.gz', '--busy-file', '/run/busy'],
      '/home/u/acme',
    );
    expect(line).toEqual({
      kind: 'run',
      values: expect.objectContaining({
        home: '/home/u/acme/agent-home',
        seedPackage: '/home/u/seed.tar.gz',
        busyFile: '/run/busy',
      }),
    });
  });

  it('reads relative --dir and --out from the folder npm run was typed in', () => {
    const line = parsePackageArgs(
      ['--dir', 'build/', '--product', 'p', '--version', '1.1.0', '--out', 'p.tar.gz'],
      '/home/u/acme',
    );
    expect(line).toEqual({
      kind: 'run',
      values: expect.objectContaining({ dir: '/home/u/acme/build', out: '/home/u/acme/p.tar.gz' }),
    });
    const absolute = parsePackageArgs(
      ['--dir', '/srv/build', '--product', 'p', '--version', '1.1.0', '--out', '/tmp/p.tar.gz'],
      '/home/u/acme',
    );
    expect(absolute).toEqual({
      kind: 'run',
      values: expect.objectContaining({ dir: '/srv/build', out: '/tmp/p.tar.gz' }),
    });
  });

  it('--sample builds the sample product with its migration, which has what the reference agent runs', () => {
    const line = parsePackageArgs(
      ['--sample', '--product', 'acme-agent', '--version', '1.0.0', '--out', 'a.tar.gz'],
      '/w',
    );
    expect(line).toEqual({
      kind: 'run',
      values: expect.objectContaining({ dir: SAMPLE_PRODUCT, migration: 'migrate.js', out: '/w/a.tar.gz' }),
    });
    expect(fs.existsSync(path.join(SAMPLE_PRODUCT, 'bin', 'product.js'))).toBe(true);
    expect(referenceAgentNotes({ dir: SAMPLE_PRODUCT, product: 'p', version: '1.0.0', out: 'x' })).toEqual([]);
    // A full package without bin/product.js is built, with a note; web apps need none.
    expect(referenceAgentNotes({ dir: __dirname, product: 'p', version: '1.0.0', out: 'x' })).toEqual([
      expect.stringContaining('has no bin/product.js'),
    ]);
    expect(referenceAgentNotes({ dir: __dirname, product: 'p', version: '1.0.0', kind: 'webapps', out: 'x' })).toEqual(
      [],
    );
  });

  /**
   * The README's package example, read from README.md and run as written (through sh, quotes and
   * all) from another folder holding build/: npm runs it in the clone's root, and the package must
   * still be made from that folder's build/ and land there.
   */
  it("runs the README's npm run package example as written, from the folder that holds build/", async () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const example = /^npm run package -- --dir build\/ (?:.*\\\n)*.*$/m.exec(readme)?.[0];
    expect(example).toBeDefined();
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-readme-package-'));
    try {
      fs.cpSync(SAMPLE_PRODUCT, path.join(work, 'build'), { recursive: true });
      // --prefix points npm at the clone, as running it from a sub-folder of the clone would.
      const result = await run(
        'sh',
        ['-c', example!.replace(/^npm run/, `npm --prefix ${JSON.stringify(ROOT)} run -s`)],
        work,
      );
      expect(result).toEqual({
        code: 0,
        stdout: `${path.join(fs.realpathSync(work), 'acme-agent-1.1.0.tar.gz')}\n`,
        stderr: '',
      });
      const entries: string[] = [];
      await tar.t({ file: path.join(work, 'acme-agent-1.1.0.tar.gz'), onReadEntry: (e) => entries.push(e.path) });
      expect(entries).toEqual(expect.arrayContaining(['manifest.json', 'bin/product.js', 'migrate.js']));
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }, 30_000);

  // The real scripts: --help printed usage and exited 0, a bad flag one line, the usage and 2; both used to throw with a stack trace.
  it('answers --help with the usage, --version with the version, and a bad flag with one line and the usage, never a stack trace', async () => {
    const [agentHelp, packageHelp, agentVersion, packageVersion, agentBad, packageBad] = await Promise.all([
      npmRun('agent', ['--help']),
      npmRun('package', ['-h']),
      npmRun('agent', ['--version']),
      npmRun('package', ['--version']),
      npmRun('agent', ['--server', 'http://127.0.0.1:1', '--home', '/nonexistent', '--bogus']),
      npmRun('package', [
        '--dir',
        '.',
        '--product',
        'p',
        '--version',
        '1.0.0',
        '--out',
        '/nonexistent/x.tar.gz',
        '--kind',
        'patch',
      ]),
    ]);
    expect(agentHelp).toEqual({ code: 0, stdout: `${AGENT_USAGE}\n`, stderr: '' });
    expect(packageHelp).toEqual({ code: 0, stdout: `${PACKAGE_USAGE}\n`, stderr: '' });
    expect(agentVersion).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    expect(packageVersion).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    expect(agentBad).toEqual({
      code: 2,
      stdout: '',
      stderr: `lockstep agent: Unknown option '--bogus'\n${AGENT_USAGE}\n`,
    });
    expect(packageBad).toEqual({
      code: 2,
      stdout: '',
      stderr: `lockstep package: --kind must be full or webapps (got "patch")\n${PACKAGE_USAGE}\n`,
    });
  }, 30_000);
});
