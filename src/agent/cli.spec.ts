import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { parsePackageArgs, PACKAGE_USAGE } from './build-package';
import { AGENT_USAGE, parseAgentArgs } from './main';

const ROOT = path.resolve(__dirname, '..', '..');

/** Runs `npm run -s <script> -- <args>` as a user would; resolves with its exit code and output. */
function npmRun(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '-s', script, '--', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the command lines of npm run agent and npm run package', () => {
  it('reads a full agent command line', () => {
    expect(parseAgentArgs(['--server', 'http://lockstep:8080/', '--home', '/var/lib/acme', '--pairing-key', 'lsp_x', '--service-command', 'sudo systemctl'])).toEqual({
      kind: 'run',
      values: { server: 'http://lockstep:8080', home: '/var/lib/acme', pairingKey: 'lsp_x', serviceCommand: 'sudo systemctl' },
    });
  });

  it.each([
    [['--help'], { kind: 'help' }],
    [['-h', '--bogus'], { kind: 'error', message: "Unknown option '--bogus'" }],
    [['--server', 'http://x', '--home', 'h', '-h'], { kind: 'help' }],
    [['--home', 'h'], { kind: 'error', message: 'missing --server URL' }],
    [['--server', 'http://x'], { kind: 'error', message: 'missing --home DIR' }],
    [['--server', 'lockstep:8080', '--home', 'h'], { kind: 'error', message: '--server must be an http:// or https:// address (got "lockstep:8080")' }],
    [['--server', 'http://x', '--home', 'h', 'extra'], { kind: 'error', message: "Unexpected argument 'extra'" }],
    [['--server', 'http://x', '--home', 'h', '--service-command', ' '], { kind: 'error', message: '--service-command must not be empty' }],
    [['--server'], { kind: 'error', message: "Option '--server <value>' argument missing" }],
  ])('agent %j -> %j', (argv, expected) => {
    expect(parseAgentArgs(argv)).toEqual(expected);
  });

  it.each([
    [['-h'], { kind: 'help' }],
    [['--dir', 'd', '--product', 'p', '--version', '1.0.0'], { kind: 'error', message: 'missing --out' }],
    [['--dir', 'd', '--product', 'p', '--version', '1.0.0', '--out', 'o', '--kind', 'patch'], { kind: 'error', message: '--kind must be full or webapps (got "patch")' }],
    [['--dir', 'd', '--product', 'p', '--version', '1.0.0', '--out', 'o', '--min-free-disk-mb', 'lots'], { kind: 'error', message: '--min-free-disk-mb must be a whole number of MiB (got "lots")' }],
  ])('package %j -> %j', (argv, expected) => {
    expect(parsePackageArgs(argv)).toEqual(expected);
  });

  it('reads a full package command line', () => {
    const line = parsePackageArgs(['--dir', 'd', '--product', 'p', '--version', '1.1.0', '--out', 'o.tar.gz', '--from', '>=1.0.0', '--kind', 'webapps', '--min-free-disk-mb', '512', '--os', 'linux,darwin']);
    expect(line).toEqual({ kind: 'run', values: expect.objectContaining({ kind: 'webapps', minFreeDiskMb: 512, os: ['linux', 'darwin'], from: '>=1.0.0' }) });
  });

  // The real scripts: --help printed usage and exited 0, a bad flag one line, the usage and 2; both used to throw with a stack trace.
  it('answers --help with the usage and a bad flag with one line and the usage, never a stack trace', async () => {
    const [agentHelp, packageHelp, agentBad, packageBad] = await Promise.all([
      npmRun('agent', ['--help']),
      npmRun('package', ['-h']),
      npmRun('agent', ['--server', 'http://127.0.0.1:1', '--home', '/nonexistent', '--bogus']),
      npmRun('package', ['--dir', '.', '--product', 'p', '--version', '1.0.0', '--out', '/nonexistent/x.tar.gz', '--kind', 'patch']),
    ]);
    expect(agentHelp).toEqual({ code: 0, stdout: `${AGENT_USAGE}\n`, stderr: '' });
    expect(packageHelp).toEqual({ code: 0, stdout: `${PACKAGE_USAGE}\n`, stderr: '' });
    expect(agentBad).toEqual({ code: 2, stdout: '', stderr: `lockstep agent: Unknown option '--bogus'\n${AGENT_USAGE}\n` });
    expect(packageBad).toEqual({ code: 2, stdout: '', stderr: `lockstep package: --kind must be full or webapps (got "patch")\n${PACKAGE_USAGE}\n` });
  }, 30_000);
});
