import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { AuditLog } from '../../src/auth/audit.ts';
import { ROLES, atLeast, type Role } from '../../src/auth/roles.ts';
import { UserStore } from '../../src/auth/users.ts';
import { runCli } from '../support/cli.ts';
import { experimentBody, fixture, health, writeRunFile, type Fixture } from './api-fixtures.ts';

const ADMIN_TOKEN = 'bootstrap-admin-token-for-tests';
let f: Fixture;
let n = 0;

/** Every API endpoint, the weakest role allowed, and a request that succeeds for an allowed role. */
interface Case {
  name: string;
  min: Role;
  ok: number;
  req: () => { method: 'GET' | 'POST' | 'DELETE'; url: string; payload?: unknown };
}
const cases: Case[] = [
  {
    name: 'list experiments',
    min: 'viewer',
    ok: 200,
    req: () => ({ method: 'GET', url: '/api/experiments?text=matrix' }),
  },
  { name: 'get experiment', min: 'viewer', ok: 200, req: () => ({ method: 'GET', url: '/api/experiments/matrix' }) },
  {
    name: 'preview',
    min: 'viewer',
    ok: 200,
    req: () => ({ method: 'GET', url: '/api/experiments/matrix/runs/r001/preview?var=co2&points=5' }),
  },
  {
    name: 'fidelity report',
    min: 'viewer',
    ok: 200,
    req: () => ({ method: 'GET', url: '/api/experiments/matrix/runs/r001/fidelity' }),
  },
  {
    name: 'completeness report',
    min: 'viewer',
    ok: 200,
    req: () => ({ method: 'GET', url: '/api/experiments/matrix/runs/r001/completeness' }),
  },
  { name: 'who am I', min: 'viewer', ok: 200, req: () => ({ method: 'GET', url: '/api/me' }) },
  {
    name: 'download data.nc',
    min: 'researcher',
    ok: 200,
    req: () => ({ method: 'GET', url: '/api/experiments/matrix/runs/r001/data.nc' }),
  },
  {
    name: 'download data.csv',
    min: 'researcher',
    ok: 200,
    req: () => ({ method: 'GET', url: '/api/experiments/matrix/runs/r001/data.csv?vars=co2' }),
  },
  {
    name: 'download archive.zip',
    min: 'researcher',
    ok: 200,
    req: () => ({ method: 'GET', url: '/api/experiments/matrix/archive.zip' }),
  },
  {
    name: 'create experiment',
    min: 'operator',
    ok: 201,
    req: () => ({ method: 'POST', url: '/api/experiments', payload: experimentBody(`made-${++n}`, ['c3']) }),
  },
  {
    name: 'start run',
    min: 'operator',
    ok: 201,
    req: () => ({ method: 'POST', url: '/api/experiments/matrix-runs/runs', payload: {} }),
  },
  {
    name: 'stop run',
    min: 'operator',
    ok: 200,
    req: () => ({ method: 'POST', url: '/api/experiments/matrix-runs/runs/LATEST/stop' }),
  },
  { name: 'list users', min: 'admin', ok: 200, req: () => ({ method: 'GET', url: '/api/admin/users' }) },
  {
    name: 'create user',
    min: 'admin',
    ok: 201,
    req: () => ({ method: 'POST', url: '/api/admin/users', payload: { name: `new-user-${++n}`, role: 'viewer' } }),
  },
  { name: 'list tokens', min: 'admin', ok: 200, req: () => ({ method: 'GET', url: '/api/admin/tokens' }) },
  {
    name: 'create token',
    min: 'admin',
    ok: 201,
    req: () => ({ method: 'POST', url: '/api/admin/tokens', payload: { user: 'viewer-user', name: 'matrix' } }),
  },
  {
    name: 'revoke token',
    min: 'admin',
    ok: 200,
    req: () => ({ method: 'DELETE', url: `/api/admin/tokens/${f.users.createToken('viewer-user', 'to-revoke').id}` }),
  },
  { name: 'read audit log', min: 'admin', ok: 200, req: () => ({ method: 'GET', url: '/api/admin/audit?limit=5' }) },
];

beforeAll(async () => {
  f = await fixture(ADMIN_TOKEN);
  await f.store.create(experimentBody('matrix', ['c1', 'c2']), 'test');
  const run = f.store.startRun('matrix', 'test');
  f.store.stopRun('matrix', run.id, 'test');
  const e = f.store.get('matrix');
  mkdirSync(join(e.dir, 'runs', run.id), { recursive: true });
  writeRunFile(join(e.dir, run.file), run, 20);
  await f.store.create(experimentBody('matrix-runs', ['c3']), 'test');
});
afterAll(async () => {
  await f?.close();
});

async function call(c: Case, headers: Record<string, string>) {
  const r = c.req();
  let url = r.url;
  if (url.includes('LATEST')) {
    // Stop needs a running run: start one as admin (not under test here).
    const start = await f.app.inject({
      method: 'POST',
      url: '/api/experiments/matrix-runs/runs',
      headers: { authorization: `Bearer ${f.tokens.admin}` },
    });
    url = url.replace('LATEST', start.json().run);
  }
  const res = await f.app.inject({
    method: r.method,
    url,
    headers,
    ...(r.payload !== undefined ? { payload: r.payload as object } : {}),
  });
  if (r.method === 'POST' && r.url.endsWith('/runs') && res.statusCode === 201) {
    // Leave the chambers free for the next start.
    f.store.stopRun('matrix-runs', res.json().run, 'test');
  }
  if (url.includes('/stop') && res.statusCode !== 200) {
    const open = f.store.get('matrix-runs').runs.find((x) => x.status === 'running');
    if (open) f.store.stopRun('matrix-runs', open.id, 'test');
  }
  return res;
}

describe('role matrix: each role can do exactly what it may', () => {
  for (const role of ROLES) {
    for (const c of cases) {
      const allowed = atLeast(role, c.min);
      it(`${role} ${allowed ? 'may' : 'may not'} ${c.name}`, async () => {
        const res = await call(c, { authorization: `Bearer ${f.tokens[role]}` });
        if (allowed) expect(res.statusCode, res.body).toBe(c.ok);
        else {
          expect(res.statusCode, res.body).toBe(403);
          expect(res.json().error).toMatch(new RegExp(`needs role ${c.min}`));
        }
      });
    }
  }

  for (const c of cases) {
    it(`the OCTOPUS_ADMIN_TOKEN (bootstrap only) may not ${c.name}`, async () => {
      expect((await call(c, { authorization: `Bearer ${ADMIN_TOKEN}` })).statusCode).toBe(401);
    });
  }
});

describe('missing or wrong token → 401', () => {
  const wrong: Record<string, () => Record<string, string>> = {
    'no Authorization header': () => ({}),
    'empty bearer': () => ({ authorization: 'Bearer ' }),
    'Basic scheme': () => ({ authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` }),
    'random token': () => ({ authorization: 'Bearer not-a-token' }),
    'known id, wrong secret': () => ({ authorization: `Bearer ${f.tokens.admin.slice(0, -4)}AAAA` }),
    'admin token with a typo': () => ({ authorization: `Bearer ${ADMIN_TOKEN}x` }),
  };
  for (const [what, headers] of Object.entries(wrong)) {
    for (const c of cases) {
      it(`${what}: ${c.name}`, async () => {
        const res = await call(c, headers());
        expect(res.statusCode, res.body).toBe(401);
        expect(res.headers['www-authenticate']).toBe('Bearer realm="octopus"');
      });
    }
  }

  it('a revoked token is refused; a token of another user is that user', async () => {
    const t = f.users.createToken('admin-user', 'soon-revoked');
    expect(
      (await f.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${t.token}` } })).json(),
    ).toMatchObject({ user: 'admin-user', role: 'admin' });
    const del = await f.app.inject({
      method: 'DELETE',
      url: `/api/admin/tokens/${t.id}`,
      headers: { authorization: `Bearer ${f.tokens.admin}` },
    });
    expect(del.json()).toMatchObject({ id: t.id, revoked: expect.any(String) });
    expect((await f.app.inject({ url: '/api/me', headers: { authorization: `Bearer ${t.token}` } })).statusCode).toBe(
      401,
    );
  });

  it('authentication comes before validation: bad parameters without a token are 401, not 400', async () => {
    const res = await f.app.inject({ url: '/api/experiments?from=garbage' });
    expect(res.statusCode).toBe(401);
    const body = await f.app.inject({ method: 'POST', url: '/api/experiments', payload: { nonsense: true } });
    expect(body.statusCode).toBe(401);
  });

  it('health, metrics and the OpenAPI document stay public', async () => {
    for (const url of ['/api/health', '/metrics', '/docs/json'])
      expect((await f.app.inject({ url })).statusCode).toBe(200);
  });

  it('admin endpoints validate their input (400 with field and value)', async () => {
    const h = { authorization: `Bearer ${f.tokens.admin}` };
    const role = await f.app.inject({
      method: 'POST',
      url: '/api/admin/users',
      headers: h,
      payload: { name: 'eve', role: 'boss' },
    });
    expect(role.statusCode).toBe(400);
    expect(role.json()).toMatchObject({ field: 'role', value: 'boss' });
    const dup = await f.app.inject({
      method: 'POST',
      url: '/api/admin/users',
      headers: h,
      payload: { name: 'viewer-user', role: 'viewer' },
    });
    expect(dup.statusCode).toBe(409);
    const nouser = await f.app.inject({
      method: 'POST',
      url: '/api/admin/tokens',
      headers: h,
      payload: { user: 'ghost' },
    });
    expect(nouser.statusCode).toBe(404);
    expect(nouser.json()).toMatchObject({ field: 'user', value: 'ghost' });
  });

  it('the audit log names who downloaded what', async () => {
    const entries = f.audit.read({ action: 'download' });
    const whoWhat = new Set(entries.map((e) => `${e.who} ${e.what}`));
    for (const role of ['researcher', 'operator', 'admin'] as const) {
      for (const what of ['matrix/r001/data.nc', 'matrix/r001/data.csv', 'matrix/archive.zip'])
        expect(whoWhat).toContain(`api:${role}-user ${what}`);
    }
    expect([...whoWhat].some((x) => x.startsWith('api:viewer-user'))).toBe(false);
  });
});

describe('octopus user / token / run commands', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'octopus-cli-auth-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a user and a token the API accepts, lists and revokes it', async () => {
    const env = { OCTOPUS_DATA_DIR: dir, OCTOPUS_ADMIN_TOKEN: '' };
    const add = runCli(['user', 'add', 'alice', '--role', 'researcher'], { env });
    expect(add.code, add.stderr).toBe(0);
    const bad = runCli(['user', 'add', 'bob', '--role', 'boss'], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--role must be one of viewer, researcher, operator, admin \(got "boss"\)/);
    const created = runCli(['token', 'create', 'alice', '--name', 'laptop'], { env });
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^oct_[0-9a-f]{12}\.[A-Za-z0-9_-]{43}$/);

    const users = UserStore.forDataDir(dir, {});
    expect(users.authenticate(token)).toMatchObject({ user: 'alice', role: 'researcher' });
    const app = await buildApp({ health, experiments: f.store, users, audit: AuditLog.forDataDir(dir) });
    try {
      expect(
        (await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })).json(),
      ).toMatchObject({ user: 'alice', role: 'researcher' });
      const list = runCli(['user', 'list'], { env });
      expect(list.stdout).toMatch(/^alice\tresearcher\t/m);
      const id = token.slice(4, 16);
      expect(runCli(['token', 'list'], { env }).stdout).toContain(`${id}\talice\tlaptop`);
      expect(runCli(['token', 'revoke', id], { env }).code).toBe(0);
      expect((await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(
        401,
      );
    } finally {
      await app.close();
    }
    const audit = AuditLog.forDataDir(dir)
      .read()
      .map((e) => e.action);
    expect(audit).toEqual(['user_add', 'token_create', 'token_revoke']);
  });

  it('sets a password from stdin (scrypt hash, never the password)', async () => {
    const { spawnSync } = await import('node:child_process');
    const { PROJECT_ROOT } = await import('../../src/config/profiles.ts');
    const r = spawnSync(
      process.execPath,
      [join(PROJECT_ROOT, 'bin', 'octopus.js'), 'user', 'add', 'carol', '--role', 'viewer', '--password-stdin'],
      {
        input: 'correct horse battery\n',
        env: { ...process.env, OCTOPUS_DATA_DIR: dir },
        encoding: 'utf8',
        cwd: PROJECT_ROOT,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const users = UserStore.forDataDir(dir, {});
    expect(users.users().find((u) => u.name === 'carol')?.password).toMatch(/^scrypt\$/);
    expect(await users.login('carol', 'correct horse battery')).toMatchObject({ user: 'carol', role: 'viewer' });
    expect(await users.login('carol', 'wrong')).toBeUndefined();
  });

  it('starts, lists and stops runs of an experiment folder', async () => {
    const env = { OCTOPUS_DATA_DIR: dir };
    const { createExperimentStore } = await import('../../src/cli/runs.ts');
    const { loadConfig } = await import('../../src/config/loader.ts');
    const loaded = loadConfig(undefined, { ...process.env, OCTOPUS_DATA_DIR: dir });
    const store = createExperimentStore(loaded);
    const chamber = loaded.chambers[0]!.chamber.id;
    await store.create(experimentBody('cli-exp', [chamber]), 'test');
    const start = runCli(['run', 'start', 'cli-exp', '--note', 'from the CLI'], { env });
    expect(start.code, start.stderr).toBe(0);
    expect(start.stdout).toMatch(/started run r001 of cli-exp/);
    expect(runCli(['run', 'start', 'cli-exp'], { env }).code).toBe(1);
    expect(runCli(['run', 'list', 'cli-exp'], { env }).stdout).toMatch(/^cli-exp\tr001\trunning\t.*from the CLI$/m);
    const stop = runCli(['run', 'stop', 'cli-exp', 'r001'], { env });
    expect(stop.code, stop.stderr).toBe(0);
    expect(store.get('cli-exp').runs[0]).toMatchObject({
      status: 'stopped',
      note: 'from the CLI',
      started_by: expect.stringMatching(/^cli/),
    });
    expect(runCli(['run', 'stop', 'cli-exp', 'r001'], { env }).stderr).toMatch(/already stopped/);
    const actions = AuditLog.forDataDir(dir)
      .read()
      .filter((e) => e.action.startsWith('run_'))
      .map((e) => `${e.action} ${e.what}`);
    expect(actions).toEqual(['run_start cli-exp/r001', 'run_stop cli-exp/r001']);
  });
});
