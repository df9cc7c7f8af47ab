import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { packageArchive } from './support/archives';
import { TestApp } from './support/test-app';

/**
 * A client generated from the published OpenAPI document (openapi-typescript) compiles a script
 * that creates a cluster, registers and pairs an agent, uploads a package, previews and starts an
 * upgrade, and reads typed answers and a typed error body (test/client/typed-client.ts); then the
 * script runs against a real server and gets what its types promise.
 */
const CLIENT_DIR = path.resolve(__dirname, 'client');
const SCRIPT = path.join(CLIENT_DIR, 'typed-client.ts');

describe('a client generated from /api/docs-json [sqlite]', () => {
  let t: TestApp;
  let work: string;

  beforeAll(async () => {
    t = await TestApp.start('sqlite');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-client-'));
    // The generator's own command line (it is an ES module, which Jest's CommonJS cannot load). A
    // field with a default is optional in a request (the server fills it), not required.
    const document = path.join(work, 'openapi.json');
    fs.writeFileSync(document, await (await fetch(`${t.baseUrl}/api/docs-json`)).text());
    const generated = spawnSync(
      process.execPath,
      [
        path.resolve(__dirname, '..', 'node_modules', 'openapi-typescript', 'bin', 'cli.js'),
        document,
        '--output',
        path.join(CLIENT_DIR, 'lockstep-api.ts'),
        '--default-non-nullable=false',
      ],
      { encoding: 'utf8' },
    );
    if (generated.status !== 0) throw new Error(`openapi-typescript failed: ${generated.stderr}`);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('compiles under strict TypeScript, with no error', () => {
    const program = ts.createProgram([SCRIPT], {
      strict: true,
      noEmit: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2023,
      lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
      types: ['node'],
      skipLibCheck: true,
      esModuleInterop: true,
    });
    const diagnostics = ts
      .getPreEmitDiagnostics(program)
      .map(
        (d) =>
          ts.flattenDiagnosticMessageText(d.messageText, '\n') +
          (d.file
            ? ` (${path.basename(d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1})`
            : ''),
      );
    expect(diagnostics).toEqual([]);
  }, 60_000);

  it('runs against the server and reads typed answers and a typed refusal', async () => {
    const archive = path.join(work, 'acme-agent-1.1.0.tar.gz');
    fs.writeFileSync(archive, packageArchive({ version: '1.1.0' }));
    // Not spawnSync: the server answering the script runs in this very process.
    const run = await promisify(execFile)(
      process.execPath,
      [require.resolve('ts-node/dist/bin.js'), '--transpile-only', SCRIPT],
      {
        env: { ...process.env, LOCKSTEP: t.baseUrl, TOKEN: await t.tokenFor('admin'), PACKAGE: archive },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(run.stderr).toBe('');
    const printed = JSON.parse(run.stdout.trim());
    expect(printed).toEqual({
      clusterId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      pollAfterMs: expect.any(Number),
      packageId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      kinds: ['upgrade'],
      status: 'running',
      resolvedPolicy: 'simultaneous',
      refusal: { status: 400, code: 'VALIDATION_FAILED', fields: ['name'] },
    });
  }, 90_000);
});
