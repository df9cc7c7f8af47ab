import * as fs from 'node:fs';
import { checkRecordedResponses, CONTRACT_DIR_ENV } from './contract';

export default async function globalTeardown(): Promise<void> {
  const container = (globalThis as { __lockstepPg?: { stop(): Promise<unknown> } }).__lockstepPg;
  if (container) await container.stop();
  const dir = process.env[CONTRACT_DIR_ENV];
  if (!dir) return;
  try {
    const report = await checkRecordedResponses(dir);
    if (!report) return;
    process.stdout.write(
      `\n[lockstep e2e] contract: ${report.checked} answers of ${report.operations} operations checked against /api/docs-json (${report.unmatched} of undocumented paths), ${report.mismatches.length} mismatches\n`,
    );
    if (report.mismatches.length) {
      throw new Error(
        `answers that the OpenAPI document does not describe (test/support/contract.ts):\n${report.mismatches.slice(0, 40).join('\n')}`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
