import type { FastifyInstance } from 'fastify';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The contract test: every JSON answer the e2e suites get from a TestApp is recorded, and at the end
 * of the run (global-teardown.ts) checked against the OpenAPI document the application publishes
 * (/api/docs-json) with openapi-backend's validator, so the document cannot drift from the code.
 */
export const CONTRACT_DIR_ENV = 'LOCKSTEP_TEST_CONTRACT_DIR';

interface Recorded {
  method: string;
  path: string;
  status: number;
  body: string;
}

/** Records the JSON answers of one application (a TestApp), when the run collects them. */
export function recordResponses(fastify: FastifyInstance): void {
  const dir = process.env[CONTRACT_DIR_ENV];
  if (!dir) return;
  const file = path.join(dir, `responses-${process.pid}.jsonl`);
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const type = String(reply.getHeader('content-type') ?? '');
    if (typeof payload === 'string' && type.startsWith('application/json')) {
      const entry: Recorded = {
        method: request.method,
        path: request.url.split('?')[0],
        status: reply.statusCode,
        body: payload,
      };
      fs.appendFileSync(file, `${JSON.stringify(entry)}\n`);
    }
    done(null, payload);
  });
}

/** Writes the published document once per run, for the check at the end. */
export async function saveDocumentOnce(baseUrl: string): Promise<void> {
  const dir = process.env[CONTRACT_DIR_ENV];
  if (!dir || fs.existsSync(path.join(dir, 'openapi.json'))) return;
  const answer = await fetch(`${baseUrl}/api/docs-json`);
  if (!answer.ok) throw new Error(`/api/docs-json answered ${answer.status}: the contract check needs the document`);
  const document = await answer.text();
  fs.writeFileSync(path.join(dir, `openapi-${process.pid}.tmp`), document);
  fs.renameSync(path.join(dir, `openapi-${process.pid}.tmp`), path.join(dir, 'openapi.json'));
}

export interface ContractReport {
  checked: number;
  operations: number;
  /** Answers of paths the document does not describe (a 404 for no such route, mostly). */
  unmatched: number;
  mismatches: string[];
}

/** Checks every recorded answer against the document. */
export async function checkRecordedResponses(dir: string): Promise<ContractReport | null> {
  const documentFile = path.join(dir, 'openapi.json');
  if (!fs.existsSync(documentFile)) return null;
  // Only here: the suites' workers never load them.
  const { OpenAPIBackend } = await import('openapi-backend');
  // ajv-formats is CommonJS whose module.exports is the plugin itself (with .default beside it).
  const addFormats = (await import('ajv-formats')).default as unknown as (
    ajv: import('ajv').default,
  ) => import('ajv').default;
  const api = new OpenAPIBackend({
    definition: JSON.parse(fs.readFileSync(documentFile, 'utf8')),
    strict: false,
    validate: true,
    quick: false,
    // uuid, date-time...: checked, not ignored.
    customizeAjv: (ajv) => addFormats(ajv),
  });
  await api.init();
  const report: ContractReport = { checked: 0, operations: 0, unmatched: 0, mismatches: [] };
  const seen = new Set<string>();
  const operations = new Set<string>();
  for (const name of fs.readdirSync(dir).filter((f) => f.startsWith('responses-'))) {
    for (const line of fs.readFileSync(path.join(dir, name), 'utf8').split('\n')) {
      if (!line) continue;
      const entry = JSON.parse(line) as Recorded;
      const operation = api.router.matchOperation({ method: entry.method, path: entry.path, headers: {} });
      if (!operation) {
        report.unmatched++;
        continue;
      }
      report.checked++;
      operations.add(operation.operationId ?? `${entry.method} ${operation.path}`);
      const result = api.validator.validateResponse(JSON.parse(entry.body), operation, entry.status);
      if (result.errors?.length) {
        const problem = `${entry.method} ${operation.path} ${entry.status}: ${result.errors.map((e) => `${e.instancePath || '(body)'} ${e.message}`).join('; ')}`;
        if (!seen.has(problem)) {
          seen.add(problem);
          report.mismatches.push(`${problem}\n    body: ${entry.body.slice(0, 300)}`);
        }
      }
    }
  }
  report.operations = operations.size;
  return report;
}
