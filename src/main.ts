import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory';
import { ConfigError, loadConfig } from './config/app-config';

async function main(): Promise<void> {
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
  // Nest's shutdown hooks (createApp) do the stopping; this says that it began (docs/operations.md).
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => logger.log(`${signal} received: stopping (executor pass, buffered heartbeats, event streams, HTTP, then the database)`));
  }
  logger.log(
    `listening on http://${config.host}:${config.port} (database: ${config.database.type === 'sqlite' ? config.database.file : 'postgres'})`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`lockstep: failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
