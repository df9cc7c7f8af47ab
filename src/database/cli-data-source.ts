import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadConfig } from '../config/app-config';
import { dataSourceOptions } from './database';

/**
 * The DataSource the TypeORM CLI uses (npm run migration:generate|run|revert). It reads the same
 * environment as the service: DATABASE_URL for PostgreSQL, else the SQLite file under DATA_DIR.
 * Generate each migration twice, once per database, into migrations/sqlite and migrations/postgres.
 */
export default new DataSource(dataSourceOptions(loadConfig(process.env).database));
