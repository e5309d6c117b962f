import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, appendAudit } from '../../src/auth/audit.ts';
import { hashPassword, verifyPassword } from '../../src/auth/password.ts';
import { ROLES, atLeast } from '../../src/auth/roles.ts';
import { AuthError, UserStore } from '../../src/auth/users.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'octopus-auth-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('roles', () => {
  it('are ordered viewer < researcher < operator < admin', () => {
    expect(ROLES).toEqual(['viewer', 'researcher', 'operator', 'admin']);
    expect(atLeast('operator', 'researcher')).toBe(true);
    expect(atLeast('researcher', 'operator')).toBe(false);
    expect(atLeast('admin', 'admin')).toBe(true);
    expect(atLeast('viewer', 'viewer')).toBe(true);
  });
});

describe('UserStore', () => {
  it('stores tokens hashed (never the token), in a 0600 file, and authenticates them', async () => {
    const s = UserStore.forDataDir(dir, {});
    await s.addUser('ana', 'researcher');
    const t = s.createToken('ana', 'laptop');
    const text = readFileSync(join(dir, 'state', 'users.json'), 'utf8');
    expect(text).not.toContain(t.token.split('.')[1]);
    expect(text).toContain(t.id);
    expect(statSync(join(dir, 'state', 'users.json')).mode & 0o777).toBe(0o600);
    expect(s.authenticate(t.token)).toEqual({ user: 'ana', role: 'researcher', token: t.id });
    expect(s.authenticate(`${t.token.slice(0, -1)}${t.token.endsWith('A') ? 'B' : 'A'}`)).toBeUndefined();
    expect(s.authenticate(undefined)).toBeUndefined();
    expect(s.authenticate('')).toBeUndefined();
  });

  it('sees users and tokens added by another process (file re-read when it changes)', async () => {
    const server = UserStore.forDataDir(dir, {});
    expect(server.users()).toEqual([]);
    const cli = UserStore.forDataDir(dir, {});
    await cli.addUser('bo', 'operator');
    const t = cli.createToken('bo');
    expect(server.authenticate(t.token)).toMatchObject({ user: 'bo', role: 'operator' });
    cli.revokeToken(t.id);
    expect(server.authenticate(t.token)).toBeUndefined();
    expect(server.tokens()[0]).toMatchObject({ id: t.id, revoked: expect.any(String) });
    expect(server.tokens()[0]).not.toHaveProperty('sha256');
  });

  it('OCTOPUS_ADMIN_TOKEN is never a session or API token; it creates the first admin once, only exactly', async () => {
    const s = UserStore.forDataDir(dir, { OCTOPUS_ADMIN_TOKEN: 's3cret-bootstrap' });
    expect(s.authenticate('s3cret-bootstrap')).toBeUndefined();
    expect(s.isBootstrapToken('s3cret-bootstrap')).toBe(true);
    expect(s.isBootstrapToken('s3cret-bootstrap ')).toBe(false);
    expect(s.isBootstrapToken('s3cret')).toBe(false);
    expect(UserStore.forDataDir(dir, { OCTOPUS_ADMIN_TOKEN: '' }).isBootstrapToken('')).toBe(false);
    await expect(s.bootstrapAdmin('s3cret', 'root', 'long-password')).rejects.toMatchObject({ status: 401 });
    expect(await s.bootstrapAdmin('s3cret-bootstrap', 'root', 'long-password')).toMatchObject({
      name: 'root',
      role: 'admin',
    });
    expect(await s.login('root', 'long-password')).toMatchObject({ user: 'root', role: 'admin' });
    await expect(s.bootstrapAdmin('s3cret-bootstrap', 'root2', 'long-password')).rejects.toMatchObject({
      status: 409,
      message: /admin account exists/,
    });
  });

  it('disable and delete revoke every token; the last active admin stays', async () => {
    const s = UserStore.forDataDir(dir, {});
    await s.addUser('boss', 'admin');
    await s.addUser('dora', 'researcher', 'dora-password');
    const t1 = s.createToken('dora', 'api');
    const t2 = s.createToken('dora', 'web-session', 60_000);
    expect(s.setDisabled('dora', true).revoked.sort()).toEqual([t1.id, t2.id].sort());
    expect(s.authenticate(t1.token)).toBeUndefined();
    expect(await s.checkPassword('dora', 'dora-password')).toEqual({ result: 'disabled' });
    expect(await s.checkPassword('dora', 'wrong-password')).toEqual({ result: 'wrong' });
    s.setDisabled('dora', false);
    expect(s.authenticate(t1.token)).toBeUndefined();
    const t3 = s.createToken('dora');
    expect(s.deleteUser('dora').revoked).toEqual([t3.id]);
    expect(s.authenticate(t3.token)).toBeUndefined();
    expect(s.users().map((u) => u.name)).toEqual(['boss']);
    expect(() => s.setDisabled('boss', true)).toThrow(/last active admin/);
    expect(() => s.deleteUser('boss')).toThrow(/last active admin/);
  });

  it('refuses bad names, unknown roles, duplicates and unknown users with the field and value', async () => {
    const s = UserStore.forDataDir(dir, {});
    await expect(s.addUser('no spaces', 'viewer')).rejects.toMatchObject({
      status: 400,
      field: 'name',
      value: 'no spaces',
    });
    await expect(s.addUser('x', 'boss' as never)).rejects.toMatchObject({ status: 400, field: 'role', value: 'boss' });
    await s.addUser('x', 'viewer');
    await expect(s.addUser('x', 'viewer')).rejects.toMatchObject({ status: 409 });
    expect(() => s.createToken('ghost')).toThrow(AuthError);
    expect(() => s.revokeToken('000000000000')).toThrow(/no token/);
  });

  it('hashes passwords with scrypt and checks them', async () => {
    const h = await hashPassword('correct horse');
    expect(h).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    expect(await verifyPassword('correct horse', h)).toBe(true);
    expect(await verifyPassword('correct horsE', h)).toBe(false);
    expect(await verifyPassword('x', 'plain')).toBe(false);
    const s = UserStore.forDataDir(dir, {});
    await s.addUser('pw', 'viewer', 'long enough');
    expect(readFileSync(join(dir, 'state', 'users.json'), 'utf8')).not.toContain('long enough');
    expect(await s.login('pw', 'long enough')).toMatchObject({ user: 'pw' });
    expect(await s.login('pw', 'nope')).toBeUndefined();
  });
});

describe('audit log', () => {
  it('appends one JSON line per event and reads the newest back', () => {
    const log = AuditLog.forDataDir(dir);
    log.write({
      who: 'api:ana',
      action: 'download',
      what: 'e/r001/data.nc',
      bytes: 10,
      detail: { range: 'bytes=0-9' },
    });
    appendAudit(log.file, {
      who: 'plc:c1/co2_setpoint',
      action: 'setpoint',
      what: 'c1/co2_setpoint',
      detail: { value: 700 },
    });
    log.write({ who: 'api:bo', action: 'run_start', what: 'e/r002' });
    const lines = readFileSync(log.file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ ts: expect.stringMatching(/Z$/), who: 'api:ana', action: 'download', bytes: 10 });
    expect(log.read({ limit: 2 }).map((e) => e.action)).toEqual(['setpoint', 'run_start']);
    expect(log.read({ action: 'download' })).toHaveLength(1);
  });
});

describe('token expiry', () => {
  it('refuses a token past its expiry, and drops expired tokens from the file as new ones are made', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'octopus-expiry-'));
    let now = Date.parse('2026-06-01T10:00:00Z');
    const users = new UserStore(join(dir, 'users.json'), undefined, () => new Date(now));
    await users.addUser('ada', 'researcher');
    const session = users.createToken('ada', 'web-session', 3_600_000);
    const forever = users.createToken('ada', 'api');
    expect(session.expires).toBe('2026-06-01T11:00:00.000Z');
    expect(users.authenticate(session.token)?.user).toBe('ada');
    now += 3_600_000;
    expect(users.authenticate(session.token)).toBeUndefined();
    expect(users.authenticate(forever.token)?.user).toBe('ada');
    users.createToken('ada', 'api');
    expect(users.tokens().map((t) => t.id)).not.toContain(session.id);
    rmSync(dir, { recursive: true, force: true });
  });
});
