/**
 * The run reports over HTTP and on the experiment page: GET …/runs/<run>/fidelity,
 * …/completeness and …/fidelity/deviation for an open run (computed from its file in the
 * working folder) and for a stopped run (the reports written at stop); same roles as
 * the plot preview (viewer and up); the experiment page shows the fidelity table, the
 * deviation plot's form and the completeness table with the gaps.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { AuditLog } from '../../src/auth/audit.ts';
import { UserStore } from '../../src/auth/users.ts';
import { writeCompletenessReport } from '../../src/experiments/completeness.ts';
import { ArchiveRoot } from '../../src/experiments/archive-root.ts';
import { ExperimentStore } from '../../src/experiments/store.ts';
import type { ToleranceSource } from '../../src/fidelity/plan.ts';
import { computeFidelity, saveFidelityReport } from '../../src/fidelity/report.ts';
import { FidelityReport } from '../../src/fidelity/report-schema.ts';
import {
  EXC_SLOTS,
  EXC_START,
  FID_CHAMBERS,
  FID_T0,
  FID_TAGS,
  FID_VARS,
  GAP_SLOTS,
  GAP_START,
  writeFidelityRun,
} from '../support/fidelity-fixture.ts';
import { health } from './api-fixtures.ts';
import { webSignIn } from '../support/web.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-fidelity-api-'));
let app: FastifyInstance;
let store: ExperimentStore;
let users: UserStore;
let viewer = '';
const working = new Map<string, string>();
const iso = (slot: number) => new Date(FID_T0 + slot * 1000).toISOString().replace('.000Z', 'Z');

const source: ToleranceSource = (c) =>
  FID_CHAMBERS.includes(c)
    ? {
        tags: FID_TAGS,
        profile: { air_temperature: { band: 0.5, min_duration_s: 600 }, co2: { band: 50, min_duration_s: 300 } },
        chamber: {},
      }
    : undefined;

beforeAll(async () => {
  store = new ExperimentStore(new ArchiveRoot(join(dir, 'experiments'), join(dir, 'local')), {
    chambers: () => FID_CHAMBERS,
    variables: (chambers, only) =>
      FID_VARS.filter((v) => !only.length || only.includes(v.name)).map((v) => ({
        name: v.name,
        unit: v.unit,
        standard_name: v.standard_name,
        description: v.description,
        chambers,
      })),
  });
  users = new UserStore(join(dir, 'state', 'users.json'), 'bootstrap-admin-token-for-tests');
  await users.addUser('vera', 'viewer', 'vera-password');
  viewer = users.createToken('vera', 'test').token;
  app = await buildApp({
    health,
    experiments: store,
    users,
    audit: new AuditLog(join(dir, 'state', 'audit.jsonl')),
    tolerances: source,
    runFile: (id, run) => working.get(`${id}/${run.id}`) ?? join(store.get(id).dir, run.file),
  });
  await store.create(
    {
      id: 'warming-2026',
      title: 'Warming of beech',
      principal_investigator: { name: 'Ada Lovelace' },
      chambers: FID_CHAMBERS,
      treatments: [
        { chamber: 'c1', name: 'warming', tolerances: { air_temperature: { min_duration_s: 300 } } },
        { chamber: 'c2', name: 'warming', tolerances: { air_temperature: { min_duration_s: 300 } } },
        { chamber: 'c3', name: 'control' },
      ],
    },
    'test',
  );
  // r001: stopped, its reports written beside the file (as at stop); r002: open, its file in a working folder.
  const r1 = store.startRun('warming-2026', 'test');
  const f1 = join(store.get('warming-2026').dir, r1.file);
  mkdirSync(dirname(f1), { recursive: true });
  writeFidelityRun(f1, 1, { id: 'warming-2026/r001' });
  store.stopRun('warming-2026', r1.id, 'test');
  saveFidelityReport(
    computeFidelity(f1, {
      source,
      metadata: store.get('warming-2026').metadata,
      now: () => new Date('2026-01-10T14:00:00Z'),
    }),
    dirname(f1),
  );
  writeCompletenessReport(f1, dirname(f1));
  const r2 = store.startRun('warming-2026', 'test');
  const w2 = join(dir, 'working', 'warming-2026', 'r002', 'warming-2026_r002.nc');
  mkdirSync(dirname(w2), { recursive: true });
  copyFileSync(f1, w2);
  working.set(`warming-2026/${r2.id}`, w2);
}, 60_000);
afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (url: string, token = viewer) =>
  app.inject({ url, headers: token ? { authorization: `Bearer ${token}` } : {} });

describe('run reports over HTTP', () => {
  it('fidelity of an open run is computed from its working file: the 7-minute excursion of c2, the others at 100 %', async () => {
    const r = await get('/api/experiments/warming-2026/runs/r002/fidelity');
    expect(r.statusCode).toBe(200);
    const rep = FidelityReport.parse(r.json());
    expect(rep.open).toBe(true);
    const c2 = rep.chambers.c2!.variables.air_temperature!;
    expect(c2.longest_excursion).toMatchObject({
      start: iso(EXC_START),
      end: iso(EXC_START + EXC_SLOTS - 1),
      duration_s: 420,
    });
    expect(c2.tolerance.source.min_duration_s).toBe('treatment');
    expect(rep.chambers.c1!.variables.air_temperature!.within_tolerance_percent).toBe(100);
    expect(rep.treatments.warming!.chambers).toEqual(['c1', 'c2']);
  });

  it('fidelity and completeness of a stopped run are the reports written at stop', async () => {
    const f = await get('/api/experiments/warming-2026/runs/r001/fidelity');
    expect(f.statusCode).toBe(200);
    expect(f.json().generated_at).toBe('2026-01-10T14:00:00.000Z');
    expect(f.json().open).toBe(false);
    const file = join(store.get('warming-2026').dir, 'runs', 'r001', 'completeness.json');
    const c = await get('/api/experiments/warming-2026/runs/r001/completeness');
    expect(c.statusCode).toBe(200);
    expect(c.json().generated_at).toBe(JSON.parse(readFileSync(file, 'utf8')).generated_at);
  });

  it('completeness of an open run: c3 misses 100 slots of air temperature in one gap', async () => {
    const c = await get('/api/experiments/warming-2026/runs/r002/completeness');
    expect(c.statusCode).toBe(200);
    const v = c.json().chambers.c3.variables.air_temperature;
    expect(c.json().open).toBe(true);
    expect(v.missing.total).toBe(GAP_SLOTS);
    expect(v.gaps).toEqual([
      { start: iso(GAP_START), end: iso(GAP_START + GAP_SLOTS - 1), slots: GAP_SLOTS, cause: 'not_received' },
    ]);
  });

  it('deviation series for the plot: per judged chamber, with its band; c2 peaks at +1.2 K', async () => {
    const r = await get('/api/experiments/warming-2026/runs/r002/fidelity/deviation?var=air_temperature&points=60');
    expect(r.statusCode).toBe(200);
    const d = r.json();
    expect(Object.keys(d.chambers)).toEqual(['c1', 'c2', 'c3']);
    expect(d.bucket_records).toBe(60);
    expect(d.chambers.c2.band).toBe(0.5);
    const peak = Math.max(...d.chambers.c2.buckets.map((b: { max: number | null }) => b.max ?? -Infinity));
    expect(peak).toBeCloseTo(1.2, 5);
    expect(
      d.chambers.c1.buckets.every(
        (b: { max: number | null; min: number | null }) => Math.abs(b.max!) <= 0.5 && Math.abs(b.min!) <= 0.5,
      ),
    ).toBe(true);
    const bad = await get('/api/experiments/warming-2026/runs/r002/fidelity/deviation?var=nope');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatch(/not a controlled variable/);
  });

  it('the experiment detail links each run to its reports', async () => {
    const d = (await get('/api/experiments/warming-2026')).json();
    expect(d.runs[1]).toMatchObject({
      run: 'r002',
      fidelity: '/api/experiments/warming-2026/runs/r002/fidelity',
      completeness: '/api/experiments/warming-2026/runs/r002/completeness',
    });
  });

  it('needs a token like the other run routes; unknown runs are 404; documented in the OpenAPI', async () => {
    for (const p of ['fidelity', 'completeness', 'fidelity/deviation?var=co2']) {
      expect((await get(`/api/experiments/warming-2026/runs/r002/${p}`, '')).statusCode).toBe(401);
    }
    const nf = await get('/api/experiments/warming-2026/runs/r009/fidelity');
    expect(nf.statusCode).toBe(404);
    const spec = (await app.inject({ url: '/docs/json' })).json();
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining([
        '/api/experiments/{id}/runs/{run}/fidelity',
        '/api/experiments/{id}/runs/{run}/completeness',
        '/api/experiments/{id}/runs/{run}/fidelity/deviation',
      ]),
    );
    expect(
      spec.paths['/api/experiments/{id}/runs/{run}/fidelity'].get.responses['200'].content['application/json'].schema
        .properties,
    ).toHaveProperty('treatments');
  });
});

describe('run reports on the experiment page', () => {
  it('a stopped run shows the fidelity table, the deviation plot form and the completeness table with its gaps', async () => {
    const s = await webSignIn(app, 'vera', 'vera-password');
    const page = await app.inject({ url: '/experiments/warming-2026?run=r001', headers: { cookie: s.cookie } });
    expect(page.statusCode).toBe(200);
    const body = page.body;
    expect(body).toMatch(/<table id="fidelity-table">/);
    const row = /<tr data-chamber="c2" data-variable="air_temperature" class="excursion">([\s\S]*?)<\/tr>/.exec(
      body,
    )![1]!;
    expect(row).toContain('86.7 %');
    expect(row).toContain(`${iso(EXC_START)}</time> – <time datetime="${iso(EXC_START + EXC_SLOTS - 1)}">`);
    expect(row).toMatch(/<td class="excursions">1<\/td>/);
    expect(body).toMatch(/<form id="dev-form" data-experiment="warming-2026" data-run="r001"/);
    expect(body).toMatch(/<table id="completeness-table">/);
    expect(body).toMatch(
      /<tr data-chamber="c3" data-variable="air_temperature"><td>c3<\/td><td><code>air_temperature<\/code><\/td><td>3600<\/td><td>3500<\/td><td>0<\/td><td class="missing">100<\/td>/,
    );
    expect(body).toContain(`${iso(GAP_START)} – ${iso(GAP_START + GAP_SLOTS - 1)} (100 slots, not received)`);
  });

  it('an open run offers to compute its reports, and computes them when asked', async () => {
    const s = await webSignIn(app, 'vera', 'vera-password');
    const page = await app.inject({ url: '/experiments/warming-2026', headers: { cookie: s.cookie } });
    expect(page.body).toMatch(/Run r002 is recording/);
    expect(page.body).not.toMatch(/id="fidelity-table"/);
    const now = await app.inject({
      url: '/experiments/warming-2026?run=r002&compute=1',
      headers: { cookie: s.cookie },
    });
    expect(now.body).toMatch(/Treatment fidelity \(run still recording\)/);
    expect(now.body).toMatch(/<table id="completeness-table">/);
  });
});
