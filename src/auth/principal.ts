import { UserRole } from './access-token.entity';

/** Who is calling, as established by the access guard from the bearer token. */
export type Principal =
  { kind: 'user'; tokenId: string; name: string; role: UserRole } | { kind: 'agent'; tokenId: string; agentId: string };

const RANK: Record<UserRole, number> = { viewer: 1, operator: 2, admin: 3 };

/** admin may do what operator may, operator what viewer may. */
export function roleAllows(has: UserRole, needs: UserRole): boolean {
  return RANK[has] >= RANK[needs];
}
