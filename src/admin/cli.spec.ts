import { parseAdminArgs } from './cli';
import { runAdmin } from './main';

describe('the command line of npm run admin', () => {
  it.each([
    [
      ['reset-token'],
      { kind: 'run', values: { command: 'reset-token', name: 'recovered admin', revokeOthers: false } },
    ],
    [
      ['reset-token', '--name', '  ops on call ', '--revoke-others'],
      { kind: 'run', values: { command: 'reset-token', name: 'ops on call', revokeOthers: true } },
    ],
    [
      ['--revoke-others', 'reset-token'],
      { kind: 'run', values: { command: 'reset-token', name: 'recovered admin', revokeOthers: true } },
    ],
    [['-h'], { kind: 'help' }],
    [['reset-token', '--help'], { kind: 'help' }],
    [['--version'], { kind: 'version' }],
    [[], { kind: 'error', message: 'missing the command: reset-token' }],
    [['reset-password'], { kind: 'error', message: 'unknown command "reset-password" (the command is reset-token)' }],
    [['reset-token', 'now'], { kind: 'error', message: "Unexpected argument 'now'" }],
    [['reset-token', '--bogus'], { kind: 'error', message: "Unknown option '--bogus'" }],
    [['reset-token', '--name'], { kind: 'error', message: "Option '--name <value>' argument missing" }],
    [['reset-token', '--name', ''], { kind: 'error', message: '--name must be longer than or equal to 1 characters' }],
    [
      ['reset-token', '--name', 'a\nb'],
      { kind: 'error', message: '--name must be one line of printable text (no control characters)' },
    ],
  ])('%j -> %j', (argv, expected) => {
    expect(parseAdminArgs(argv)).toEqual(expected);
  });

  it('prints the version from package.json', async () => {
    const written: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => (written.push(String(chunk)), true));
    try {
      await expect(runAdmin(['--version'], {})).resolves.toBe(0);
    } finally {
      spy.mockRestore();
    }
    expect(written).toEqual([`${require('../../package.json').version}\n`]);
  });
});
