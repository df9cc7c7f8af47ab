import { AccessTokens1795345497333 } from './1795345497333-AccessTokens';

/** Applied in this order; add each generated migration here. */
export const SQLITE_MIGRATIONS = [AccessTokens1795345497333];
