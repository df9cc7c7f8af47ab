import { Initial1795346133215 } from './1795346133215-Initial';

/** Applied in this order; add each generated migration here. */
export const POSTGRES_MIGRATIONS = [Initial1795346133215];
