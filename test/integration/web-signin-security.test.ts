/**
 * The sign-in attacks of issue 11 replayed against the real app: brute force throttled
 * (per account, per address, with backoff), user enumeration indistinguishable (status,
 * page and time), each open-redirect form, login CSRF, the bootstrap token refused as a
 * session, security headers everywhere (and /docs still working), `Secure` cookies only
 * over TLS or a trusted proxy, deletion/disable revoking access, the pending cap and the
 * per-user bundle quota. The throttles run on a clock the tests move: nothing sleeps.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { PAGE_CSP } from '../../src/api/hooks/security-headers.ts';
import { runCli } from '../support/cli.ts';
import { csrfIn, form, HOSTILE_NEXT, openForm, postForm, setCookies, webSignIn } from '../support/web.ts';
import { experimentBody, fixture, health, writeRunFile, type Fixture } from './api-fixtures.ts';

const ADMIN_TOKEN = 'bootstrap-token-for-the-security-suite';
const HTTP = {
  sign_in: {
    max_failures: 3,
    max_failures_per_address: 8,
    max_registrations_per_address: 50,
    window_s: 600,
    lockout_s: 60,
    max_lockout_s: 600,
  },
  max_pending_registrations: 3,
  bundles: { max_running_per_user: 1, max_bytes_per_user: 1 },
};
let f: Fixture;
let app: FastifyInstance;
let clock = Date.UTC(2026, 0, 1);
let ipSeq = 0;
/** A fresh client address per scenario, so one test's address lockout does not touch another's. */
const newAddress = () => `10.9.${Math.floor(++ipSeq / 250)}.${(ipSeq % 250) + 1}`;

/** POST a sign-in form from `remoteAddress` (opening the form first for its CSRF token). */
async function signInForm(fields: Record<string, string>, remoteAddress: string, next = '/experiments') {
  const fm = await openForm(app, '/login');
  return app.inject({
    method: 'POST',
    url: '/login',
    remoteAddress,
    headers: { cookie: fm.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: form({ _csrf: fm.csrf, next, ...fields }),
  });
}
const sessionCookie = (r: { headers: Record<string, unknown> }) =>
  setCookies(r).find((c) => c.startsWith('octopus_session='));

beforeAll(async () => {
  f = await fixture(ADMIN_TOKEN);
  await f.app.close();
  app = await buildApp({
    health,
    experiments: f.store,
    users: f.users,
    audit: f.audit,
    http: HTTP,
    now: () => clock,
    bundleThrottleMs: 40,
    runFile: (id, run) => join(f.store.get(id).dir, run.file),
  });
  for (const u of ['viewer', 'researcher', 'operator', 'admin'])
    await f.users.setPassword(`${u}-user`, `${u}-password`);
  await f.users.addUser('bf-user', 'viewer', 'bf-password');
  await f.store.create(experimentBody('quota-exp', ['c1']), 'test');
  const run = f.store.startRun('quota-exp', 'test');
  writeRunFile(join(f.store.get('quota-exp').dir, run.file), run, 300);
  f.store.stopRun('quota-exp', run.id, 'test');
}, 60_000);
afterAll(async () => {
  await app?.close();
  await f?.close();
});

describe('brute force is throttled per account and per address', () => {
  it('3 wrong passwords lock the account: the right one is refused (429, Retry-After) until the lockout ends, then accepted; the next lockout is twice as long', async () => {
    const ip = newAddress();
    const answers: number[] = [];
    for (let i = 0; i < 3; i++)
      answers.push((await signInForm({ username: 'bf-user', password: `guess-${i}` }, ip)).statusCode);
    expect(answers).toEqual([400, 400, 429]);
    const during = await signInForm({ username: 'bf-user', password: 'bf-password' }, newAddress());
    expect(during.statusCode).toBe(429);
    expect(during.headers['retry-after']).toBe('60');
    expect(during.body).toMatch(/Too many sign-in attempts: try again in 60 s\./);
    expect(sessionCookie(during)).toBeUndefined();
    clock += 30_000;
    const later = await signInForm({ username: 'bf-user', password: 'bf-password' }, ip);
    expect(later.statusCode).toBe(429);
    expect(later.headers['retry-after']).toBe('30');
    clock += 30_001;
    const after = await signInForm({ username: 'bf-user', password: 'bf-password' }, ip);
    expect(after.statusCode, after.body).toBe(303);
    expect(sessionCookie(after)).toMatch(/^octopus_session=oct_/);
    // The attacker goes on after the lockout: the next lockout is twice as long.
    clock += 3_600_000;
    for (let i = 0; i < 3; i++) await signInForm({ username: 'bf-user', password: `first-${i}` }, ip);
    clock += 60_001;
    for (let i = 0; i < 3; i++) await signInForm({ username: 'bf-user', password: `again-${i}` }, ip);
    const second = await signInForm({ username: 'bf-user', password: 'bf-password' }, ip);
    expect(second.statusCode).toBe(429);
    expect(second.headers['retry-after']).toBe('120');
    clock += 120_001;
    expect((await signInForm({ username: 'bf-user', password: 'bf-password' }, ip)).statusCode).toBe(303);
    expect(f.audit.read({ action: 'login_failed' }).filter((e) => e.what === 'bf-user').length).toBeGreaterThanOrEqual(
      6,
    );
  });

  it('one address spraying many names (passwords or tokens) is locked for every account, other addresses are not', async () => {
    const ip = newAddress();
    for (let i = 0; i < 5; i++)
      expect((await signInForm({ username: `spray-${i}`, password: 'Winter2026!' }, ip)).statusCode).toBe(400);
    for (let i = 0; i < 2; i++)
      expect((await signInForm({ token: `oct_000000000000.${'A'.repeat(43)}` }, ip)).statusCode).toBe(400);
    expect((await signInForm({ token: 'oct_nope' }, ip)).statusCode).toBe(429);
    const locked = await signInForm({ username: 'viewer-user', password: 'viewer-password' }, ip);
    expect(locked.statusCode).toBe(429);
    expect(locked.body).toMatch(/Too many sign-in attempts: try again in \d+ s\./);
    expect((await signInForm({ username: 'viewer-user', password: 'viewer-password' }, newAddress())).statusCode).toBe(
      303,
    );
    clock += 60_001;
    expect((await signInForm({ username: 'viewer-user', password: 'viewer-password' }, ip)).statusCode).toBe(303);
  });
});

describe('answers do not reveal whether a user exists or is pending', () => {
  const norm = (body: string, name: string) => body.replaceAll(`value="${name}"`, 'value="NAME"');

  it('unknown user, wrong password and pending account (wrong password) get the same status and page', async () => {
    await postForm(app, '/register', { username: 'pending-pat', password: 'pat-password', confirm: 'pat-password' });
    expect(f.users.users().find((u) => u.name === 'pending-pat')?.pending).toBe(true);
    const fm = await openForm(app, '/login');
    const attempt = async (username: string, password: string) => {
      clock += 3_600_000; // a fresh throttle window each time: this test is about the answers
      const r = await app.inject({
        method: 'POST',
        url: '/login',
        remoteAddress: newAddress(),
        headers: { cookie: fm.cookie, 'content-type': 'application/x-www-form-urlencoded' },
        payload: form({ _csrf: fm.csrf, next: '/', username, password }),
      });
      return { status: r.statusCode, body: norm(r.body, username) };
    };
    const unknown = await attempt('nobody-here', 'whatever-1');
    const wrong = await attempt('viewer-user', 'whatever-1');
    const pending = await attempt('pending-pat', 'whatever-1');
    expect(unknown.status).toBe(400);
    expect(wrong).toEqual(unknown);
    expect(pending).toEqual(unknown);
    expect(unknown.body).toContain('Wrong user name or password.');
    expect(unknown.body).not.toMatch(/approval|disabled|no such|unknown user/i);
    // Only the right password learns that the account waits for approval.
    const right = await attempt('pending-pat', 'pat-password');
    expect(right.body).toMatch(/waiting for an admin’s approval/);
  });

  it('an unknown user costs the same scrypt work as a wrong password (median over several tries)', async () => {
    const time = async (username: string) => {
      clock += 3_600_000;
      const fm = await openForm(app, '/login');
      const t0 = performance.now();
      const r = await app.inject({
        method: 'POST',
        url: '/login',
        remoteAddress: newAddress(),
        headers: { cookie: fm.cookie, 'content-type': 'application/x-www-form-urlencoded' },
        payload: form({ _csrf: fm.csrf, username, password: 'not-the-password' }),
      });
      const ms = performance.now() - t0;
      expect(r.statusCode).toBe(400);
      return ms;
    };
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const unknown: number[] = [];
    const wrong: number[] = [];
    for (let i = 0; i < 7; i++) {
      unknown.push(await time(`ghost-${i}`));
      wrong.push(await time('operator-user'));
    }
    // Loose on purpose (a loaded machine): before the fix, unknown users answered ~60× faster.
    expect(median(unknown)).toBeGreaterThan(median(wrong) / 3);
  }, 60_000);

  it('registration answers alike for a free and a taken name (and creates nothing for the taken one)', async () => {
    clock += 3_600_000;
    const before = f.users.users().find((u) => u.name === 'operator-user');
    const taken = await postForm(app, '/register', {
      username: 'operator-user',
      password: 'new-password',
      confirm: 'new-password',
    });
    const free = await postForm(app, '/register', {
      username: 'fresh-fred',
      password: 'new-password',
      confirm: 'new-password',
    });
    expect(taken.statusCode).toBe(201);
    expect(free.statusCode).toBe(201);
    expect(norm(taken.body, 'operator-user').replaceAll('operator-user', 'NAME')).toBe(
      norm(free.body, 'fresh-fred').replaceAll('fresh-fred', 'NAME'),
    );
    expect(f.users.users().find((u) => u.name === 'operator-user')).toEqual(before);
    expect(await f.users.login('operator-user', 'operator-password')).toMatchObject({ role: 'operator' });
  });
});

describe('next: same-origin paths only', () => {
  it.each(HOSTILE_NEXT)('sign-in with next=%j lands on /', async (next) => {
    clock += 3_600_000;
    const r = await signInForm({ username: 'researcher-user', password: 'researcher-password' }, newAddress(), next);
    expect(r.statusCode, r.body).toBe(303);
    expect(r.headers.location).toBe('/');
  });

  it('the sign-in page does not carry a hostile next into its form; a real path survives', async () => {
    const page = await app.inject({ url: `/login?next=${encodeURIComponent('/\\evil.example')}` });
    expect(page.body).toContain('name="next" value="/"');
    clock += 3_600_000;
    const ok = await signInForm(
      { username: 'researcher-user', password: 'researcher-password' },
      newAddress(),
      '/experiments/quota-exp?x=1',
    );
    expect(ok.headers.location).toBe('/experiments/quota-exp?x=1');
  });
});

describe('login CSRF', () => {
  it('sign-in and registration need the form token bound to this browser’s pre-session cookie', async () => {
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    const none = await app.inject({
      method: 'POST',
      url: '/login',
      remoteAddress: newAddress(),
      headers,
      payload: form({ username: 'viewer-user', password: 'viewer-password' }),
    });
    expect(none.statusCode).toBe(403);
    expect(none.body).toMatch(/did not come from this site/);
    expect(sessionCookie(none)).toBeUndefined();
    const mine = await openForm(app, '/login');
    const theirs = await openForm(app, '/login');
    expect(mine.cookie).not.toBe(theirs.cookie);
    const crossed = await app.inject({
      method: 'POST',
      url: '/login',
      remoteAddress: newAddress(),
      headers: { ...headers, cookie: mine.cookie },
      payload: form({ _csrf: theirs.csrf, username: 'viewer-user', password: 'viewer-password' }),
    });
    expect(crossed.statusCode).toBe(403);
    expect(sessionCookie(crossed)).toBeUndefined();
    const noCookie = await app.inject({
      method: 'POST',
      url: '/login',
      remoteAddress: newAddress(),
      headers,
      payload: form({ _csrf: mine.csrf, token: f.tokens.viewer }),
    });
    expect(noCookie.statusCode).toBe(403);
    const reg = await app.inject({
      method: 'POST',
      url: '/register',
      headers,
      payload: form({ username: 'csrf-victim', password: 'longenough', confirm: 'longenough' }),
    });
    expect(reg.statusCode).toBe(403);
    expect(f.users.users().some((u) => u.name === 'csrf-victim')).toBe(false);
    const pre = setCookies(await app.inject({ url: '/login' })).find((c) => c.startsWith('octopus_presession='));
    expect(pre).toMatch(/^octopus_presession=[A-Za-z0-9_-]{32}$/);
  });
});

describe('the bootstrap token only creates the first admin', () => {
  it('is refused as a sign-in token, as a session cookie and as an API bearer once an admin exists', async () => {
    const r = await signInForm({ token: ADMIN_TOKEN }, newAddress());
    expect(r.statusCode).toBe(400);
    expect(r.body).toMatch(/bootstrap token: it only creates the first admin/);
    expect(sessionCookie(r)).toBeUndefined();
    const cookie = `octopus_session=${ADMIN_TOKEN}`;
    expect((await app.inject({ url: '/api/me', headers: { cookie } })).statusCode).toBe(401);
    const pg = await app.inject({ url: '/admin', headers: { cookie } });
    expect(pg.statusCode).toBe(303);
    expect(pg.headers.location).toMatch(/^\/login/);
    expect(
      (await app.inject({ url: '/api/admin/users', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).statusCode,
    ).toBe(401);
    const setup = await app.inject({
      method: 'POST',
      url: '/api/setup/admin',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      payload: { name: 'second-root', password: 'long-password' },
    });
    expect(setup.statusCode).toBe(409);
    expect(setup.json().error).toMatch(/admin account exists already/);
    expect((await app.inject({ url: '/setup' })).statusCode).toBe(404);
  });

  it('on a fresh install: /setup (web) or POST /api/setup/admin creates one admin, then never again', async () => {
    const { UserStore } = await import('../../src/auth/users.ts');
    for (const via of ['web', 'api'] as const) {
      const users = new UserStore(join(f.dir, 'state', `fresh-${via}.json`), ADMIN_TOKEN);
      const a2 = await buildApp({ health, experiments: f.store, users, audit: f.audit, http: HTTP, now: () => clock });
      try {
        expect(users.hasAdmin()).toBe(false);
        expect((await a2.inject({ url: '/login' })).body).toContain('href="/setup"');
        if (via === 'web') {
          const wrong = await postForm(a2, '/setup', {
            token: 'not-it',
            username: 'root',
            password: 'root-password',
            confirm: 'root-password',
          });
          expect(wrong.statusCode).toBe(400);
          expect(wrong.body).toMatch(/id="f-token-error"[^>]*>Wrong bootstrap token/);
          const noCsrf = await a2.inject({
            method: 'POST',
            url: '/setup',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            payload: form({
              token: ADMIN_TOKEN,
              username: 'root',
              password: 'root-password',
              confirm: 'root-password',
            }),
          });
          expect(noCsrf.statusCode).toBe(403);
          const web = await postForm(a2, '/setup', {
            token: ADMIN_TOKEN,
            username: 'root',
            password: 'root-password',
            confirm: 'root-password',
          });
          expect(web.statusCode, web.body).toBe(303);
          expect(web.headers.location).toBe('/admin');
          const session = sessionCookie(web)!;
          expect(session).not.toContain(ADMIN_TOKEN);
          expect((await a2.inject({ url: '/api/me', headers: { cookie: session } })).json()).toMatchObject({
            user: 'root',
            role: 'admin',
          });
        } else {
          const wrong = await a2.inject({
            method: 'POST',
            url: '/api/setup/admin',
            remoteAddress: newAddress(),
            headers: { authorization: 'Bearer not-it' },
            payload: { name: 'root' },
          });
          expect(wrong.statusCode).toBe(401);
          const api = await a2.inject({
            method: 'POST',
            url: '/api/setup/admin',
            headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
            payload: { name: 'root', password: 'long-password' },
          });
          expect(api.statusCode, api.body).toBe(201);
          expect(api.json().user).toMatchObject({ name: 'root', role: 'admin', password: true });
          expect(
            (
              await a2.inject({ url: '/api/me', headers: { authorization: `Bearer ${api.json().token.token}` } })
            ).json(),
          ).toMatchObject({ user: 'root', role: 'admin' });
        }
        const again = await a2.inject({
          method: 'POST',
          url: '/api/setup/admin',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
          payload: { name: 'root2', password: 'long-password' },
        });
        expect(again.statusCode).toBe(409);
        expect((await a2.inject({ url: '/setup' })).statusCode).toBe(404);
        expect(
          (
            await postForm(
              a2,
              '/setup',
              { token: ADMIN_TOKEN, username: 'root3', password: 'root-password', confirm: 'root-password' },
              { formUrl: '/login' },
            )
          ).statusCode,
        ).toBe(404);
        expect(users.users().map((u) => u.name)).toEqual(['root']);
        expect(f.audit.read({ action: 'user_add' }).at(-1)).toMatchObject({
          what: 'root',
          detail: { via: 'OCTOPUS_ADMIN_TOKEN' },
        });
      } finally {
        await a2.close();
      }
    }
  });
});

describe('security headers', () => {
  it('every response carries CSP, frame, nosniff and referrer headers; the pages have no inline script or style', async () => {
    const s = await webSignIn(app, 'admin-user', 'admin-password');
    const urls = [
      '/login',
      '/register',
      '/experiments',
      '/experiments/quota-exp',
      '/live',
      '/admin',
      '/api/health',
      '/api/experiments',
      '/static/app.js',
      '/static/app.css',
      '/no-such-page',
      '/metrics',
    ];
    for (const url of urls) {
      const r = await app.inject({ url, headers: { cookie: s.cookie } });
      expect(r.headers['content-security-policy'], url).toBe(PAGE_CSP);
      expect(r.headers['x-frame-options'], url).toBe('DENY');
      expect(r.headers['x-content-type-options'], url).toBe('nosniff');
      expect(r.headers['referrer-policy'], url).toBe('same-origin');
      if (String(r.headers['content-type']).startsWith('text/html')) {
        expect(r.body, url).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
        expect(r.body, url).not.toMatch(/\son[a-z]+\s*=/i);
        expect(r.body, url).not.toMatch(/\sstyle\s*=/i);
        expect(r.body, url).not.toMatch(/javascript:/i);
      }
    }
    expect(PAGE_CSP).toMatch(/default-src 'self'/);
    expect(PAGE_CSP).toMatch(/script-src 'self'(;|$)/);
    expect(PAGE_CSP).toMatch(/frame-ancestors 'none'/);
    expect(PAGE_CSP).not.toMatch(/unsafe/);
  });

  it('/docs (Swagger UI) still loads, with inline styles allowed there only and scripts from this site only', async () => {
    const docs = await app.inject({ url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toMatch(/swagger-ui-bundle\.js/);
    const csp = String(docs.headers['content-security-policy']);
    expect(csp).toMatch(/script-src 'self';/);
    expect(csp).toMatch(/style-src 'self' 'unsafe-inline'/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    for (const m of docs.body.matchAll(/src="([^"]+)"/g)) {
      const js = await app.inject({ url: new URL(m[1]!, 'http://x/docs/').pathname });
      expect(js.statusCode, m[1]).toBe(200);
    }
    expect(docs.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
    expect((await app.inject({ url: '/docs/json' })).json().paths['/api/setup/admin']).toBeDefined();
  });
});

describe('Secure cookies: over TLS or behind a trusted proxy only', () => {
  async function listen(trusted: string[]) {
    const a = await buildApp({
      health,
      experiments: f.store,
      users: f.users,
      audit: f.audit,
      http: { ...HTTP, trusted_proxies: trusted },
      now: () => clock,
    });
    await a.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(a.server.address() as { port: number }).port}`;
    const signIn = async (headers: Record<string, string>) => {
      clock += 3_600_000;
      const pg = await fetch(`${base}/login`, { headers });
      const pre = pg.headers.getSetCookie().find((c) => c.startsWith('octopus_presession='))!;
      const r = await fetch(`${base}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { ...headers, cookie: pre.split(';')[0]!, 'content-type': 'application/x-www-form-urlencoded' },
        body: form({ _csrf: csrfIn(await pg.text()), username: 'viewer-user', password: 'viewer-password' }),
      });
      expect(r.status).toBe(303);
      return {
        pre,
        session: r.headers.getSetCookie().find((c) => c.startsWith('octopus_session='))!,
        hsts: r.headers.get('strict-transport-security'),
      };
    };
    return { a, signIn };
  }

  it('a trusted proxy saying https gets Secure cookies (and HSTS); without the header, or from an untrusted peer, none', async () => {
    const trusted = await listen(['127.0.0.1/32']);
    const untrusted = await listen([]);
    try {
      const viaProxy = await trusted.signIn({ 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.5' });
      expect(viaProxy.session).toMatch(/; Secure/);
      expect(viaProxy.pre).toMatch(/; Secure/);
      expect(viaProxy.hsts).toMatch(/max-age=\d+/);
      const plain = await trusted.signIn({});
      expect(plain.session).not.toMatch(/Secure/);
      const forged = await untrusted.signIn({ 'x-forwarded-proto': 'https' });
      expect(forged.session).not.toMatch(/Secure/);
      expect(forged.hsts).toBeNull();
    } finally {
      await trusted.a.close();
      await untrusted.a.close();
    }
  });

  it('served over TLS directly (http.tls): the cookies are Secure and HSTS is sent', async () => {
    const { execFileSync } = await import('node:child_process');
    const { request } = await import('node:https');
    const key = join(f.dir, 'tls-key.pem');
    const cert = join(f.dir, 'tls-cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=localhost',
        '-days',
        '1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const a = await buildApp({
      health,
      experiments: f.store,
      users: f.users,
      audit: f.audit,
      http: { ...HTTP, tls: { cert_file: cert, key_file: key } },
      now: () => clock,
    });
    try {
      await a.listen({ port: 0, host: '127.0.0.1' });
      const port = (a.server.address() as { port: number }).port;
      const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
        const rq = request(
          {
            host: '127.0.0.1',
            port,
            path: '/login',
            ca: readFileSync(cert),
            servername: 'localhost',
            checkServerIdentity: () => undefined,
          },
          resolve,
        );
        rq.on('error', reject);
        rq.end();
      });
      res.resume();
      expect(res.statusCode).toBe(200);
      expect(String(res.headers['set-cookie'])).toMatch(/octopus_presession=[^;]+;.*; Secure/);
      expect(res.headers['strict-transport-security']).toMatch(/max-age=/);
      const bad = buildApp({ health, http: { tls: { cert_file: join(f.dir, 'missing.pem'), key_file: key } } });
      await expect(bad).rejects.toThrow(/http\.tls\.cert_file: cannot read ".*missing\.pem": ENOENT/);
    } finally {
      await a.close();
    }
  });

  it('X-Forwarded-For names the client only behind a trusted proxy: an attacker cannot dodge the address lockout with it', async () => {
    const a = await buildApp({
      health,
      experiments: f.store,
      users: f.users,
      audit: f.audit,
      http: HTTP,
      now: () => clock,
    });
    try {
      clock += 3_600_000;
      const ip = newAddress();
      for (let i = 0; i < 8; i++) {
        const fm = await openForm(a, '/login');
        await a.inject({
          method: 'POST',
          url: '/login',
          remoteAddress: ip,
          headers: {
            cookie: fm.cookie,
            'content-type': 'application/x-www-form-urlencoded',
            'x-forwarded-for': `198.51.100.${i}`,
          },
          payload: form({ _csrf: fm.csrf, username: `xff-${i}`, password: 'nope-nope' }),
        });
      }
      const fm = await openForm(a, '/login');
      const r = await a.inject({
        method: 'POST',
        url: '/login',
        remoteAddress: ip,
        headers: {
          cookie: fm.cookie,
          'content-type': 'application/x-www-form-urlencoded',
          'x-forwarded-for': '198.51.100.200',
        },
        payload: form({ _csrf: fm.csrf, username: 'viewer-user', password: 'viewer-password' }),
      });
      expect(r.statusCode).toBe(429);
    } finally {
      await a.close();
    }
  });
});

describe('accounts: disable and delete revoke access', () => {
  it('admin page: delete (after a confirmation) revokes sessions and API tokens at once; disable/enable via the API', async () => {
    clock += 3_600_000;
    await f.users.addUser('dora', 'researcher', 'dora-password');
    const api = f.users.createToken('dora', 'laptop');
    const dora = await webSignIn(app, 'dora', 'dora-password');
    const admin = await webSignIn(app, 'admin-user', 'admin-password');
    const h = { authorization: `Bearer ${f.tokens.admin}` };

    const dis = await app.inject({ method: 'POST', url: '/api/admin/users/dora/disable', headers: h });
    expect(dis.statusCode, dis.body).toBe(200);
    expect(dis.json().revoked_tokens).toHaveLength(2);
    expect((await app.inject({ url: '/api/me', headers: { cookie: dora.cookie } })).statusCode).toBe(401);
    expect((await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${api.token}` } })).statusCode).toBe(
      401,
    );
    const refused = await signInForm({ username: 'dora', password: 'dora-password' }, newAddress());
    expect(refused.body).toMatch(/disabled/);
    expect(sessionCookie(refused)).toBeUndefined();
    expect((await app.inject({ method: 'POST', url: '/api/admin/users/dora/enable', headers: h })).statusCode).toBe(
      200,
    );
    const back = await webSignIn(app, 'dora', 'dora-password');
    expect((await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${api.token}` } })).statusCode).toBe(
      401,
    );

    const page = await app.inject({ url: '/admin', headers: { cookie: admin.cookie } });
    expect(page.body).toContain('Delete dora');
    const post = (payload: Record<string, string>) =>
      app.inject({
        method: 'POST',
        url: '/admin/users/dora/delete',
        headers: { cookie: admin.cookie, 'content-type': 'application/x-www-form-urlencoded' },
        payload: form(payload),
      });
    const ask = await post({ _csrf: admin.csrf });
    expect(ask.body).toMatch(/Yes, delete dora/);
    expect(f.users.users().some((u) => u.name === 'dora')).toBe(true);
    expect((await post({ confirm: 'yes' })).statusCode).toBe(403);
    const del = await post({ _csrf: admin.csrf, confirm: 'yes' });
    expect(del.statusCode).toBe(200);
    expect(del.body).toMatch(/dora deleted; 1 token/);
    expect((await app.inject({ url: '/api/me', headers: { cookie: back.cookie } })).statusCode).toBe(401);
    const gone = await signInForm({ username: 'dora', password: 'dora-password' }, newAddress());
    expect(gone.body).toContain('Wrong user name or password.');
    expect(
      f.audit
        .read()
        .filter((e) => e.what === 'dora')
        .map((e) => e.action),
    ).toEqual(expect.arrayContaining(['user_disable', 'user_enable', 'user_delete']));
    const last = await app.inject({ method: 'DELETE', url: '/api/admin/users/admin-user', headers: h });
    expect(last.statusCode).toBe(409);
    expect(last.json().error).toMatch(/last active admin/);
  });

  it('only admins may disable, enable or delete users (API and page); anonymous callers learn nothing', async () => {
    await f.users.addUser('kept', 'viewer');
    for (const role of ['viewer', 'researcher', 'operator'] as const) {
      for (const [method, url] of [
        ['POST', '/api/admin/users/kept/disable'],
        ['POST', '/api/admin/users/kept/enable'],
        ['DELETE', '/api/admin/users/kept'],
      ] as const) {
        const r = await app.inject({ method, url, headers: { authorization: `Bearer ${f.tokens[role]}` } });
        expect(r.statusCode, `${role} ${method} ${url}`).toBe(403);
        expect((await app.inject({ method, url })).statusCode).toBe(401);
      }
    }
    clock += 3_600_000;
    const op = await webSignIn(app, 'operator-user', 'operator-password');
    const page = await app.inject({
      method: 'POST',
      url: '/admin/users/kept/delete',
      headers: { cookie: op.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ _csrf: op.csrf, confirm: 'yes' }),
    });
    expect(page.statusCode).toBe(403);
    expect(f.users.users().find((u) => u.name === 'kept')).toMatchObject({ role: 'viewer' });
    expect(f.users.users().find((u) => u.name === 'kept')?.disabled).toBeUndefined();
  });

  it('CLI: octopus user disable | enable | delete', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { UserStore } = await import('../../src/auth/users.ts');
    const { AuditLog } = await import('../../src/auth/audit.ts');
    const dir = mkdtempSync(join(tmpdir(), 'octopus-cli-users-'));
    try {
      const env = { OCTOPUS_DATA_DIR: dir, OCTOPUS_ADMIN_TOKEN: '' };
      const users = UserStore.forDataDir(dir, {});
      await users.addUser('eve', 'viewer');
      const t = users.createToken('eve');
      const dis = runCli(['user', 'disable', 'eve'], { env });
      expect(dis.code, dis.stderr).toBe(0);
      expect(dis.stdout).toMatch(/disabled user eve; revoked 1 token/);
      expect(users.authenticate(t.token)).toBeUndefined();
      expect(runCli(['user', 'enable', 'eve'], { env }).stdout).toMatch(/enabled user eve/);
      expect(runCli(['user', 'delete', 'eve'], { env }).stdout).toMatch(/deleted user eve/);
      expect(users.users()).toEqual([]);
      const none = runCli(['user', 'delete', 'eve'], { env });
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/no user "eve"/);
      expect(
        AuditLog.forDataDir(dir)
          .read()
          .map((e) => e.action),
      ).toEqual(['user_disable', 'user_enable', 'user_delete']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('limits', () => {
  it('pending registrations are capped: beyond the cap registration is refused with a clear message', async () => {
    clock += 3_600_000;
    let pending = f.users.pendingCount();
    let n = 0;
    while (pending < HTTP.max_pending_registrations) {
      expect(
        (await postForm(app, '/register', { username: `cap-${++n}`, password: 'longenough', confirm: 'longenough' }))
          .statusCode,
      ).toBe(201);
      pending = f.users.pendingCount();
    }
    const over = await postForm(app, '/register', {
      username: 'one-too-many',
      password: 'longenough',
      confirm: 'longenough',
    });
    expect(over.statusCode).toBe(503);
    expect(over.body).toMatch(
      /Registration is closed for now: 3 account requests are waiting for an admin’s approval \(the limit is 3\)/,
    );
    expect(f.users.users().some((u) => u.name === 'one-too-many')).toBe(false);
  });

  it('registrations from one address are throttled', async () => {
    const a = await buildApp({
      health,
      experiments: f.store,
      users: f.users,
      audit: f.audit,
      http: { ...HTTP, max_pending_registrations: 100, sign_in: { ...HTTP.sign_in, max_registrations_per_address: 2 } },
      now: () => clock,
    });
    try {
      const ip = newAddress();
      const reg = async (name: string) => {
        const fm = await openForm(a, '/register');
        return a.inject({
          method: 'POST',
          url: '/register',
          remoteAddress: ip,
          headers: { cookie: fm.cookie, 'content-type': 'application/x-www-form-urlencoded' },
          payload: form({ _csrf: fm.csrf, username: name, password: 'longenough', confirm: 'longenough' }),
        });
      };
      expect((await reg('rt-1')).statusCode).toBe(201);
      expect((await reg('rt-2')).statusCode).toBe(201);
      const third = await reg('rt-3');
      expect(third.statusCode).toBe(429);
      expect(third.body).toMatch(/Too many account requests from your address: try again in 60 s/);
      expect(third.headers['retry-after']).toBe('60');
    } finally {
      await a.close();
    }
  });

  it('bundles per user: one at a time, and bytes kept under the quota (429 with the reason); deleting one frees the quota', async () => {
    let total = 0;
    const small = await buildApp({
      health,
      experiments: f.store,
      users: f.users,
      audit: f.audit,
      http: { ...HTTP, bundles: { max_running_per_user: 1, max_bytes_per_user: 1 } },
      now: () => clock,
      bundleThrottleMs: 40,
    });
    const h = { authorization: `Bearer ${f.tokens.researcher}` };
    try {
      const over = await small.inject({ method: 'POST', url: '/api/experiments/quota-exp/bundles', headers: h });
      expect(over.statusCode).toBe(429);
      expect(over.json().error).toMatch(/over the limit of 1 bytes per user/);
      total = Number(/this bundle \((\d+) bytes\)/.exec(over.json().error)![1]);
      expect(total).toBeGreaterThan(1000);
    } finally {
      await small.close();
    }
    const roomy = await buildApp({
      health,
      experiments: f.store,
      users: f.users,
      audit: f.audit,
      http: { ...HTTP, bundles: { max_running_per_user: 1, max_bytes_per_user: total + 10 } },
      now: () => clock,
      bundleThrottleMs: 40,
    });
    try {
      const first = await roomy.inject({ method: 'POST', url: '/api/experiments/quota-exp/bundles', headers: h });
      expect(first.statusCode, first.body).toBe(202);
      const busy = await roomy.inject({ method: 'POST', url: '/api/experiments/quota-exp/bundles', headers: h });
      expect(busy.statusCode).toBe(429);
      expect(busy.headers['retry-after']).toBeDefined();
      expect(busy.json().error).toMatch(/1 of your bundles are being prepared, the most allowed at once/);
      const job = first.json().job as string;
      await expect
        .poll(async () => (await roomy.inject({ url: `/api/bundles/${job}`, headers: h })).json().state, {
          timeout: 30_000,
          interval: 100,
        })
        .toBe('done');
      const full = await roomy.inject({ method: 'POST', url: '/api/experiments/quota-exp/bundles', headers: h });
      expect(full.statusCode).toBe(429);
      expect(full.json().error).toMatch(/over the limit/);
      expect((await roomy.inject({ method: 'DELETE', url: `/api/bundles/${job}`, headers: h })).statusCode).toBe(200);
      expect(
        (await roomy.inject({ method: 'POST', url: '/api/experiments/quota-exp/bundles', headers: h })).statusCode,
      ).toBe(202);
      expect(f.audit.read({ action: 'bundle_refused' }).length).toBeGreaterThanOrEqual(3);
    } finally {
      await roomy.close();
    }
  }, 60_000);
});
