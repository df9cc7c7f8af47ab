import { unsafeEntryReason } from './archive-inspector';

describe('unsafeEntryReason', () => {
  it.each([
    [{ path: './bin/app.js', type: 'File' }, null],
    [{ path: 'bin/', type: 'Directory' }, null],
    [{ path: './bin/current', type: 'SymbolicLink', linkpath: 'app.js' }, null],
    [{ path: './bin/up', type: 'SymbolicLink', linkpath: '../manifest.json' }, null],
    [{ path: './hard', type: 'Link', linkpath: 'bin/app.js' }, null],
    [{ path: '/etc/passwd', type: 'File' }, 'absolute path'],
    [{ path: 'C:\\Windows\\x', type: 'File' }, 'absolute path'],
    [{ path: './../../etc/cron.d/x', type: 'File' }, 'climbs out with ..'],
    [{ path: 'dev/null', type: 'CharacterDevice' }, 'device or FIFO'],
    [{ path: './evil', type: 'SymbolicLink', linkpath: '/etc/shadow' }, 'link to an absolute path'],
    [{ path: './bin/evil', type: 'SymbolicLink', linkpath: '../../outside' }, 'link pointing out of the package'],
    [{ path: './evil', type: 'Link', linkpath: '../outside' }, 'link pointing out of the package'],
  ])('%j -> %s', (entry, expected) => {
    expect(unsafeEntryReason(entry)).toBe(expected);
  });
});
