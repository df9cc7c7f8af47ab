import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const SERVER_USAGE = `usage: node dist/main.js [--help | --version]      (npm start builds, then runs this)
Serves Lockstep: the API, the agent protocol and the dashboard. Its settings come from environment
variables only (PORT, HOST, DATABASE_URL, DATA_DIR, LOCKSTEP_ADMIN_TOKEN, LOG_LEVEL, ...): the
"Configuration" table in README.md lists each one, what it accepts and its default.

  -h, --help     this text
  --version      the version of Lockstep`;

/**
 * The command line, read before anything else is loaded: --help, --version and a wrong argument
 * answer at once, without reading the environment or loading the app (which used to start a
 * server on 8080 whatever the arguments). Returns true when the server is to start.
 */
function readCommandLine(argv: string[]): boolean {
  let values: { help?: boolean; version?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    // parseArgs names the problem in its first sentence.
    const problem = (error as Error).message.split('. ')[0].replace(/\.$/, '');
    process.stderr.write(
      `lockstep: ${problem}; the server takes only --help and --version, its settings come from the environment\n`,
    );
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${SERVER_USAGE}\n`);
    process.exit(0);
  }
  if (values.version) {
    // package.json one level up, from src/ (ts-node) and dist/ (a build) alike.
    process.stdout.write(
      `${(JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version}\n`,
    );
    process.exit(0);
  }
  return true;
}

async function main(): Promise<void> {
  // Loaded only now, once the command line said to serve (see readCommandLine): --help and
  // --version answer without loading Nest.
  /* eslint-disable @typescript-eslint/no-require-imports */
  require('reflect-metadata');
  const { Logger } = require('@nestjs/common') as typeof import('@nestjs/common');
  const { createApp } = require('./app.factory') as typeof import('./app.factory');
  const { stopGracefully } = require('./common/graceful-stop') as typeof import('./common/graceful-stop');
  const { ConfigError, loadConfig } = require('./config/app-config') as typeof import('./config/app-config');
  /* eslint-enable @typescript-eslint/no-require-imports */
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      // One line per bad variable, naming it and what it accepts; no stack trace.
      for (const problem of error.problems) process.stderr.write(`lockstep: configuration error: ${problem}\n`);
      process.exit(2);
    }
    throw error;
  }
  const app = await createApp(config);
  await app.listen(config.port, config.host);
  const logger = new Logger('Lockstep');
  // The stop (docs/operations.md, "Stopping"): a second signal during it is ignored; exit 0 once
  // everything is closed, 1 if closing failed.
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      logger.log(
        `${signal} received: stopping (new requests refused; executor pass, buffered heartbeats, event streams, requests in flight for up to ${config.shutdownGraceS} s, the leader lock, then the database)`,
      );
      stopGracefully(app, config.shutdownGraceS * 1000).then(
        () => {
          logger.log('stopped');
          process.exit(0);
        },
        (error: unknown) => {
          logger.error(`the stop failed: ${(error as Error).message}`);
          process.exit(1);
        },
      );
    });
  }
  logger.log(
    `listening on http://${config.host}:${config.port} (database: ${config.database.type === 'sqlite' ? config.database.file : 'postgres'})`,
  );
}

if (readCommandLine(process.argv.slice(2))) {
  main().catch((error: unknown) => {
    process.stderr.write(`lockstep: failed to start: ${(error as Error).message}\n`);
    process.exit(1);
  });
}
