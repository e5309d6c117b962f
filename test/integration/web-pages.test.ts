import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { LiveValues } from '../../src/web/live.ts';
import { BundleJobs } from '../../src/api/routes/bundles.ts';
import { experimentBody, fixture, health, writeRunFile, type Fixture } from './api-fixtures.ts';
import type { FastifyInstance } from 'fastify';
import { form, postForm, setCookies, webSignIn } from '../support/web.ts';

let f: Fixture;
let app: FastifyInstance;
const live = new LiveValues();

const signIn = (user: string, password: string) => webSignIn(app, user, password);
const post = (url: string, fields: Record<string, string>) => postForm(app, url, fields);

beforeAll(async () => {
  f = await fixture();
  await f.app.close();
  app = await buildApp({
    health,
    experiments: f.store,
    users: f.users,
    audit: f.audit,
    live,
    runFile: (id, run) => join(f.store.get(id).dir, run.file),
  });
  await f.users.setPassword('operator-user', 'operator-pass');
  await f.users.setPassword('viewer-user', 'viewer-pass');
  await f.users.setPassword('admin-user', 'admin-pass');
  await f.users.setPassword('researcher-user', 'researcher-pass');
  await f.store.create(experimentBody('drought-2025', ['c1', 'c2'], { description: 'Wheat under drought' }), 'test');
  const run = f.store.startRun('drought-2025', 'test');
  writeRunFile(join(f.store.get('drought-2025').dir, run.file), run, 600);
  f.store.stopRun('drought-2025', run.id, 'test');
});
afterAll(async () => {
  await app?.close();
  await f?.close();
});

describe('web page', () => {
  it('redirects to sign-in, rejects bad sign-ins next to the field, signs in with a password or a token', async () => {
    const anon = await app.inject({ url: '/experiments' });
    expect(anon.statusCode).toBe(303);
    expect(anon.headers.location).toBe('/login?next=%2Fexperiments');
    const empty = await post('/login', { username: '', password: '' });
    expect(empty.statusCode).toBe(400);
    expect(empty.body).toMatch(/id="f-username-error"[^>]*>Enter your user name/);
    expect(empty.body).toMatch(/aria-describedby="f-username-error"/);
    const wrong = await post('/login', { username: 'viewer-user', password: 'nope' });
    expect(wrong.body).toMatch(/Wrong user name or password/);
    const s = await signIn('viewer-user', 'viewer-pass');
    expect(s.cookie).toMatch(/^octopus_session=oct_/);
    const tok = await post('/login', { token: f.tokens.researcher });
    expect(tok.statusCode).toBe(303);
    expect(setCookies(tok).some((c) => c.startsWith('octopus_session=oct_'))).toBe(true);
    expect(String(tok.headers['set-cookie'])).toMatch(/octopus_session=[^,]*HttpOnly; SameSite=Strict/);
    const badTok = await post('/login', { token: 'oct_nope' });
    expect(badTok.body).toMatch(/id="f-token-error"/);
  });

  it('searches, validates dates, shows an experiment; the session cookie works for the API (GET only without CSRF)', async () => {
    const s = await signIn('viewer-user', 'viewer-pass');
    const hit = await app.inject({ url: '/experiments?text=wheat', headers: { cookie: s.cookie } });
    expect(hit.body).toContain('href="/experiments/drought-2025"');
    const miss = await app.inject({ url: '/experiments?text=rice', headers: { cookie: s.cookie } });
    expect(miss.body).toContain('0 experiments');
    const bad = await app.inject({ url: '/experiments?from=yesterday', headers: { cookie: s.cookie } });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/id="f-from-error"/);
    const pg = await app.inject({ url: '/experiments/drought-2025', headers: { cookie: s.cookie } });
    expect(pg.body).toContain('degree_Celsius');
    expect(pg.body).toContain('id="citation"');
    expect(pg.body).not.toContain('id="start-run"');
    const api = await app.inject({
      url: '/api/experiments/drought-2025/runs/r001/preview?var=co2&points=10',
      headers: { cookie: s.cookie },
    });
    expect(api.statusCode).toBe(200);
    const post = await app.inject({
      method: 'POST',
      url: '/api/experiments/drought-2025/runs',
      headers: { cookie: s.cookie },
    });
    expect(post.statusCode).toBe(401);
  });

  it('a viewer cannot start a run from the page; an operator can, and bad input is refused without saving', async () => {
    const v = await signIn('viewer-user', 'viewer-pass');
    const denied = await app.inject({
      method: 'POST',
      url: '/experiments/drought-2025/runs',
      headers: { cookie: v.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ _csrf: v.csrf }),
    });
    expect(denied.statusCode).toBe(403);
    expect(f.store.get('drought-2025').runs).toHaveLength(1);
    const op = await signIn('operator-user', 'operator-pass');
    const noCsrf = await app.inject({
      method: 'POST',
      url: '/experiments/drought-2025/runs',
      headers: { cookie: op.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ note: 'x' }),
    });
    expect(noCsrf.statusCode).toBe(403);
    const started = await app.inject({
      method: 'POST',
      url: '/experiments/drought-2025/runs',
      headers: { cookie: op.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ _csrf: op.csrf, note: 'web' }),
    });
    expect(started.statusCode).toBe(303);
    expect(f.store.get('drought-2025').runs.at(-1)).toMatchObject({
      status: 'running',
      started_by: 'web:operator-user',
    });
    const stopped = await app.inject({
      method: 'POST',
      url: '/experiments/drought-2025/runs/r002/stop',
      headers: { cookie: op.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ _csrf: op.csrf }),
    });
    expect(stopped.statusCode).toBe(303);

    const bad = await app.inject({
      method: 'POST',
      url: '/experiments/new',
      headers: { cookie: op.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({
        _csrf: op.csrf,
        id: 'Bad Id',
        title: 'ok title',
        pi_name: 'Ada',
        chambers: 'c1, zz',
        sampling_period_s: 'abc',
      }),
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/id="f-sampling_period_s-error"/);
    const bad2 = await app.inject({
      method: 'POST',
      url: '/experiments/new',
      headers: { cookie: op.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ _csrf: op.csrf, id: 'Bad Id', title: 'x', pi_name: '', chambers: '' }),
    });
    expect(bad2.statusCode).toBe(400);
    expect(bad2.body).toMatch(/id="f-id-error"[^>]*>[^<]*slug/);
    expect(bad2.body).toMatch(/id="f-title-error"/);
    expect(bad2.body).toMatch(/id="f-chambers-error"/);
    expect(bad2.body).toContain('value="Bad Id"');
    expect(f.store.ids()).toEqual(['drought-2025']);
    const ok = await app.inject({
      method: 'POST',
      url: '/experiments/new',
      headers: { cookie: op.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ _csrf: op.csrf, id: 'light-2026', title: 'Light gradient', pi_name: 'Ada', chambers: 'c3' }),
    });
    expect(ok.statusCode, ok.body).toBe(303);
    expect(f.store.ids()).toContain('light-2026');
  });

  it('registration → admin approval → sign-in; admin revokes tokens and reads the audit log', async () => {
    const weak = await post('/register', { username: 'bad name', password: 'short', confirm: 'short' });
    expect(weak.statusCode).toBe(400);
    expect(weak.body).toMatch(/id="f-password-error"/);
    const badName = await post('/register', { username: 'bad name', password: 'longenough', confirm: 'longenough' });
    expect(badName.body).toMatch(/id="f-username-error"/);
    expect(f.users.users().some((u) => u.name === 'bad name')).toBe(false);
    const reg = await post('/register', { username: 'newbie', password: 'longenough', confirm: 'longenough' });
    expect(reg.statusCode).toBe(201);
    const early = await post('/login', { username: 'newbie', password: 'longenough' });
    expect(early.body).toMatch(/waiting for an admin/);
    const a = await signIn('admin-user', 'admin-pass');
    const adminPage = await app.inject({ url: '/admin', headers: { cookie: a.cookie } });
    expect(adminPage.body).toContain('Approve newbie');
    const badRole = await app.inject({
      method: 'POST',
      url: '/admin/users/newbie/approve',
      headers: { cookie: a.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ _csrf: a.csrf, role: 'king' }),
    });
    expect(badRole.statusCode).toBe(400);
    expect(badRole.body).toMatch(/id="approve-newbie-error"/);
    const appr = await app.inject({
      method: 'POST',
      url: '/admin/users/newbie/approve',
      headers: { cookie: a.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ _csrf: a.csrf, role: 'researcher' }),
    });
    expect(appr.statusCode).toBe(200);
    const n = await signIn('newbie', 'longenough');
    const me = await app.inject({ url: '/api/me', headers: { cookie: n.cookie } });
    expect(me.json()).toMatchObject({ user: 'newbie', role: 'researcher' });
    const id = f.users.tokens().find((t) => t.user === 'newbie' && !t.revoked)!.id;
    const rev = await app.inject({
      method: 'POST',
      url: `/admin/tokens/${id}/revoke`,
      headers: { cookie: a.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ _csrf: a.csrf }),
    });
    expect(rev.statusCode).toBe(200);
    expect((await app.inject({ url: '/api/me', headers: { cookie: n.cookie } })).statusCode).toBe(401);
    const audit = await app.inject({ url: '/admin?action=run_start', headers: { cookie: a.cookie } });
    expect(audit.body).toContain('drought-2025/r002');
  });

  it('prepares a zip in the background, reports progress, serves it with Range, refuses others', async () => {
    const r = await signIn('researcher-user', 'researcher-pass');
    const noCsrf = await app.inject({
      method: 'POST',
      url: '/api/experiments/drought-2025/bundles',
      headers: { cookie: r.cookie },
    });
    expect(noCsrf.statusCode).toBe(401);
    const start = await app.inject({
      method: 'POST',
      url: '/api/experiments/drought-2025/bundles',
      headers: { cookie: r.cookie, 'x-csrf-token': r.csrf },
    });
    expect(start.statusCode, start.body).toBe(202);
    const job = start.json().job as string;
    let st: { state: string; progress: number; size: number } = start.json();
    for (let i = 0; i < 100 && st.state === 'running'; i++) {
      await new Promise((res) => setTimeout(res, 20));
      st = (await app.inject({ url: `/api/bundles/${job}`, headers: { cookie: r.cookie } })).json();
    }
    expect(st).toMatchObject({ state: 'done', progress: 100 });
    const whole = await app.inject({ url: `/api/bundles/${job}/download`, headers: { cookie: r.cookie } });
    expect(whole.rawPayload.subarray(0, 2).toString()).toBe('PK');
    expect(whole.rawPayload.length).toBe(st.size);
    const part = await app.inject({
      url: `/api/bundles/${job}/download`,
      headers: { cookie: r.cookie, range: 'bytes=10-19' },
    });
    expect(part.statusCode).toBe(206);
    expect(part.rawPayload).toEqual(whole.rawPayload.subarray(10, 20));
    const other = await app.inject({
      url: `/api/bundles/${job}`,
      headers: { authorization: `Bearer ${f.tokens.operator}` },
    });
    expect(other.statusCode).toBe(404);
    expect(existsSync(join(f.dir, 'bundles', `${job}.zip`))).toBe(true);
    expect(f.audit.read({ action: 'download' }).some((e) => e.what === 'drought-2025/archive.zip')).toBe(true);
  });

  it('streams live values over server-sent events', async () => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    const ctl = new AbortController();
    const res = await fetch(`http://127.0.0.1:${port}/api/live`, {
      headers: { authorization: `Bearer ${f.tokens.viewer}` },
      signal: ctl.signal,
    });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    live.accept({
      v: 1,
      gw: 'gw1',
      seq: 1,
      chamber: 'c1',
      samples: [{ tag: 'air_temperature', ts: Date.now(), value: 21.5, q: 'good' }],
    });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('air_temperature')) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toMatch(/event: chamber\ndata: .*"value":21.5/);
    ctl.abort();
  });

  it('expires finished bundles after the TTL (file and job)', async () => {
    const jobs = new BundleJobs(join(f.dir, 'bundles-ttl'), f.store, { ttlMs: 60_000, audit: f.audit });
    const j = jobs.start('drought-2025', 'api:test');
    for (let i = 0; i < 100 && jobs.get(j.job)!.state === 'running'; i++) await new Promise((r) => setTimeout(r, 20));
    expect(jobs.get(j.job)!.state).toBe('done');
    jobs.cleanup(Date.now() + 30_000);
    expect(existsSync(jobs.file(j.job))).toBe(true);
    jobs.cleanup(Date.now() + 61_000);
    expect(existsSync(jobs.file(j.job))).toBe(false);
    expect(jobs.get(j.job)).toBeUndefined();
    jobs.close();
  });

  it('live values keep the newest sample per tag and the chamber status', () => {
    const lv = new LiveValues();
    const seen: string[] = [];
    lv.on('update', (c) => seen.push(c.chamber));
    lv.accept({ v: 1, gw: 'g', seq: 1, chamber: 'c2', samples: [{ tag: 'co2', ts: 2000, value: 500, q: 'good' }] });
    lv.accept({ v: 1, gw: 'g', seq: 2, chamber: 'c2', samples: [{ tag: 'co2', ts: 1000, value: 400, q: 'good' }] });
    lv.status('c2', { state: 'offline', ts: 3000, reason: 'PLC unreachable' });
    expect(lv.snapshot()[0]).toMatchObject({
      chamber: 'c2',
      tags: { co2: { value: 500, ts: 2000 } },
      status: { state: 'offline' },
    });
    expect(seen).toEqual(['c2', 'c2', 'c2']);
  });

  it('subset form: bad input next to the field; good input → NetCDF subset that netCDF4 reads (or CSV)', async () => {
    const r = await signIn('researcher-user', 'researcher-pass');
    const bad = await app.inject({
      url: '/experiments/drought-2025/subset?run=r001&vars=nope&from=yesterday&format=nc',
      headers: { cookie: r.cookie },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/id="f-vars-error"[^>]*>Unknown variable\(s\): nope/);
    expect(bad.body).toMatch(/id="f-from-error"/);
    const ok = await app.inject({
      url: '/experiments/drought-2025/subset?run=r001&vars=co2&from=2025-03-01T00:01:00Z&to=2025-03-01T00:01:59Z&format=nc',
      headers: { cookie: r.cookie },
    });
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe(
      '/api/experiments/drought-2025/runs/r001/subset.nc?vars=co2&from=2025-03-01T00%3A01%3A00Z&to=2025-03-01T00%3A01%3A59Z',
    );
    const nc = await app.inject({ url: String(ok.headers.location), headers: { cookie: r.cookie } });
    expect(nc.statusCode, nc.body).toBe(200);
    const file = join(f.dir, 'subset.nc');
    writeFileSync(file, nc.rawPayload);
    const py = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        [
          'import sys, netCDF4',
          'd = netCDF4.Dataset(sys.argv[1])',
          'print(len(d.dimensions["time"]), sorted(d.variables), d.variables["co2"][0, 1], d.variables["co2"].units, d.time_coverage_start)',
        ].join('\n'),
        file,
      ],
      { encoding: 'utf8' },
    );
    expect(py.status, py.stderr).toBe(0);
    expect(py.stdout.trim()).toBe("60 ['co2', 'co2_qc', 'station_name', 'time'] 470.0 umol mol-1 2025-03-01T00:01:00Z");
    const csv = await app.inject({
      url: '/experiments/drought-2025/subset?run=r001&vars=co2&format=csv',
      headers: { cookie: r.cookie },
    });
    expect(csv.headers.location).toMatch(/data\.csv\?vars=co2$/);
    await expect
      .poll(() => f.audit.read({ action: 'download' }).some((e) => e.what === 'drought-2025/r001/subset.nc'))
      .toBe(true);
  });
});
