import { Initial1795346128061 } from './1795346128061-Initial';

/** Applied in this order; add each generated migration here. */
export const SQLITE_MIGRATIONS = [Initial1795346128061];
