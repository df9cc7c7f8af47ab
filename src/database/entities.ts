import { AccessToken } from '../auth/access-token.entity';

/** Every entity of every module: the DataSource and the migration generator read this list. */
export const ENTITIES = [AccessToken];
