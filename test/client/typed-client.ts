/**
 * A client written only against types that openapi-typescript generated from /api/docs-json
 * (./lockstep-api.ts, written by test/openapi-client.e2e-spec.ts, not kept in git), with
 * openapi-fetch. The test compiles it under strict TypeScript and runs it against a real server: if
 * the document drifts from the code, this stops compiling or stops working.
 *
 * Env: LOCKSTEP (base URL), TOKEN (an admin token: it creates a cluster), PACKAGE (a .tar.gz for acme-agent 1.1.0).
 */
import * as fs from 'node:fs';
import createClient from 'openapi-fetch';
import type { components, paths } from './lockstep-api';

type ErrorBody = components['schemas']['ErrorBodyDto'];
type Upgrade = components['schemas']['UpgradeDto'];
/** An upload with mode=install answers the upgrade it created: typed as one (it was `unknown`). */
type InstalledUpgrade = components['schemas']['InstalledPackageDto']['upgrade'];
export const installedIsAnUpgrade = (installed: InstalledUpgrade): Upgrade['status'] => installed.status;

function expectData<T>(answer: { data?: T; error?: ErrorBody }, what: string): T {
  if (answer.data === undefined) throw new Error(`${what}: ${answer.error?.code}: ${answer.error?.message}`);
  return answer.data;
}

async function main(): Promise<void> {
  const client = createClient<paths>({ baseUrl: process.env.LOCKSTEP, headers: { Authorization: `Bearer ${process.env.TOKEN}` } });

  const cluster = expectData(await client.POST('/api/v1/clusters', { body: { name: 'typed-client', product: 'acme-agent' } }), 'create a cluster');
  const clusterId: string = cluster.id;

  const registered = expectData(
    await client.POST('/api/v1/clusters/{clusterId}/agents', { params: { path: { clusterId } }, body: { name: 'app-1', address: '10.9.0.1', role: 'standalone' } }),
    'register an agent',
  );
  const pairingKey: string = registered.pairingKey;
  const paired = expectData(await client.POST('/api/v1/agent/pair', { body: { pairingKey, version: '1.0.0', facts: { os: 'linux', freeDiskMb: 40000 } } }), 'pair');
  const agentClient = createClient<paths>({ baseUrl: process.env.LOCKSTEP, headers: { Authorization: `Bearer ${paired.token}` } });
  const beat = expectData(await agentClient.POST('/api/v1/agent/heartbeat', { body: { version: '1.0.0', busy: false } }), 'heartbeat');
  const pollAfterMs: number = beat.pollAfterMs;

  // A multipart upload: openapi-typescript types a binary field as a string, so the file goes in
  // through the body serializer, which builds the form itself.
  const archive = fs.readFileSync(process.env.PACKAGE!);
  const uploaded = await client.POST('/api/v1/clusters/{clusterId}/packages', {
    params: { path: { clusterId } },
    body: { mode: 'upload-only', file: 'acme-agent-1.1.0.tar.gz' },
    bodySerializer: (fields) => {
      const form = new FormData();
      form.set('mode', fields.mode);
      form.set('file', new Blob([archive]), fields.file);
      return form;
    },
  });
  const pkg = expectData(uploaded, 'upload a package');
  const packageId = 'id' in pkg ? pkg.id : pkg.package.id;

  const preview = expectData(
    await client.POST('/api/v1/clusters/{clusterId}/upgrades/preview', { params: { path: { clusterId } }, body: { packageId, target: { all: true }, policy: 'default' } }),
    'preview',
  );
  const kinds: string[] = preview.steps.map((step) => step.kind);

  const upgrade: Upgrade = expectData(
    await client.POST('/api/v1/clusters/{clusterId}/upgrades', { params: { path: { clusterId } }, body: { packageId, target: { all: true }, policy: 'default' } }),
    'start an upgrade',
  );
  const status: Upgrade['status'] = upgrade.status;

  // A refusal is typed too: the one error shape, with its code and the fields it names.
  const refused = await client.POST('/api/v1/clusters', { body: { name: '', product: 'acme-agent' } });
  const error: ErrorBody | undefined = refused.error;
  const fields = Array.isArray(error?.details) ? error.details.map((problem) => problem.field) : [];

  process.stdout.write(
    `${JSON.stringify({ clusterId, pollAfterMs, packageId, kinds, status, resolvedPolicy: upgrade.resolvedPolicy, refusal: { status: refused.response.status, code: error?.code, fields } })}\n`,
  );
}

main().catch((error: Error) => {
  process.stderr.write(`typed client failed: ${error.message}\n`);
  process.exit(1);
});
