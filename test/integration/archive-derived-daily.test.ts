/**
 * Derived variables (VPD, dew point) and the daily file, checked independently:
 * published saturation vapour pressure table values; a 3-day run file written by the
 * archive's RunFile (every quality flag, a late patched sample, a chamber without the
 * inputs, inputs in K and fraction) compared in python with a reference implementation
 * (Wagner & Pruss saturation pressure, bisection dew point, the documented flag rule);
 * the daily file opened with xarray and compared with numpy daily aggregates of the raw
 * file; both files pass the independent CF-1.11 / ACDD-1.3 checker.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runInfo } from '../../src/collector/sinks/netcdf/archiver.ts';
import { computeCompleteness } from '../../src/experiments/completeness.ts';
import type { ArchiveVar } from '../../src/collector/sinks/netcdf/cf.ts';
import { dailyPath, writeDailyFile } from '../../src/collector/sinks/netcdf/daily.ts';
import {
  derivedInputs,
  dewPointC,
  saturationVapourPressurePa,
  vpdKPa,
} from '../../src/collector/sinks/netcdf/derived.ts';
import { RunFile } from '../../src/collector/sinks/netcdf/run-file.ts';
import { FacilityConfig } from '../../src/config/facility-schema.ts';
import { ExperimentMetadata, type Run } from '../../src/experiments/schema.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { pythonView } from '../support/netcdf.ts';
import { cfAcddCheck, derivedReference } from '../support/cf-check.ts';

afterAll(() => cleanScratch());

const FACILITY = FacilityConfig.parse({
  institution: 'Test Ecotron',
  naming_authority: 'org.example.ecotron',
  publisher_name: 'Test data service',
  publisher_email: 'data@example.org',
  publisher_url: 'https://example.org/data',
  acknowledgement: 'Funded by tests',
});
const META = ExperimentMetadata.parse({
  id: 'derived-test',
  title: 'Derived test',
  principal_investigator: { name: 'Ada Lovelace' },
  chambers: ['c1', 'c2', 'c3'],
});
const T0 = Date.UTC(2026, 2, 10, 18, 0, 0);
const PERIOD = 60_000;
const SLOTS = 3 * 1440; // 3 days of minutes from 18:00: 4 UTC days, the first and last partial

function varsWith(tUnit: string, rhUnit: string): ArchiveVar[] {
  return [
    {
      name: 'air_temperature',
      description: 'Air temperature',
      unit: tUnit,
      standard_name: 'air_temperature',
      kind: 'float',
    },
    {
      name: 'relative_humidity',
      description: 'Relative humidity',
      unit: rhUnit,
      standard_name: 'relative_humidity',
      kind: 'float',
    },
    {
      name: 'co2',
      description: 'CO2',
      unit: 'umol mol-1',
      standard_name: 'mole_fraction_of_carbon_dioxide_in_air',
      kind: 'float',
    },
    { name: 'firmware_build', description: 'Firmware build number', kind: 'double' },
    { name: 'door_open', description: 'Door open', kind: 'bool' },
  ];
}

function writeRun(
  dir: string,
  tUnit: string,
  rhUnit: string,
  toUnit: (tC: number, rh: number) => [number, number],
): string {
  const vars = varsWith(tUnit, rhUnit);
  const chambers = ['c1', 'c2', 'c3'];
  // c3's profile has no humidity sensor: no derived values for it.
  const tags = (c: string) =>
    c === 'c3' ? ['air_temperature', 'co2', 'firmware_build', 'door_open'] : vars.map((v) => v.name);
  const run: Run = {
    id: 'r001',
    experiment: META.id,
    status: 'stopped',
    start: new Date(T0).toISOString(),
    stop: new Date(T0 + (SLOTS - 1) * PERIOD).toISOString(),
    chambers,
    sampling_period_s: 60,
    started_by: 'test',
    file: 'runs/r001/derived-test_r001.nc',
  };
  const derived = derivedInputs(vars, chambers, tags);
  expect(derived?.chambers).toEqual([true, true, false]);
  const path = join(dir, 'derived-test_r001.nc');
  rmSync(path, { force: true });
  // c2's air temperature is reported on change (held between samples).
  const rf = RunFile.open(path, { ...runInfo(META, run, FACILITY), derived }, vars, {
    now: () => T0 + 10 * 86_400_000,
    log: false,
    fsync: false,
    onChange: (c, tag) => c === 'c2' && tag === 'air_temperature',
  });
  const add = (
    chamber: string,
    tag: string,
    k: number,
    value: number | null,
    q: 'good' | 'uncertain' | 'bad' = 'good',
  ) => rf.add({ chamber, tag, ts: T0 + k * PERIOD, value, q });
  for (let k = 0; k < SLOTS; k++) {
    const day = (k % 1440) / 1440;
    const tC = 22 + 6 * Math.sin(2 * Math.PI * day) + (k % 7) * 0.05;
    const rh = 65 - 20 * Math.sin(2 * Math.PI * day) + (k % 5) * 0.3;
    const [t, h] = toUnit(tC, rh);
    // c1: every flag. uncertain every 17th, bad every 29th (with and without a value), humidity gap every 31st.
    const c1Offline = k >= 1500 && k < 1560;
    if (!c1Offline)
      add(
        'c1',
        'air_temperature',
        k,
        k % 58 === 0 ? null : t,
        k % 17 === 0 ? 'uncertain' : k % 29 === 0 ? 'bad' : 'good',
      );
    if (k % 31 !== 0 && !c1Offline) add('c1', 'relative_humidity', k, h);
    // c2: temperature on change every 10 minutes (held in between), a 5 % RH step above 100 % once.
    if (k % 10 === 0) add('c2', 'air_temperature', k, toUnit(tC + 1, rh)[0]);
    add('c2', 'relative_humidity', k, k === 500 ? toUnit(tC, 101)[1] : toUnit(tC, rh - 5)[1]);
    add('c3', 'air_temperature', k, t);
    for (const c of chambers) {
      add(c, 'co2', k, 420 + (k % 60));
      add(c, 'firmware_build', k, 1234);
      add(c, 'door_open', k, k % 100 === 0 ? 1 : 0);
    }
    if (k === 2000) rf.flush();
  }
  // c1 offline for an hour on day 2; a late sample patched into a record already written.
  rf.grid.setStatus('c1', false, T0 + 1500 * PERIOD + 1);
  rf.grid.setStatus('c1', true, T0 + 1560 * PERIOD + 1);
  rf.add({ chamber: 'c1', tag: 'relative_humidity', ts: T0 + 31 * PERIOD, value: toUnit(20, 50)[1], q: 'good' });
  rf.close(T0 + (SLOTS - 1) * PERIOD);
  return path;
}

describe('VPD and dew point: formula against published values', () => {
  it('saturation vapour pressure agrees with the CRC Handbook table (0–40 °C) within 0.3 %', () => {
    // CRC Handbook of Chemistry and Physics, "Vapor pressure of water from 0 to 370 °C", kPa.
    const table: Array<[number, number]> = [
      [0, 0.6113],
      [10, 1.2282],
      [20, 2.3393],
      [25, 3.1699],
      [30, 4.247],
      [40, 7.3849],
    ];
    for (const [t, kPa] of table)
      expect(Math.abs(saturationVapourPressurePa(t) / 1000 / kPa - 1), `${t} °C`).toBeLessThan(0.003);
    expect(vpdKPa(25, 50)).toBeCloseTo(3.1699 / 2, 2);
    expect(vpdKPa(30, 100)).toBe(0);
  });

  it('dew point: 25 °C at 50 % gives 13.86 °C (table interpolation), saturated air its own temperature, RH ≤ 0 none', () => {
    // e = 0.5 · 3.1699 kPa lies between e_s(13 °C) = 1.4980 and e_s(14 °C) = 1.5990 kPa: Td = 13.86 °C.
    expect(Math.abs(dewPointC(25, 50) - 13.86)).toBeLessThan(0.05);
    expect(dewPointC(18.5, 100)).toBeCloseTo(18.5, 9);
    expect(Number.isNaN(dewPointC(20, 0))).toBe(true);
    // Consistency: e_s(Td) = RH · e_s(T).
    for (const [t, rh] of [
      [5, 80],
      [22, 60],
      [35, 30],
    ] as const)
      expect(saturationVapourPressurePa(dewPointC(t, rh)) / ((saturationVapourPressurePa(t) * rh) / 100)).toBeCloseTo(
        1,
        9,
      );
  });
});

describe('derived variables and daily file of a run, checked in python', () => {
  const dir = scratch('octopus-derived-');

  it('VPD and dew point equal a reference implementation, their flags follow the rule, the file passes CF/ACDD', () => {
    const path = writeRun(dir, 'degree_Celsius', 'percent', (t, h) => [t, h]);
    const ref = derivedReference(path).derived;
    console.info(
      `derived: ${ref.compared} values compared; VPD max rel. error ${(ref.vpd_max_rel_err * 100).toFixed(3)} %, ${ref.vpd_max_abs_err_kpa.toFixed(4)} kPa; dew point max error ${ref.dew_max_abs_err_k.toFixed(4)} K; flags ${JSON.stringify(ref.qc_counts)}`,
    );
    expect(ref.present).toBe(true);
    expect(ref.chambers_with_inputs).toEqual([0, 1]);
    expect(ref.compared).toBeGreaterThan(8000);
    // Magnus/Alduchov–Eskridge vs Wagner–Pruss: within 0.3 % (and float32) for 0–50 °C.
    expect(ref.vpd_max_rel_err).toBeLessThan(0.003);
    expect(ref.dew_max_abs_err_k).toBeLessThan(0.06);
    expect(ref.vpd_qc_mismatches).toBe(0);
    expect(ref.dew_qc_mismatches).toBe(0);
    expect(ref.fill_where_no_input).toBe(true);
    expect(ref.no_input_chambers_missing).toBe(true);
    // Every flag occurs: good, held, uncertain, bad, missing, offline.
    for (const q of ['0', '1', '2', '3', '4', '5']) expect(ref.qc_counts[q], `flag ${q}`).toBeGreaterThan(0);

    const view = pythonView(path, ['time']).netcdf4;
    const vpd = view.vars.vapour_pressure_deficit!.attrs;
    expect(vpd).toMatchObject({
      standard_name: 'water_vapor_saturation_deficit_in_air',
      units: 'kPa',
      cell_methods: 'time: point',
      ancillary_variables: 'vapour_pressure_deficit_qc',
      source: 'derived from air_temperature relative_humidity',
    });
    expect(String(vpd.comment)).toMatch(/Alduchov & Eskridge \(1996\)/);
    expect(view.vars.dew_point_temperature!.attrs).toMatchObject({
      standard_name: 'dew_point_temperature',
      units: 'degree_Celsius',
      cell_methods: 'time: point',
    });
    expect(view.vars.firmware_build!.attrs.units).toBe('1');
    expect(view.globals).toMatchObject({
      institution: 'Test Ecotron',
      naming_authority: 'org.example.ecotron',
      keywords_vocabulary: 'CF:NetCDF COARDS Climate and Forecast Standard Names',
    });
    expect(String(view.globals.keywords)).toContain('water_vapor_saturation_deficit_in_air');
    const check = cfAcddCheck(path)[path]!;
    expect(check.errors).toEqual([]);
    // The completeness report (and octopus verify) cover what was received, not what was derived.
    const report = computeCompleteness(path);
    expect(Object.keys(report.chambers.c1!.variables).sort()).toEqual([
      'air_temperature',
      'co2',
      'door_open',
      'firmware_build',
      'relative_humidity',
    ]);
  });

  it('inputs in K and as a fraction are converted', () => {
    const sub = join(dir, 'kelvin');
    mkdirSync(sub, { recursive: true });
    const path = writeRun(sub, 'K', '1', (t, h) => [t + 273.15, h / 100]);
    const ref = derivedReference(path).derived;
    expect(ref.vpd_max_rel_err).toBeLessThan(0.003);
    expect(ref.dew_max_abs_err_k).toBeLessThan(0.06);
    expect(ref.vpd_qc_mismatches).toBe(0);
    expect(cfAcddCheck(path)[path]!.errors).toEqual([]);
  });

  it('the daily file: xarray opens it, cell_methods and bounds present, mean/min/max/count equal numpy over the raw file', async () => {
    const sub = join(dir, 'daily');
    mkdirSync(sub, { recursive: true });
    const path = writeRun(sub, 'degree_Celsius', 'percent', (t, h) => [t, h]);
    const r = await writeDailyFile(path);
    expect(r.path).toBe(dailyPath(path));
    expect(r.path.endsWith('derived-test_r001_daily.nc')).toBe(true);
    const ref = derivedReference(path, r.path);
    const d = ref.daily!;
    console.info(
      `daily: ${d.days} days, ${Object.keys(d.variables).length} variables, max relative difference to numpy ${d.max_rel_diff.toExponential(2)}, ${d.mismatches} mismatches`,
    );
    expect(d.days).toBe(4);
    expect(d.time[0]).toBe('2026-03-10T12:00:00.000000000');
    expect(d.time_bnds[0]).toEqual(['2026-03-10T00:00:00.000000000', '2026-03-11T00:00:00.000000000']);
    expect(d.bounds).toBe('time_bnds');
    expect(Object.keys(d.variables).sort()).toEqual([
      'air_temperature',
      'co2',
      'dew_point_temperature',
      'relative_humidity',
      'vapour_pressure_deficit',
    ]);
    for (const cm of Object.values(d.cell_methods))
      expect(cm).toEqual(['time: mean', 'time: minimum', 'time: maximum']);
    expect(d.mismatches).toBe(0);
    expect(d.max_rel_diff).toBeLessThan(1e-5);
    const check = cfAcddCheck(r.path)[r.path]!;
    expect(check.errors).toEqual([]);
  });

  it('a run file begun before derived variables existed resumes without them', () => {
    const vars = varsWith('degree_Celsius', 'percent');
    const p = join(dir, 'old.nc');
    const base = {
      id: 'x/r001',
      title: 'old',
      summary: 'old',
      chambers: ['c1'],
      startMs: T0,
      periodMs: PERIOD,
      creator_name: 'tests',
    };
    const a = RunFile.open(p, base, vars, { now: () => T0 + 86_400_000, fsync: false });
    a.add({ chamber: 'c1', tag: 'air_temperature', ts: T0, value: 20, q: 'good' });
    a.abandon();
    const derived = derivedInputs(vars, ['c1'], () => vars.map((v) => v.name));
    const b = RunFile.open(p, { ...base, derived }, vars, { now: () => T0 + 86_400_000, fsync: false });
    b.close(T0 + 10 * PERIOD);
    expect(pythonView(p, ['time']).netcdf4.vars.vapour_pressure_deficit).toBeUndefined();
  });
});
