import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { AuditLog } from '../auth/audit.ts';
import { ROLES, Role } from '../auth/roles.ts';
import { AuthError, UserStore } from '../auth/users.ts';
import { loadConfig } from '../config/loader.ts';
import { EXIT_CONFIG } from '../core/errors.ts';

type Out = (line: string) => void;

export const ADMIN_USAGE = `  octopus user add <name> --role <${ROLES.join('|')}> [--password-stdin]
  octopus user list
  octopus user disable <name>                  refuses its sign-in and revokes its tokens and sessions
  octopus user enable <name>
  octopus user delete <name>                   removes the account and revokes its tokens and sessions
  octopus token create <user> [--name label]   prints the token once (it is stored hashed)
  octopus token list
  octopus token revoke <id>`;

/** Who the CLI acts as in the audit log and run files. */
export const cliActor = (): string => {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

function stores(config: string | undefined): { users: UserStore; audit: AuditLog } {
  const loaded = loadConfig(config);
  return { users: UserStore.forDataDir(loaded.dataDir), audit: AuditLog.forDataDir(loaded.dataDir) };
}

/** `octopus user …` and `octopus token …`: accounts in <data_dir>/state/users.json. */
export async function adminCommand(command: 'user' | 'token', args: string[], out: Out, err: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      role: { type: 'string', short: 'r' },
      name: { type: 'string', short: 'n' },
      'password-stdin': { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const [sub, arg] = positionals;
  try {
    if (command === 'user' && sub === 'add' && arg) {
      const role = Role.safeParse(values.role);
      if (!role.success) {
        err(`user add: --role must be one of ${ROLES.join(', ')} (got ${JSON.stringify(values.role ?? '')})`);
        return EXIT_CONFIG;
      }
      const password = values['password-stdin'] ? await readStdin() : undefined;
      if (password !== undefined && password.length < 8) {
        err('user add: the password must have at least 8 characters');
        return EXIT_CONFIG;
      }
      const { users, audit } = stores(values.config);
      const u = await users.addUser(arg, role.data, password);
      audit.write({ who: cliActor(), action: 'user_add', what: u.name, detail: { role: u.role } });
      out(
        `added user ${u.name} (${u.role})${password ? ' with a password' : ''}; create a token with: octopus token create ${u.name}`,
      );
      return 0;
    }
    if (command === 'user' && sub === 'list') {
      const { users } = stores(values.config);
      const list = users.users();
      if (values.json)
        out(
          JSON.stringify(
            list.map(({ password, ...u }) => ({ ...u, password: password !== undefined })),
            null,
            2,
          ),
        );
      else
        for (const u of list)
          out(`${u.name}\t${u.role}\t${u.created}${u.password ? '\tpassword' : ''}${u.disabled ? '\tdisabled' : ''}`);
      if (!list.length && !values.json) out('no users yet: octopus user add <name> --role <role>');
      return 0;
    }
    if (command === 'user' && (sub === 'disable' || sub === 'enable' || sub === 'delete') && arg) {
      const { users, audit } = stores(values.config);
      const { user, revoked } = sub === 'delete' ? users.deleteUser(arg) : users.setDisabled(arg, sub === 'disable');
      audit.write({
        who: cliActor(),
        action: `user_${sub}`,
        what: user.name,
        ...(revoked.length ? { detail: { revoked_tokens: revoked } } : {}),
      });
      out(
        `${sub === 'delete' ? 'deleted' : `${sub}d`} user ${user.name}${revoked.length ? `; revoked ${revoked.length} token(s)/session(s): ${revoked.join(', ')}` : ''}`,
      );
      return 0;
    }
    if (command === 'token' && sub === 'create' && arg) {
      const { users, audit } = stores(values.config);
      const t = users.createToken(arg, values.name ?? 'cli');
      audit.write({ who: cliActor(), action: 'token_create', what: t.id, detail: { user: t.user, name: t.name } });
      if (values.json) out(JSON.stringify(t));
      else {
        out(t.token);
        err(`token ${t.id} for ${t.user} created; it is shown only now. Use it as: Authorization: Bearer <token>`);
      }
      return 0;
    }
    if (command === 'token' && sub === 'list') {
      const { users } = stores(values.config);
      for (const t of users.tokens())
        out(`${t.id}\t${t.user}\t${t.name}\t${t.created}${t.revoked ? `\trevoked ${t.revoked}` : ''}`);
      return 0;
    }
    if (command === 'token' && sub === 'revoke' && arg) {
      const { users, audit } = stores(values.config);
      const t = users.revokeToken(arg);
      audit.write({ who: cliActor(), action: 'token_revoke', what: t.id, detail: { user: t.user } });
      out(`revoked token ${t.id} of ${t.user}`);
      return 0;
    }
  } catch (e) {
    if (e instanceof AuthError) {
      err(`${command} ${sub}: ${e.message}`);
      return e.status === 404 || e.status === 409 ? 1 : EXIT_CONFIG;
    }
    throw e;
  }
  err(`usage:\n${ADMIN_USAGE}`);
  return EXIT_CONFIG;
}
