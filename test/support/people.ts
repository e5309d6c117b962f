import type { Role } from '../../src/auth/roles.ts';
import { UserStore, usersFile } from '../../src/auth/users.ts';

/**
 * Adds a person to a data directory's user file (as `octopus user add` and `octopus
 * token create` do) and returns the MQTT credentials they sign in with: the user name
 * and an API token. A running `octopus start` sees the change at once.
 */
export async function person(
  dataDir: string,
  name: string,
  role: Role,
  password?: string,
): Promise<{ username: string; password: string }> {
  const users = new UserStore(usersFile(dataDir));
  if (!users.users().some((u) => u.name === name)) await users.addUser(name, role, password);
  return { username: name, password: users.createToken(name, 'mqtt-test').token };
}
