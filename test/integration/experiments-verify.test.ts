/**
 * The completeness report of a run file (per chamber and variable: expected, measured,
 * held, missing by cause, gap intervals) and `octopus verify <experiment> [run]`, which
 * recomputes it and compares the file with the database (real VictoriaMetrics) slot by
 * slot: it passes on a clean run and finds a hand-deleted record and a hand-changed value.
 */
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRunSchema, type ArchiveVar } from '../../src/collector/sinks/netcdf/cf.ts';
import { layoutOf } from '../../src/netcdf/header.ts';
import { encodeLines } from '../../src/collector/sinks/influx/line-protocol.ts';
import { NetcdfWriter, readNetcdfHeader, type NcRecord } from '../../src/netcdf/writer.ts';
import { InfluxConfig } from '../../src/config/instance-schema.ts';
import { loadConfig } from '../../src/config/loader.ts';
import {
  completenessMarkdown,
  computeCompleteness,
  writeCompletenessReport,
  type CompletenessReport,
} from '../../src/experiments/completeness.ts';
import { ArchiveRoot } from '../../src/experiments/archive-root.ts';
import { createExperimentStore, experimentPaths } from '../../src/experiments/factory.ts';
import { ExperimentStore } from '../../src/experiments/store.ts';
import { compareWithDatabase } from '../../src/experiments/verify.ts';
import { Influxd } from '../support/influxd.ts';
import type { WireSample } from '../../src/bus/payload.ts';
import { runCli, simulatedChambers } from '../support/cli.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { eventually } from '../support/ports.ts';
import { Victoria } from '../support/victoria.ts';

let vm: Victoria;
let dir: string;
let config: string;
let file: string;
/** A copy of the file as written (the verify test edits `file`). */
let cleanCopy: string;
/** The line protocol of every measured sample. */
let lines = '';
let expected = 0;

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
const N = 120;
const CH = ['c1', 'c2'];
const VARS: ArchiveVar[] = [
  { name: 'air_temperature', description: 'Air temperature', unit: 'degree_Celsius', kind: 'float' },
  { name: 'co2', description: 'CO2', unit: 'umol mol-1', kind: 'double' },
  { name: 'door_open', description: 'Door open', kind: 'bool' },
];
/** QC contract: 0 good, 1 uncertain, 2 bad, 3 missing, 4 held, 5 offline. */
function qcOf(k: number, c: number, v: string): number {
  if (c === 1 && k >= 40 && k < 50) return 5; // chamber c2 offline for 10 slots
  if (v === 'door_open' && k % 10 !== 0) return 4; // reported on change: held between changes
  if (v === 'co2' && c === 0 && (k === 0 || k === 70 || k === 71 || k === 72)) return 3; // not received
  if (v === 'air_temperature' && c === 0 && k === 90) return 2; // bad quality, value written
  if (v === 'co2' && k === 100) return 1;
  return 0;
}
const valueOf = (k: number, c: number, v: string): number =>
  v === 'air_temperature'
    ? Math.fround(20 + c + k / 64)
    : v === 'co2'
      ? 400 + 10 * c + k * 0.25
      : Math.floor(k / 10) % 2;
const hasValue = (q: number) => q === 0 || q === 1 || q === 2 || q === 4;

beforeAll(async () => {
  vm = await Victoria.start();
  dir = scratch('octopus-verify-');
  config = join(dir, 'octopus.yaml');
  writeFileSync(
    config,
    [
      `data_dir: ${JSON.stringify(join(dir, 'data'))}`,
      `influx: { url: "${vm.url}", bucket: octopus, measurement: verify }`,
      simulatedChambers({ opcua: 4840, modbus: 5020 }, { count: 2 }),
    ].join('\n'),
  );
  const loaded = loadConfig(config);
  await createExperimentStore(loaded).create(
    { id: 'exp1', title: 'Verify', principal_investigator: { name: 'Ada Lovelace' }, chambers: CH },
    'test',
  );
  // The run went from just before the first slot to just after the last one.
  let clock = new Date(T0 - 300);
  const paths = experimentPaths(loaded);
  const store = new ExperimentStore(new ArchiveRoot(paths.root, paths.local), {
    chambers: () => loaded.chambers.map((c) => c.chamber.id),
    variables: () => [],
    now: () => clock,
  });
  const run = store.startRun('exp1', 'test');
  clock = new Date(T0 + (N - 1) * 1000 + 499);
  store.stopRun('exp1', run.id, 'test');
  file = join(store.get('exp1').dir, run.file);
  mkdirSync(join(file, '..'), { recursive: true });
  const { schema } = buildRunSchema(
    {
      id: 'exp1/r001',
      title: 'Verify',
      summary: 'test',
      chambers: CH,
      startMs: T0,
      periodMs: 1000,
      creator_name: 'tests',
    },
    VARS,
  );
  const w = NetcdfWriter.create(file, schema, { fsync: false, overwrite: true });
  const recs: NcRecord[] = [];
  for (let k = 0; k < N; k++) {
    const values: NcRecord['values'] = {};
    for (const v of VARS) {
      values[v.name] = CH.map((_, c) => (hasValue(qcOf(k, c, v.name)) ? valueOf(k, c, v.name) : null));
      values[`${v.name}_qc`] = CH.map((_, c) => qcOf(k, c, v.name));
    }
    recs.push({ time: (T0 + k * 1000) / 1000, values });
  }
  w.appendRecords(recs);
  w.close();
  cleanCopy = join(dir, 'clean.nc');
  copyFileSync(file, cleanCopy);
  // The database holds what was measured, stamped near the slot (a sample lands in its nearest slot).
  let body = '';
  for (let c = 0; c < CH.length; c++) {
    const samples: WireSample[] = [];
    for (let k = 0; k < N; k++) {
      for (const v of VARS) {
        const q = qcOf(k, c, v.name);
        if (q !== 0 && q !== 1) continue;
        const value = v.kind === 'bool' ? valueOf(k, c, v.name) === 1 : valueOf(k, c, v.name);
        samples.push({
          tag: v.name,
          ts: T0 + k * 1000 + ((k * 37) % 400) - 200,
          value,
          q: q === 0 ? 'good' : 'uncertain',
        });
        expected++;
      }
    }
    // Before the run started (T0 - 300 ms): not the run's, although within half a period of slot 0, which the file has missing.
    if (c === 0) {
      samples.push({ tag: 'co2', ts: T0 - 400, value: 1, q: 'good' });
      expected++;
    }
    body += encodeLines('verify', CH[c]!, samples);
  }
  lines = body;
  const res = await fetch(`${vm.url}/api/v2/write?bucket=octopus&precision=ms`, { method: 'POST', body });
  expect(res.status).toBe(204);
  await eventually(async () => (await vm.count('verify_value')) === expected, 'samples in VictoriaMetrics');
}, 60_000);

afterAll(async () => {
  await vm?.close();
  cleanScratch();
});

describe('completeness report', () => {
  it('counts expected, measured, held and missing by cause per chamber and variable, with the gaps', () => {
    const r = computeCompleteness(file);
    expect(r).toMatchObject({
      run: 'exp1/r001',
      slots: N,
      period_s: 1,
      start: '2026-01-10T12:00:00Z',
      end: '2026-01-10T12:01:59Z',
    });
    const co2c1 = r.chambers.c1!.variables.co2!;
    expect(co2c1).toMatchObject({
      expected: 120,
      measured: 116,
      uncertain: 1,
      held: 0,
      missing: { total: 4, not_received: 4, offline: 0, bad_quality: 0 },
    });
    expect(co2c1.gaps).toEqual([
      { start: '2026-01-10T12:00:00Z', end: '2026-01-10T12:00:00Z', slots: 1, cause: 'not_received' },
      { start: '2026-01-10T12:01:10Z', end: '2026-01-10T12:01:12Z', slots: 3, cause: 'not_received' },
    ]);
    const doorC2 = r.chambers.c2!.variables.door_open!;
    // 12 changes reported, of which slot 40 falls into the offline period; 10 offline slots.
    expect(doorC2).toMatchObject({ expected: 120, measured: 11, held: 99, missing: { total: 10, offline: 10 } });
    expect(doorC2.gaps).toEqual([
      { start: '2026-01-10T12:00:40Z', end: '2026-01-10T12:00:49Z', slots: 10, cause: 'offline' },
    ]);
    expect(r.chambers.c1!.variables.air_temperature!.missing).toMatchObject({ total: 1, bad_quality: 1 });
    expect(r.totals.expected).toBe(2 * 3 * 120);
    expect(r.totals.measured + r.totals.held + r.totals.missing).toBe(r.totals.expected);
    const md = completenessMarkdown(r);
    expect(md).toContain('### Chamber c2');
    expect(md).toContain('| door_open | 120 | 11 | 99 | 10 | 0 | 0 | 91.66 % |');
    expect(md).toContain('2026-01-10T12:00:40Z – 2026-01-10T12:00:49Z (10 slots, chamber offline)');
  });

  it('writes completeness.json beside the file', () => {
    const out = join(dir, 'report');
    const r = writeCompletenessReport(file, out);
    const json = JSON.parse(readFileSync(join(out, 'completeness.json'), 'utf8')) as CompletenessReport;
    expect(json.chambers.c1!.variables.co2!.missing.total).toBe(4);
    expect(json.totals).toEqual(r.totals);
  });
});

describe('octopus verify', () => {
  it('passes on a clean run: the file and the database agree', () => {
    const r = runCli(['verify', 'exp1', 'r001', '--config', config]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('no difference: the file and the database agree');
    expect(r.stdout).toContain('## Completeness of run exp1/r001');
    expect(r.code).toBe(0);
  });

  it('--write on a stopped run writes completeness.json and the daily file again, listed in the MANIFEST', () => {
    const daily = file.replace(/\.nc$/, '_daily.nc');
    const r = runCli(['verify', 'exp1', 'r001', '--write', '--config', config]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`wrote ${daily} (1 day(s), 2 variables)`);
    expect(existsSync(daily)).toBe(true);
    expect(readFileSync(join(dir, 'data', 'experiments', 'exp1', 'MANIFEST.sha256'), 'utf8')).toContain(
      'runs/r001/exp1_r001_daily.nc',
    );
  });

  it('finds a hand-deleted record and a hand-changed value, and exits 1', () => {
    const h = readNetcdfHeader(file);
    const { recsize } = layoutOf(h);
    const begin = (name: string) => h.vars.find((v) => v.name === name)!.begin;
    const fd = openSync(file, 'r+');
    // co2 of c2 at slot 10 deleted: set to its fill value.
    const fill = Buffer.alloc(8);
    fill.writeDoubleBE(9.969209968386869e36);
    writeSync(fd, fill, 0, 8, begin('co2') + 10 * recsize + 1 * 8);
    // air_temperature of c1 at slot 20 changed.
    const changed = Buffer.alloc(4);
    changed.writeFloatBE(99.5);
    writeSync(fd, changed, 0, 4, begin('air_temperature') + 20 * recsize + 0 * 4);
    closeSync(fd);
    const r = runCli(['verify', 'exp1', '--config', config]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toContain('2 difference(s): 1 missing in the file, 0 missing in the database, 1 value(s) differ');
    expect(r.stdout).toMatch(/missing_in_file +c2 co2 2026-01-10T12:00:10Z +file missing \(qc 0\) +database 412\.5/);
    expect(r.stdout).toMatch(
      /value_differs +c1 air_temperature 2026-01-10T12:00:20Z +file 99\.5 \(qc 0\) +database 20\.3125/,
    );
    const json = runCli(['verify', 'exp1', 'r001', '--json', '--config', config]);
    expect(json.code).toBe(1);
    const parsed = JSON.parse(json.stdout) as {
      database: { differences: Array<{ kind: string; chamber: string; variable: string }> };
      completeness: CompletenessReport;
    };
    expect(parsed.database.differences.map((d) => `${d.kind} ${d.chamber} ${d.variable}`)).toEqual([
      'missing_in_file c2 co2',
      'value_differs c1 air_temperature',
    ]);
    expect(parsed.completeness.chambers.c2!.variables.co2!.missing.not_received).toBe(1);
  });

  it('says which run is unknown, exit 2', () => {
    const r = runCli(['verify', 'exp1', 'r009', '--config', config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('experiment "exp1" has no run "r009" (runs: r001)');
  });
});

describe('comparison through InfluxQL (influxd 1.x)', () => {
  it('agrees on the clean file and finds a changed value', async () => {
    const db = await Influxd.start();
    try {
      await db.query('', 'CREATE DATABASE octopus');
      const res = await fetch(`${db.url}/write?db=octopus&precision=ms`, { method: 'POST', body: lines });
      expect(res.status).toBe(204);
      await eventually(async () => {
        const [series] = await db.query('octopus', 'SELECT count("value") FROM "verify"');
        return series?.[0]?.values[0]?.[1] === expected;
      }, 'samples in influxd');
      const cfg = InfluxConfig.parse({ url: db.url, database: 'octopus', measurement: 'verify' });
      const window = { runStartMs: T0 - 300, runStopMs: T0 + (N - 1) * 1000 + 499 };
      const clean = await compareWithDatabase(cleanCopy, cfg, undefined, window);
      expect(clean).toMatchObject({ query: 'influxql', differences_total: 0 });
      expect(clean.compared).toBeGreaterThan(600);
      const edited = await compareWithDatabase(file, cfg, undefined, window);
      // Without the run's window, the sample from before the start would be taken for slot 0.
      expect((await compareWithDatabase(cleanCopy, cfg, undefined)).by_kind.missing_in_file).toBe(1);
      expect(edited.by_kind).toEqual({ missing_in_file: 1, missing_in_db: 0, value_differs: 1 });
    } finally {
      await db.close();
    }
  }, 60_000);
});
