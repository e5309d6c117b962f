/**
 * The files the writer produces, judged by independent readers: ncdump (netCDF-C,
 * Debian netcdf-bin), python netCDF4 and xarray (Debian python3-netcdf4 / -xarray, run
 * with /usr/bin/python3) and netcdfjs.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../src/config/profiles.ts';
import type { Tag } from '../../src/config/profile-schema.ts';
import {
  archiveVarsFromTags,
  buildRunSchema,
  type ArchiveVar,
  type RunInfo,
} from '../../src/collector/sinks/netcdf/cf.ts';
import { RunFile } from '../../src/collector/sinks/netcdf/run-file.ts';
import { NetcdfWriter, readNetcdfHeader } from '../../src/netcdf/writer.ts';
import { loadCfTable, unitsConvertible } from '../support/cf.ts';
import { ncdump, ncdumpKind, pythonView, readNetcdfjs, type PyView } from '../support/netcdf.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-nc-tools-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);
const CHAMBERS = ['ch-01', 'ch-02', 'walk-in-3'];
const VARS: ArchiveVar[] = [
  {
    name: 'air_temperature',
    description: 'Air temperature',
    unit: 'degree_Celsius',
    standard_name: 'air_temperature',
    kind: 'float',
  },
  { name: 'rh', description: 'Relative humidity', unit: 'percent', standard_name: 'relative_humidity', kind: 'float' },
  {
    name: 'co2',
    description: 'CO2 mole fraction',
    unit: 'umol mol-1',
    standard_name: 'mole_fraction_of_carbon_dioxide_in_air',
    kind: 'double',
  },
  { name: 'door_open', description: 'Door open', kind: 'bool' },
];
const RUN: RunInfo = {
  id: 'exp-42/run-1',
  title: 'Drought x CO2, run 1',
  summary: 'Three chambers at 1 s.',
  chambers: CHAMBERS,
  startMs: T0,
  periodMs: 1000,
  creator_name: 'Plant Lab',
  creator_email: 'lab@example.org',
  institution: 'Example Institute',
  createdMs: T0 - 1000,
};
const N = 120; // slots

/** Expected value of var v for chamber c at slot k (null = never sampled). */
function expected(v: string, c: number, k: number): number | null {
  if (k % 17 === 5 && c === 1) return null; // gaps
  switch (v) {
    case 'air_temperature':
      return 20 + c + k * 0.25;
    case 'rh':
      return 50 + ((k * 7 + c) % 30);
    case 'co2':
      return 400.123456789 + k + c * 1000;
    default:
      return (k + c) % 2;
  }
}

let path: string;
let py: PyView;

beforeAll(() => {
  path = join(dir, 'run.nc');
  const rf = RunFile.open(path, RUN, VARS, { now: () => T0 + 10 * 86_400_000, log: false });
  for (let k = 0; k < N; k++) {
    for (let c = 0; c < CHAMBERS.length; c++) {
      for (const v of VARS) {
        const x = expected(v.name, c, k);
        if (x === null) continue;
        // jitter within the slot, some up to 1.5 s late in arrival order
        const ts = T0 + k * 1000 + ((k * 31 + c * 7) % 400) - 200;
        rf.add({
          chamber: CHAMBERS[c]!,
          tag: v.name,
          ts,
          value: v.kind === 'bool' ? x === 1 : x,
          q: k % 10 === 3 ? 'uncertain' : 'good',
        });
      }
    }
    if (k % 30 === 29) rf.tick(T0 + k * 1000);
  }
  rf.close(T0 + (N - 1) * 1000);
  py = pythonView(path);
});

describe('netCDF files read by netCDF-C, netCDF4, xarray and netcdfjs', () => {
  it('ncdump -h and ncdump read the file', () => {
    const h = ncdump(path, true);
    expect(h.stderr).toBe('');
    expect(h.status).toBe(0);
    expect(h.stdout).toContain(`time = UNLIMITED ; // (${N} currently)`);
    expect(h.stdout).toContain(':Conventions = "CF-1.11, ACDD-1.3" ;');
    expect(h.stdout).toContain('air_temperature:ancillary_variables = "air_temperature_qc" ;');
    const full = ncdump(path);
    expect(full.status).toBe(0);
    expect(full.stdout).toContain('"walk-in-3"');
    expect(ncdumpKind(path)).toBe('classic');
  });

  it('netCDF4 and xarray decode time to the grid instants (UTC)', () => {
    const want = Array.from({ length: N }, (_, k) => new Date(T0 + k * 1000).toISOString().replace('Z', '000'));
    expect(py.netcdf4.time_iso).toEqual(want);
    expect(py.xarray.time_iso).toEqual(want);
    expect(py.netcdf4.dims.time).toEqual({ size: N, unlimited: true });
  });

  it('every value written at t for chamber c is read back at t for c, gaps as fill, by netCDF4, xarray and netcdfjs alike', () => {
    const js = readNetcdfjs(path);
    for (const v of VARS) {
      const n4 = py.netcdf4.vars[v.name]!.data as (number | null)[][];
      const xa = py.xarray.vars[v.name]!.data as (number | null)[][];
      const jsd = js.getDataVariable(v.name) as number[][];
      for (let k = 0; k < N; k++) {
        for (let c = 0; c < CHAMBERS.length; c++) {
          const x = expected(v.name, c, k);
          const want = x === null ? null : v.kind === 'float' ? Math.fround(x) : x;
          expect(n4[k]![c], `${v.name}[${k},${c}] netCDF4`).toBe(want);
          expect(xa[k]![c], `${v.name}[${k},${c}] xarray`).toBe(want);
          if (v.kind !== 'bool') {
            // netcdfjs does not apply _FillValue: it shows the raw fill
            const fill = py.netcdf4.vars[v.name]!.attrs._FillValue as number;
            expect(jsd[k]![c], `${v.name}[${k},${c}] netcdfjs`).toBe(
              want ?? (v.kind === 'float' ? Math.fround(fill) : fill),
            );
          }
        }
      }
    }
  });

  it('quality flags are byte variables with flag_values/meanings, linked by ancillary_variables', () => {
    const qc = py.netcdf4.vars.rh_qc!;
    expect(qc.dtype).toBe('int8');
    expect(qc.attrs).toMatchObject({
      flag_values: [0, 1, 2, 3, 4, 5],
      flag_meanings: 'good uncertain bad missing held offline',
      standard_name: 'quality_flag',
    });
    const data = qc.data as number[][];
    expect(data[3]![0]).toBe(1); // uncertain
    expect(data[5]![1]).toBe(3); // gap → missing
    expect(data[6]![1]).toBe(0);
    expect(py.netcdf4.vars.door_open!.attrs).toMatchObject({
      flag_values: [0, 1],
      flag_meanings: 'false true',
      _FillValue: -127,
    });
  });

  it('carries CF and ACDD attributes (time_coverage_end, date_modified rewritten at close)', () => {
    const g = py.netcdf4.globals;
    expect(g).toMatchObject({
      Conventions: 'CF-1.11, ACDD-1.3',
      featureType: 'timeSeries',
      title: RUN.title,
      summary: RUN.summary,
      id: RUN.id,
      creator_name: 'Plant Lab',
      license: 'CC-BY-4.0',
      time_coverage_start: '2024-05-01T12:00:00Z',
      time_coverage_end: new Date(T0 + (N - 1) * 1000).toISOString().replace('.000Z', 'Z'),
      time_coverage_resolution: 'PT1S',
    });
    expect(String(g.history)).toMatch(/created by octopus/);
    expect(Date.parse(String(g.date_modified))).toBeGreaterThan(Date.parse(String(g.date_created)));
    expect(py.netcdf4.vars.time!.attrs).toMatchObject({
      units: 'seconds since 1970-01-01 00:00:00',
      calendar: 'standard',
      standard_name: 'time',
    });
    expect(py.netcdf4.vars.station_name!.attrs).toMatchObject({ cf_role: 'timeseries_id' });
    expect(py.netcdf4.vars.station_name!.data).toEqual(CHAMBERS);
    expect(py.netcdf4.vars.air_temperature!.attrs).toMatchObject({
      standard_name: 'air_temperature',
      units: 'degree_Celsius',
      long_name: 'Air temperature',
      cell_methods: 'time: point',
      coordinates: 'station_name',
    });
    expect(py.xarray.vars.air_temperature!.dims).toEqual(['time', 'chamber']);
    expect(py.xarray.coords).toContain('station_name');
  });

  it('a file forced to CDF-2 has the 64-bit offset magic and 64-bit begins, and every reader opens it', () => {
    const p = join(dir, 'cdf2.nc');
    const { schema } = buildRunSchema(RUN, VARS);
    const w = NetcdfWriter.create(p, schema, { version: 2 });
    w.appendRecords([{ time: T0 / 1000, values: { air_temperature: [1, 2, 3] } }]);
    w.close();
    const b = readFileSync(p);
    expect(b.subarray(0, 4)).toEqual(Buffer.from('CDF\x02', 'latin1'));
    expect(ncdumpKind(p)).toBe('64-bit offset');
    expect(ncdump(p).status).toBe(0);
    const v = pythonView(p, ['air_temperature']);
    expect(v.netcdf4.format).toBe('NETCDF3_64BIT_OFFSET');
    expect((v.netcdf4.vars.air_temperature!.data as number[][])[0]).toEqual([1, 2, 3]);
    expect(readNetcdfjs(p).version).toBe('64-bit offset format');
    const h = readNetcdfHeader(p);
    expect(h.version).toBe(2);
    expect(h.vars.find((x) => x.name === 'station_name')!.begin).toBe(65536); // read as a 64-bit field
  });
});

describe('CF schema of a run', () => {
  it('every standard_name the schema uses exists in the CF table, and units convert to its canonical units', () => {
    const tags: Tag[] = [];
    for (const { profile } of loadProfiles().profiles.values()) tags.push(...profile.tags);
    const { vars } = archiveVarsFromTags(tags);
    const { schema } = buildRunSchema(RUN, [...vars, ...VARS.filter((v) => !vars.some((x) => x.name === v.name))]);
    const cf = loadCfTable();
    const used = new Set<string>();
    for (const v of schema.variables) {
      const sn = v.attributes?.standard_name;
      if (typeof sn !== 'string') continue;
      used.add(sn);
      expect(cf.canonical.has(sn), `${v.name}: standard_name ${sn} not in CF table v${cf.version}`).toBe(true);
      const units = v.attributes?.units;
      if (typeof units === 'string') {
        // "seconds since …" is a time reference; its unit part must convert
        const conv = unitsConvertible(units.split(' since ')[0]!, cf.canonical.get(sn)!);
        expect(conv.ok, `${v.name}: ${units} → ${cf.canonical.get(sn)}: ${conv.detail}`).toBe(true);
      }
    }
    expect(used).toContain('time');
    expect(used).toContain('quality_flag');
    expect(used).toContain('air_temperature');
  });
});
