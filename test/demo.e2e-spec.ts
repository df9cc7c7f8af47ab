import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

/** `npm run demo` as a newcomer runs it: real server, six real agents, exit code 0. */
describe('the demo', () => {
  it('upgrades six real agents and exits 0', () => {
    const run = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(ROOT, 'scripts', 'demo.ts')], { cwd: ROOT, encoding: 'utf8', timeout: 150_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('upgrade succeeded');
    expect(run.stdout.match(/version 1\.1\.0 {2}latest/g)).toHaveLength(6);
    expect(run.stdout).toMatch(/pair-a-main +version 1\.1\.0 +latest +active/);
  }, 180_000);
});
