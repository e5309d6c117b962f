import { z } from 'zod';

/** Roles, weakest first: each role may do everything the roles before it may. */
export const ROLES = ['viewer', 'researcher', 'operator', 'admin'] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

/** True when `role` is `min` or stronger. */
export function atLeast(role: Role, min: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(min);
}
