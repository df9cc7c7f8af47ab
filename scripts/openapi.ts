/**
 * Writes the OpenAPI document Lockstep serves at /api/docs-json to a file, without a port or a
 * lasting database (a throw-away SQLite file): `npm run openapi -- --out openapi.json`. The lint
 * (`npm run lint:openapi`) and the typed-client test read it.
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { createApp } from '../src/app.factory';
import { loadConfig } from '../src/config/app-config';

export async function openApiDocument(): Promise<string> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-openapi-'));
  try {
    const app = await createApp(
      loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'error', LOCKSTEP_ADMIN_TOKEN: 'lsk_openapi-dump-0000000000000000' }),
    );
    try {
      await app.init();
      const answer = await app.getHttpAdapter().getInstance().inject({ method: 'GET', url: '/api/docs-json' });
      if (answer.statusCode !== 200) throw new Error(`/api/docs-json answered ${answer.statusCode}`);
      return JSON.stringify(JSON.parse(answer.body), null, 2);
    } finally {
      await app.close();
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  // Failed unless it gets to the end: a process that drains before the document is written must not pass.
  process.exitCode = 1;
  const { values } = parseArgs({ options: { out: { type: 'string', default: 'openapi.json' } } });
  openApiDocument().then(
    (document) => {
      fs.mkdirSync(path.dirname(path.resolve(values.out!)), { recursive: true });
      fs.writeFileSync(values.out!, `${document}\n`);
      process.stdout.write(`wrote ${values.out}\n`);
      process.exitCode = 0;
    },
    (error: Error) => {
      process.stderr.write(`openapi: ${error.message}\n`);
      process.exit(1);
    },
  );
}
