import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { co2, experimentBody, fixture, T0, temp, writeRunFile, type Fixture } from './api-fixtures.ts';
import { eventually } from '../support/ports.ts';

let f: Fixture;
const auth = (role: keyof Fixture['tokens'] = 'admin') => ({ authorization: `Bearer ${f.tokens[role]}` });
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

beforeAll(async () => {
  f = await fixture();
});
afterAll(async () => {
  await f?.close();
});

describe('experiments catalogue', () => {
  it('creates an experiment (201), refuses a duplicate (409) and bad input (400 with field and value)', async () => {
    const r = await f.app.inject({
      method: 'POST',
      url: '/api/experiments',
      headers: auth('operator'),
      payload: experimentBody('drought-2025', ['c1', 'c2'], {
        keywords: ['drought', 'wheat'],
        description: 'Wheat under drought',
      }),
    });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.headers.location).toBe('/api/experiments/drought-2025');
    expect(r.json()).toMatchObject({ id: 'drought-2025', chambers: ['c1', 'c2'], runs: [] });

    const dup = await f.app.inject({
      method: 'POST',
      url: '/api/experiments',
      headers: auth('operator'),
      payload: experimentBody('drought-2025'),
    });
    expect(dup.statusCode).toBe(409);

    const unknownChamber = await f.app.inject({
      method: 'POST',
      url: '/api/experiments',
      headers: auth('operator'),
      payload: experimentBody('warm-2025', ['c1', 'zz']),
    });
    expect(unknownChamber.statusCode).toBe(400);
    expect(unknownChamber.json()).toMatchObject({ field: 'chambers[1]', value: 'zz' });

    const badId = await f.app.inject({
      method: 'POST',
      url: '/api/experiments',
      headers: auth('operator'),
      payload: experimentBody('Bad Id'),
    });
    expect(badId.statusCode).toBe(400);
    expect(badId.json()).toMatchObject({ field: 'id', value: 'Bad Id' });
    expect(badId.json().error).toMatch(/slug/);

    const noChambers = await f.app.inject({
      method: 'POST',
      url: '/api/experiments',
      headers: auth('operator'),
      payload: { id: 'x-y-z', title: 'Nothing', principal_investigator: { name: 'A' }, chambers: [] },
    });
    expect(noChambers.statusCode).toBe(400);
    expect(noChambers.json()).toMatchObject({ field: 'chambers', value: [] });

    const second = await f.app.inject({
      method: 'POST',
      url: '/api/experiments',
      headers: auth('operator'),
      payload: experimentBody('light-2024', ['c3'], { description: 'Light gradient', keywords: ['light'] }),
    });
    expect(second.statusCode).toBe(201);
  });

  it('starts (201) and stops runs; a second start or stop is 409, an unknown run 404', async () => {
    const start = await f.app.inject({
      method: 'POST',
      url: '/api/experiments/drought-2025/runs',
      headers: auth('operator'),
      payload: { note: 'first' },
    });
    expect(start.statusCode, start.body).toBe(201);
    expect(start.json()).toMatchObject({
      run: 'r001',
      status: 'running',
      experiment: 'drought-2025',
      note: 'first',
      started_by: 'api:operator-user',
    });

    const again = await f.app.inject({
      method: 'POST',
      url: '/api/experiments/drought-2025/runs',
      headers: auth('operator'),
    });
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toMatch(/already has run r001/);

    const stop = await f.app.inject({
      method: 'POST',
      url: '/api/experiments/drought-2025/runs/r001/stop',
      headers: auth('operator'),
    });
    expect(stop.statusCode).toBe(200);
    expect(stop.json()).toMatchObject({ run: 'r001', status: 'stopped', stopped_by: 'api:operator-user' });
    const stopAgain = await f.app.inject({
      method: 'POST',
      url: '/api/experiments/drought-2025/runs/r001/stop',
      headers: auth('operator'),
    });
    expect(stopAgain.statusCode).toBe(409);
    const unknown = await f.app.inject({
      method: 'POST',
      url: '/api/experiments/drought-2025/runs/r009/stop',
      headers: auth('operator'),
    });
    expect(unknown.statusCode).toBe(404);
    const badRun = await f.app.inject({
      method: 'POST',
      url: '/api/experiments/drought-2025/runs/run1/stop',
      headers: auth('operator'),
    });
    expect(badRun.statusCode).toBe(400);
    expect(badRun.json()).toMatchObject({ field: 'run', value: 'run1' });

    const second = await f.app.inject({
      method: 'POST',
      url: '/api/experiments/drought-2025/runs',
      headers: auth('operator'),
    });
    expect(second.json().run).toBe('r002');

    const actions = f.audit
      .read()
      .filter((e) => e.action.startsWith('run_'))
      .map((e) => `${e.action} ${e.what} ${e.who}`);
    expect(actions).toEqual([
      'run_start drought-2025/r001 api:operator-user',
      'run_stop drought-2025/r001 api:operator-user',
      'run_start drought-2025/r002 api:operator-user',
    ]);
  });

  it('lists and searches by text, chamber, variable and date range', async () => {
    const ids = async (qs: string) => {
      const r = await f.app.inject({ url: `/api/experiments${qs}`, headers: auth('viewer') });
      expect(r.statusCode, r.body).toBe(200);
      return (r.json().experiments as Array<{ id: string }>).map((e) => e.id);
    };
    expect(await ids('')).toEqual(['drought-2025', 'light-2024']);
    expect(await ids('?text=wheat%20DROUGHT')).toEqual(['drought-2025']);
    expect(await ids('?text=gradient')).toEqual(['light-2024']);
    expect(await ids('?chamber=c3')).toEqual(['light-2024']);
    expect(await ids('?chamber=c2')).toEqual(['drought-2025']);
    expect(await ids('?variable=co2')).toEqual(['drought-2025', 'light-2024']);
    expect(await ids('?pi=lovelace')).toEqual(['drought-2025', 'light-2024']);
    // Only drought-2025 has runs (started now).
    expect(await ids(`?from=${new Date(Date.now() - 3600_000).toISOString()}`)).toEqual(['drought-2025']);
    expect(await ids('?from=2001-01-01&to=2001-12-31')).toEqual([]);

    const bad = await f.app.inject({ url: '/api/experiments?from=yesterday', headers: auth('viewer') });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ field: 'from', value: 'yesterday' });
    const unknownParam = await f.app.inject({ url: '/api/experiments?colour=red', headers: auth('viewer') });
    expect(unknownParam.statusCode).toBe(400);
    const reversed = await f.app.inject({
      url: '/api/experiments?from=2025-02-01&to=2025-01-01',
      headers: auth('viewer'),
    });
    expect(reversed.statusCode).toBe(400);
    expect(reversed.json()).toMatchObject({ field: 'to', value: '2025-01-01' });
  });

  it('gets one experiment with its variables and runs; unknown → 404, malformed id → 400', async () => {
    const r = await f.app.inject({ url: '/api/experiments/drought-2025', headers: auth('viewer') });
    expect(r.statusCode).toBe(200);
    const e = r.json();
    expect(e.title).toBe('Experiment drought-2025');
    expect(e.runs.map((x: { id: string }) => x.id)).toEqual(['r001', 'r002']);
    expect(e.variables_archived.map((v: { name: string }) => v.name)).toEqual(['air_temperature', 'co2', 'lights_on']);
    expect((await f.app.inject({ url: '/api/experiments/nope-nope', headers: auth('viewer') })).statusCode).toBe(404);
    const bad = await f.app.inject({ url: '/api/experiments/NOPE', headers: auth('viewer') });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ field: 'id', value: 'NOPE' });
  });
});

describe('downloads', () => {
  const N = 100;
  let ncPath: string;
  let nc: Buffer;

  beforeAll(() => {
    const e = f.store.get('drought-2025');
    const run = e.runs[0]!;
    ncPath = join(e.dir, run.file);
    mkdirSync(join(ncPath, '..'), { recursive: true });
    writeRunFile(ncPath, run, N);
    nc = readFileSync(ncPath);
  });

  it('serves data.nc whole, with a Range (206), a suffix range, 416 and 304', async () => {
    const url = '/api/experiments/drought-2025/runs/r001/data.nc';
    const whole = await f.app.inject({ url, headers: auth('researcher') });
    expect(whole.statusCode).toBe(200);
    expect(whole.rawPayload.equals(nc)).toBe(true);
    expect(whole.headers['accept-ranges']).toBe('bytes');
    expect(whole.headers['content-type']).toBe('application/x-netcdf');
    expect(whole.headers['content-disposition']).toBe('attachment; filename="drought-2025_r001.nc"');
    expect(whole.headers['last-modified']).toBeTruthy();
    const etag = whole.headers.etag as string;
    expect(etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);

    const head = await f.app.inject({ method: 'HEAD', url, headers: auth('researcher') });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe(String(nc.length));
    expect(head.headers.etag).toBe(etag);

    const part = await f.app.inject({ url, headers: { ...auth('researcher'), range: 'bytes=100-1099' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100-1099/${nc.length}`);
    expect(part.headers['content-length']).toBe('1000');
    expect(part.rawPayload.equals(nc.subarray(100, 1100))).toBe(true);

    const tail = await f.app.inject({ url, headers: { ...auth('researcher'), range: 'bytes=-500' } });
    expect(tail.statusCode).toBe(206);
    expect(tail.rawPayload.equals(nc.subarray(nc.length - 500))).toBe(true);

    const open = await f.app.inject({ url, headers: { ...auth('researcher'), range: `bytes=${nc.length - 10}-` } });
    expect(open.rawPayload.equals(nc.subarray(nc.length - 10))).toBe(true);

    const beyond = await f.app.inject({ url, headers: { ...auth('researcher'), range: `bytes=${nc.length}-` } });
    expect(beyond.statusCode).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${nc.length}`);

    const stale = await f.app.inject({
      url,
      headers: { ...auth('researcher'), range: 'bytes=0-9', 'if-range': '"other"' },
    });
    expect(stale.statusCode).toBe(200);
    const cached = await f.app.inject({ url, headers: { ...auth('researcher'), 'if-none-match': etag } });
    expect(cached.statusCode).toBe(304);

    // the audit entry is written when the file stream closes, just after the response
    const downloads = await eventually(() => {
      const all = f.audit.read({ action: 'download' });
      return all.some((d) => d.bytes === 10) && all.some((d) => d.bytes === nc.length) ? all : undefined;
    }, 'download audit entries');
    expect(downloads.find((d) => d.bytes === 10)).toMatchObject({
      who: 'api:researcher-user',
      what: 'drought-2025/r001/data.nc',
      bytes: 10,
      detail: { range: `bytes=${nc.length - 10}-${nc.length - 1}` },
    });
    expect(downloads.some((d) => d.bytes === nc.length && !d.detail?.range)).toBe(true);
  });

  it('serves an open run from where the resolver says (working folder), 404 when there is no file', async () => {
    const e = f.store.get('drought-2025');
    const run = e.runs[1]!;
    expect(
      (await f.app.inject({ url: '/api/experiments/drought-2025/runs/r002/data.nc', headers: auth('researcher') }))
        .statusCode,
    ).toBe(404);
    const work = join(f.dir, 'runs-open', 'x.nc');
    mkdirSync(join(work, '..'), { recursive: true });
    writeRunFile(work, run, 5);
    f.elsewhere.set('drought-2025/r002', work);
    const r = await f.app.inject({
      url: '/api/experiments/drought-2025/runs/r002/data.nc',
      headers: auth('researcher'),
    });
    expect(r.statusCode).toBe(200);
    expect(r.rawPayload.equals(readFileSync(work))).toBe(true);
  });

  it('streams a CSV subset: chosen variables, chamber and time range', async () => {
    const from = iso(T0 + 10_000);
    const to = iso(T0 + 19_000);
    const r = await f.app.inject({
      url: `/api/experiments/drought-2025/runs/r001/data.csv?vars=air_temperature,co2&from=${from}&to=${to}&chamber=c2`,
      headers: auth('researcher'),
    });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(r.headers['content-disposition']).toMatch(/attachment; filename="drought-2025_r001_.*\.csv"/);
    const lines = r.body.trimEnd().split('\n');
    expect(lines[0]).toBe('time,chamber,air_temperature,air_temperature_qc,co2,co2_qc');
    expect(lines).toHaveLength(11);
    for (let k = 10; k < 20; k++) {
      const t = temp(k, 1);
      expect(lines[k - 9]).toBe(
        `${iso(T0 + k * 1000)},c2,${t === null ? '' : String(Number(t.toPrecision(7)))},${t === null ? 3 : 0},${co2(k, 1)},0`,
      );
    }
    const all = await f.app.inject({
      url: '/api/experiments/drought-2025/runs/r001/data.csv?qc=false',
      headers: auth('researcher'),
    });
    const rows = all.body.trimEnd().split('\n');
    expect(rows[0]).toBe('time,chamber,air_temperature,co2,lights_on');
    expect(rows).toHaveLength(1 + N * 2);
    expect(rows[1]).toBe(`${iso(T0)},c1,20,400,0`);

    const last = f.audit.read({ action: 'download' }).filter((d) => d.what.endsWith('data.csv'));
    expect(last[0]).toMatchObject({
      who: 'api:researcher-user',
      bytes: Buffer.byteLength(r.body),
      detail: { vars: ['air_temperature', 'co2'], chambers: ['c2'], from, to, rows: 10, complete: true },
    });

    const unknown = await f.app.inject({
      url: '/api/experiments/drought-2025/runs/r001/data.csv?vars=air_temperature,rain',
      headers: auth('researcher'),
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json()).toMatchObject({ field: 'vars', value: 'air_temperature,rain' });
    expect(unknown.json().error).toMatch(/rain/);
    const badFrom = await f.app.inject({
      url: '/api/experiments/drought-2025/runs/r001/data.csv?from=2025-13-45',
      headers: auth('researcher'),
    });
    expect(badFrom.statusCode).toBe(400);
    expect(badFrom.json()).toMatchObject({ field: 'from', value: '2025-13-45' });
    const badChamber = await f.app.inject({
      url: '/api/experiments/drought-2025/runs/r001/data.csv?chamber=c3',
      headers: auth('researcher'),
    });
    expect(badChamber.statusCode).toBe(400);
    expect(badChamber.json()).toMatchObject({ field: 'chamber', value: 'c3' });
  });

  it('previews a variable decimated to at most `points` buckets with min/max/mean', async () => {
    const r = await f.app.inject({
      url: '/api/experiments/drought-2025/runs/r001/preview?var=co2&points=10',
      headers: auth('viewer'),
    });
    expect(r.statusCode, r.body).toBe(200);
    const p = r.json();
    expect(p).toMatchObject({ var: 'co2', units: 'umol mol-1', records: N, bucket_records: 10 });
    expect(Object.keys(p.chambers)).toEqual(['c1', 'c2']);
    expect(p.chambers.c1).toHaveLength(10);
    expect(p.chambers.c2[3]).toEqual({ t: iso(T0 + 30_000), n: 10, mean: 410 + 34.5, min: 410 + 30, max: 410 + 39 });

    const t = await f.app.inject({
      url: '/api/experiments/drought-2025/runs/r001/preview?var=air_temperature&points=7',
      headers: auth('viewer'),
    });
    const tp = t.json();
    expect(tp.bucket_records).toBe(15);
    expect(tp.chambers.c1).toHaveLength(7);
    // c2 has gaps (fill values, qc 3) every 7th record: they are left out of the bucket.
    const gaps = Array.from({ length: 15 }, (_, k) => k).filter((k) => temp(k, 1) === null).length;
    expect(tp.chambers.c2[0].n).toBe(15 - gaps);
    expect(tp.chambers.c1[0].min).toBe(20);
    expect(tp.chambers.c1[0].max).toBe(20.14);

    const ranged = await f.app.inject({
      url: `/api/experiments/drought-2025/runs/r001/preview?var=co2&from=${iso(T0 + 50_000)}&to=${iso(T0 + 59_000)}`,
      headers: auth('viewer'),
    });
    expect(ranged.json()).toMatchObject({ records: 10, bucket_records: 1 });
    expect(ranged.json().chambers.c1).toHaveLength(10);

    const missing = await f.app.inject({
      url: '/api/experiments/drought-2025/runs/r001/preview',
      headers: auth('viewer'),
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toMatchObject({ field: 'var' });
    const badPoints = await f.app.inject({
      url: '/api/experiments/drought-2025/runs/r001/preview?var=co2&points=1',
      headers: auth('viewer'),
    });
    expect(badPoints.statusCode).toBe(400);
    expect(badPoints.json()).toMatchObject({ field: 'points', value: '1' });
  });

  it('streams the experiment folder as a zip', async () => {
    await f.store.document('drought-2025');
    const r = await f.app.inject({ url: '/api/experiments/drought-2025/archive.zip', headers: auth('researcher') });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('application/zip');
    expect(r.headers['content-disposition']).toBe('attachment; filename="drought-2025.zip"');
    const zip = join(f.dir, 'out.zip');
    writeFileSync(zip, r.rawPayload);
    const list = spawnSync('unzip', ['-Z1', zip], { encoding: 'utf8' });
    expect(list.status, list.stderr).toBe(0);
    const names = list.stdout.trim().split('\n').sort();
    for (const n of [
      'metadata.yaml',
      'README.md',
      'dmp.md',
      'sync.sh',
      'MANIFEST.sha256',
      'history.log',
      'runs/r001/run.yaml',
      'runs/r001/drought-2025_r001.nc',
      'runs/r002/run.yaml',
      'runs/r002/drought-2025_r002.nc',
    ]) {
      expect(names).toContain(`drought-2025/${n}`);
    }
    const test = spawnSync('unzip', ['-tq', zip], { encoding: 'utf8' });
    expect(test.status, test.stdout + test.stderr).toBe(0);
    const inner = spawnSync('unzip', ['-p', zip, 'drought-2025/runs/r001/drought-2025_r001.nc'], {
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(Buffer.from(inner.stdout).equals(nc)).toBe(true);
    expect(f.audit.read({ action: 'download' }).at(-1)).toMatchObject({
      what: 'drought-2025/archive.zip',
      bytes: r.rawPayload.length,
      detail: { complete: true },
    });
  });
});

describe('OpenAPI', () => {
  it('serves the generated spec at /docs/json and the UI at /docs', async () => {
    const r = await f.app.inject({ url: '/docs/json' });
    expect(r.statusCode).toBe(200);
    const spec = r.json();
    expect(spec.openapi).toMatch(/^3\./);
    for (const p of [
      '/api/experiments',
      '/api/experiments/{id}',
      '/api/experiments/{id}/runs',
      '/api/experiments/{id}/runs/{run}/stop',
      '/api/experiments/{id}/runs/{run}/data.nc',
      '/api/experiments/{id}/runs/{run}/data.csv',
      '/api/experiments/{id}/runs/{run}/preview',
      '/api/experiments/{id}/archive.zip',
      '/api/admin/users',
      '/api/admin/tokens',
      '/api/admin/audit',
      '/api/health',
    ]) {
      expect(Object.keys(spec.paths)).toContain(p);
    }
    const csvParams = spec.paths['/api/experiments/{id}/runs/{run}/data.csv'].get.parameters.map(
      (x: { name: string }) => x.name,
    );
    expect(csvParams).toEqual(expect.arrayContaining(['vars', 'from', 'to', 'chamber', 'id', 'run']));
    expect(
      spec.paths['/api/experiments'].post.requestBody.content['application/json'].schema.properties.chambers,
    ).toBeTruthy();
    expect(spec.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const ui = await f.app.inject({ url: '/docs/' });
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toMatch(/swagger/i);
  });
});
