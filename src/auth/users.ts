import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { hashPassword, verifyPassword } from './password.ts';
import { Role } from './roles.ts';

export const UserName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'user names are 1–64 letters, digits, ".", "_", "@" or "-"');

const UserRecord = z.object({
  name: UserName,
  role: Role,
  /** scrypt hash (password.ts); absent = token-only account. */
  password: z.string().optional(),
  created: z.string(),
  disabled: z.boolean().optional(),
  /** Self-registered and waiting for an admin's approval (web page); cannot sign in. */
  pending: z.boolean().optional(),
});
const TokenRecord = z.object({
  /** Public id, the lookup key (the token starts with it). */
  id: z.string().regex(/^[a-f0-9]{12}$/),
  user: UserName,
  name: z.string(),
  /** sha256 of the whole token, hex. The token itself is never stored. */
  sha256: z.string().regex(/^[a-f0-9]{64}$/),
  created: z.string(),
  /** After this instant the token is refused (web sessions; optional for API tokens). */
  expires: z.string().optional(),
  revoked: z.string().optional(),
});
const UsersFile = z.object({ version: z.literal(1), users: z.array(UserRecord), tokens: z.array(TokenRecord) });
type UsersFile = z.infer<typeof UsersFile>;
export type UserRecord = z.infer<typeof UserRecord>;
export type TokenRecord = z.infer<typeof TokenRecord>;

/** Who made a request. */
export interface Principal {
  user: string;
  role: Role;
  token: string;
}

/**
 * A password check: `ok`, or why not. `pending` and `disabled` are only reported when the
 * password was right; an unknown user, an account without a password and a wrong
 * password are all `wrong`, after the same scrypt work (a dummy hash for unknown users).
 */
export type PasswordCheck = { result: 'ok'; who: Principal } | { result: 'pending' | 'disabled' | 'wrong' };

let dummy: Promise<string> | undefined;
/** A hash with the current parameters, of a random password: unknown users cost as much as known ones. */
const dummyHash = (): Promise<string> => (dummy ??= hashPassword(randomBytes(16).toString('hex')));
/** Computes the dummy hash ahead (sign-in routes call it at start), so even the first unknown user costs one scrypt, not two. */
export const prepareDummyHash = async (): Promise<void> => void (await dummyHash());

export class AuthError extends Error {
  constructor(
    readonly status: 400 | 401 | 404 | 409,
    message: string,
    readonly field?: string,
    readonly value?: unknown,
  ) {
    super(message);
  }
}

/** Tokens look like `oct_<12 hex id>.<32 random bytes base64url>`. */
const TOKEN_RE = /^oct_([a-f0-9]{12})\.([A-Za-z0-9_-]{43})$/;
const sha256 = (s: string) => createHash('sha256').update(s).digest();
export const usersFile = (dataDir: string): string => join(dataDir, 'state', 'users.json');

/**
 * Accounts and API tokens in `<data_dir>/state/users.json` (mode 0600, written
 * atomically). Tokens are stored as SHA-256 hashes (they are 256-bit random, so a fast
 * hash is enough); passwords as scrypt hashes. The file is re-read when it changes, so
 * `octopus token create` works while the server runs. `adminToken` (OCTOPUS_ADMIN_TOKEN)
 * is never a session or an API token: it only creates the first admin account
 * (`bootstrapAdmin`), and only while no active admin exists.
 */
export class UserStore {
  private data: UsersFile = { version: 1, users: [], tokens: [] };
  private stamp = '';
  private readonly adminHash?: Buffer;

  constructor(
    readonly file: string,
    adminToken?: string,
    private readonly now: () => Date = () => new Date(),
  ) {
    if (adminToken) this.adminHash = sha256(adminToken);
  }

  static forDataDir(dataDir: string, env: NodeJS.ProcessEnv = process.env): UserStore {
    return new UserStore(usersFile(dataDir), env.OCTOPUS_ADMIN_TOKEN || undefined);
  }

  // ---- users ---------------------------------------------------------------

  users(): UserRecord[] {
    return this.load().users;
  }

  async addUser(name: string, role: Role, password?: string): Promise<UserRecord> {
    const n = UserName.safeParse(name);
    if (!n.success) throw new AuthError(400, n.error.issues[0]!.message, 'name', name);
    const r = Role.safeParse(role);
    if (!r.success) throw new AuthError(400, `unknown role (roles: ${Role.options.join(', ')})`, 'role', role);
    const d = this.load();
    if (d.users.some((u) => u.name === name)) throw new AuthError(409, `user "${name}" already exists`, 'name', name);
    const user: UserRecord = {
      name,
      role: r.data,
      created: this.now().toISOString(),
      ...(password ? { password: await hashPassword(password) } : {}),
    };
    this.save({ ...d, users: [...d.users, user] });
    return user;
  }

  async setPassword(name: string, password: string): Promise<void> {
    const d = this.load();
    const u = this.user(d, name);
    const hash = await hashPassword(password);
    this.save({ ...d, users: d.users.map((x) => (x === u ? { ...x, password: hash } : x)) });
  }

  setRole(name: string, role: Role): UserRecord {
    const d = this.load();
    const u = this.user(d, name);
    if (role !== 'admin') this.keepAnAdmin(d, u, `make ${role}`);
    const next = { ...u, role };
    this.save({ ...d, users: d.users.map((x) => (x === u ? next : x)) });
    return next;
  }

  /**
   * Self-registration (web page): a viewer account that cannot sign in until an admin
   * approves it. The password is hashed first whatever happens, and an existing name
   * returns undefined instead of an error, so the caller can answer both alike.
   */
  async register(name: string, password: string): Promise<UserRecord | undefined> {
    const n = UserName.safeParse(name);
    if (!n.success) throw new AuthError(400, n.error.issues[0]!.message, 'name', name);
    if (password.length < 8) throw new AuthError(400, 'passwords are at least 8 characters', 'password', null);
    const hash = await hashPassword(password);
    const d = this.load();
    if (d.users.some((u) => u.name === name)) return undefined;
    const user: UserRecord = {
      name,
      role: 'viewer',
      created: this.now().toISOString(),
      password: hash,
      disabled: true,
      pending: true,
    };
    this.save({ ...d, users: [...d.users, user] });
    return user;
  }

  /** Self-registered accounts waiting for approval. */
  pendingCount(): number {
    return this.load().users.filter((u) => u.pending).length;
  }

  /** True when an admin account can sign in (not disabled, not pending). */
  hasAdmin(): boolean {
    return this.load().users.some((u) => u.role === 'admin' && !u.disabled && !u.pending);
  }

  /** Revokes every live token of a user (API tokens and web sessions); returns their ids. */
  revokeUserTokens(name: string): string[] {
    const d = this.load();
    const at = this.now().toISOString();
    const ids: string[] = [];
    const tokens = d.tokens.map((t) => {
      if (t.user !== name || t.revoked) return t;
      ids.push(t.id);
      return { ...t, revoked: at };
    });
    if (ids.length) this.save({ ...d, tokens });
    return ids;
  }

  /**
   * Disables (or re-enables) an account. Disabling revokes all its tokens and sessions;
   * enabling does not bring them back. The last active admin cannot be disabled.
   */
  setDisabled(name: string, disabled: boolean): { user: UserRecord; revoked: string[] } {
    const d = this.load();
    const u = this.user(d, name);
    if (disabled) this.keepAnAdmin(d, u, 'disable');
    if (!disabled && u.pending)
      throw new AuthError(409, `user "${name}" is waiting for approval: approve it instead`, 'user', name);
    const { disabled: _d, ...rest } = u;
    const next: UserRecord = disabled ? { ...rest, disabled: true } : rest;
    this.save({ ...d, users: d.users.map((x) => (x === u ? next : x)) });
    return { user: next, revoked: disabled ? this.revokeUserTokens(name) : [] };
  }

  /** Deletes an account (and revokes its tokens; their records stay, revoked). The last active admin cannot be deleted. */
  deleteUser(name: string): { user: UserRecord; revoked: string[] } {
    const d = this.load();
    const u = this.user(d, name);
    this.keepAnAdmin(d, u, 'delete');
    const revoked = this.revokeUserTokens(name);
    const after = this.load();
    this.save({ ...after, users: after.users.filter((x) => x.name !== name) });
    return { user: u, revoked };
  }

  /**
   * Creates the first admin with the bootstrap token (OCTOPUS_ADMIN_TOKEN): refused with
   * a wrong or unset token (401) and once an active admin exists (409).
   */
  async bootstrapAdmin(token: string | undefined, name: string, password?: string): Promise<UserRecord> {
    if (!this.isBootstrapToken(token))
      throw new AuthError(401, 'wrong or missing bootstrap token (OCTOPUS_ADMIN_TOKEN)');
    if (this.hasAdmin())
      throw new AuthError(
        409,
        'an admin account exists already: OCTOPUS_ADMIN_TOKEN is no longer accepted (sign in as that admin, and unset the variable)',
      );
    const d = this.load();
    const old = d.users.find((x) => x.name === name);
    if (old) {
      // A disabled or pending account of that name becomes the admin (recovery when every admin was disabled).
      const hash = password ? await hashPassword(password) : old.password;
      const { disabled: _d, pending: _p, ...rest } = old;
      const next: UserRecord = { ...rest, role: 'admin', ...(hash ? { password: hash } : {}) };
      const now = this.load();
      this.save({ ...now, users: now.users.map((x) => (x.name === name ? next : x)) });
      return next;
    }
    return this.addUser(name, 'admin', password);
  }

  /** True when OCTOPUS_ADMIN_TOKEN is set. */
  bootstrapConfigured(): boolean {
    return !!this.adminHash;
  }

  /** True for the configured bootstrap token (constant-time compare of SHA-256s). */
  isBootstrapToken(token: string | undefined): boolean {
    return !!token && !!this.adminHash && timingSafeEqual(sha256(token), this.adminHash);
  }

  private keepAnAdmin(d: UsersFile, u: UserRecord, what: string): void {
    const active = (x: UserRecord) => x.role === 'admin' && !x.disabled && !x.pending;
    if (active(u) && !d.users.some((x) => x !== u && active(x))) {
      throw new AuthError(
        409,
        `cannot ${what} "${u.name}": it is the last active admin (make another admin first)`,
        'user',
        u.name,
      );
    }
  }

  /** Approves a self-registered account with a role (admin). */
  approve(name: string, role: Role): UserRecord {
    const r = Role.safeParse(role);
    if (!r.success) throw new AuthError(400, `unknown role (roles: ${Role.options.join(', ')})`, 'role', role);
    const d = this.load();
    const u = this.user(d, name);
    const { pending: _p, disabled: _d, ...rest } = u;
    const next: UserRecord = { ...rest, role: r.data };
    this.save({ ...d, users: d.users.map((x) => (x === u ? next : x)) });
    return next;
  }

  /** Token record by id (no hash). */
  token(id: string): Omit<TokenRecord, 'sha256'> | undefined {
    return this.tokens().find((t) => t.id === id);
  }

  /** Checks a password (for the web page login); undefined when wrong, no password set, disabled or pending. */
  async login(name: string, password: string): Promise<Principal | undefined> {
    const c = await this.checkPassword(name, password);
    return c.result === 'ok' ? c.who : undefined;
  }

  /** Checks a password in constant work whether or not the user exists (see PasswordCheck). */
  async checkPassword(name: string, password: string): Promise<PasswordCheck> {
    const u = this.load().users.find((x) => x.name === name);
    const good = await verifyPassword(password, u?.password ?? (await dummyHash()));
    if (!u?.password || !good) return { result: 'wrong' };
    if (u.pending) return { result: 'pending' };
    if (u.disabled) return { result: 'disabled' };
    return { result: 'ok', who: { user: u.name, role: u.role, token: 'password' } };
  }

  // ---- tokens ----------------------------------------------------------------

  tokens(): Array<Omit<TokenRecord, 'sha256'>> {
    return this.load().tokens.map(({ sha256: _h, ...t }) => t);
  }

  /** Creates a token for a user; the returned `token` is shown once and never stored. */
  createToken(
    user: string,
    name = 'api',
    ttlMs?: number,
  ): { id: string; token: string; user: string; name: string; created: string; expires?: string } {
    const d = this.load();
    this.user(d, user);
    const id = randomBytes(6).toString('hex');
    const token = `oct_${id}.${randomBytes(32).toString('base64url')}`;
    const now = this.now();
    const expires = ttlMs !== undefined ? new Date(now.getTime() + ttlMs).toISOString() : undefined;
    const rec: TokenRecord = {
      id,
      user,
      name,
      sha256: sha256(token).toString('hex'),
      created: now.toISOString(),
      ...(expires ? { expires } : {}),
    };
    // Expired tokens are dropped from the file as new ones are made, so it does not grow forever.
    const live = d.tokens.filter((t) => !t.expires || Date.parse(t.expires) > now.getTime());
    this.save({ ...d, tokens: [...live, rec] });
    return { id, token, user, name, created: rec.created, ...(expires ? { expires } : {}) };
  }

  revokeToken(id: string): Omit<TokenRecord, 'sha256'> {
    const d = this.load();
    const t = d.tokens.find((x) => x.id === id);
    if (!t) throw new AuthError(404, `no token with id "${id}"`, 'id', id);
    if (t.revoked) return (({ sha256: _h, ...rest }) => rest)(t);
    const next = { ...t, revoked: this.now().toISOString() };
    this.save({ ...d, tokens: d.tokens.map((x) => (x === t ? next : x)) });
    const { sha256: _h, ...rest } = next;
    return rest;
  }

  /** Who a bearer token belongs to, or undefined (unknown, malformed, revoked, disabled user). */
  authenticate(token: string | undefined): Principal | undefined {
    if (!token) return undefined;
    const hash = sha256(token);
    const m = TOKEN_RE.exec(token);
    if (!m) return undefined;
    const d = this.load();
    const t = d.tokens.find((x) => x.id === m[1]);
    if (!t || t.revoked || (t.expires && Date.parse(t.expires) <= this.now().getTime())) return undefined;
    if (!timingSafeEqual(hash, Buffer.from(t.sha256, 'hex'))) return undefined;
    const u = d.users.find((x) => x.name === t.user && !x.disabled);
    return u ? { user: u.name, role: u.role, token: t.id } : undefined;
  }

  // ---- file ------------------------------------------------------------------

  private user(d: UsersFile, name: string): UserRecord {
    const u = d.users.find((x) => x.name === name);
    if (!u)
      throw new AuthError(
        404,
        `no user "${name}" (users: ${d.users.map((x) => x.name).join(', ') || 'none'})`,
        'user',
        name,
      );
    return u;
  }

  private load(): UsersFile {
    let st;
    try {
      st = statSync(this.file);
    } catch {
      this.data = { version: 1, users: [], tokens: [] };
      this.stamp = '';
      return this.data;
    }
    const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    if (stamp !== this.stamp) {
      const parsed = UsersFile.safeParse(JSON.parse(readFileSync(this.file, 'utf8')));
      if (!parsed.success)
        throw new Error(
          `${this.file} is not a valid users file: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
        );
      this.data = parsed.data;
      this.stamp = stamp;
    }
    return this.data;
  }

  private save(d: UsersFile): void {
    mkdirSync(join(this.file, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(d, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
    this.data = d;
    const st = statSync(this.file);
    this.stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
  }
}
