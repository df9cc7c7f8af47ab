import { AccessTokens1795345502263 } from './1795345502263-AccessTokens';

/** Applied in this order; add each generated migration here. */
export const POSTGRES_MIGRATIONS = [AccessTokens1795345502263];
