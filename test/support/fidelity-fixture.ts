/**
 * A run file with scripted treatment fidelity (the fidelity tests and bench/fidelity.ts):
 * chambers c1, c2, c3 with air_temperature / air_temperature_setpoint (float) and
 * co2 / co2_setpoint (double) and their qc flags, 1 s records from T0, written hour by
 * hour with the archive's own schema (buildRunSchema) and writer. On target everywhere
 * (small wobble well inside the bands) except:
 *
 * - c2 air_temperature: +1.2 K for 7 minutes from slot EXC_START (420 slots), and a
 *   60 s spike of +0.9 K from slot SPIKE_START (shorter than any minimum duration);
 * - c3 air_temperature: 100 slots missing from slot GAP_START (qc 3, fill);
 * - c3 co2: +60 ppm for 400 s from slot HYST_START, then +47 ppm for 50 s (inside the
 *   band of 50 but beyond band − hysteresis 45: the excursion goes on), then on target;
 * - c1 co2_setpoint: held (qc 4) except every 600th slot.
 *
 * Every hour after the first repeats the pattern of the first hour.
 */
import { spawnSync } from 'node:child_process';
import { buildRunSchema, type ArchiveVar } from '../../src/collector/sinks/netcdf/cf.ts';
import { NC_DEFAULT_FILL } from '../../src/netcdf/format.ts';
import { NetcdfWriter } from '../../src/netcdf/writer.ts';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { DEBIAN_PYTHON } from './netcdf.ts';
import { join } from 'node:path';

export const FID_CHAMBERS = ['c1', 'c2', 'c3'];
export const FID_T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
export const EXC_START = 1200;
export const EXC_SLOTS = 420;
export const SPIKE_START = 2400;
export const SPIKE_SLOTS = 60;
export const GAP_START = 3000;
export const GAP_SLOTS = 100;
export const HYST_START = 500;
const HOUR = 3600;
const FILL = NC_DEFAULT_FILL.float;

export const FID_VARS: ArchiveVar[] = [
  {
    name: 'air_temperature',
    description: 'Air temperature',
    unit: 'degree_Celsius',
    standard_name: 'air_temperature',
    kind: 'float',
  },
  { name: 'air_temperature_setpoint', description: 'Air temperature setpoint', unit: 'degree_Celsius', kind: 'float' },
  { name: 'co2', description: 'CO2 mole fraction', unit: 'umol mol-1', kind: 'double' },
  { name: 'co2_setpoint', description: 'CO2 setpoint', unit: 'umol mol-1', kind: 'double' },
];

/** Profile tags of the fixture's chambers (the setpoint_of links) for a ToleranceSource. */
export const FID_TAGS = [
  { name: 'air_temperature' },
  { name: 'air_temperature_setpoint', role: 'setpoint', setpoint_of: 'air_temperature' },
  { name: 'co2' },
  { name: 'co2_setpoint', role: 'setpoint', setpoint_of: 'co2' },
];

const TEMP_SP = [20, 24, 20];
const CO2_SP = [800, 800, 400];

/** Writes `hours` hours of the scripted run (version 2 when large). */
export function writeFidelityRun(path: string, hours = 1, o: { headerReserve?: number; id?: string } = {}): void {
  const { schema } = buildRunSchema(
    {
      id: o.id ?? 'fidelity-test/r001',
      title: 'fidelity test',
      summary: 'scripted excursions',
      chambers: FID_CHAMBERS,
      startMs: FID_T0,
      periodMs: 1000,
      creator_name: 'tests',
    },
    FID_VARS,
  );
  const w = NetcdfWriter.create(path, schema, {
    version: hours > 24 ? 2 : 'auto',
    fsync: false,
    overwrite: true,
    ...(o.headerReserve ? { headerReserve: o.headerReserve } : {}),
  });
  const nc = FID_CHAMBERS.length;
  const time = new Float64Array(HOUR);
  const cols = {
    air_temperature: new Float32Array(HOUR * nc),
    air_temperature_qc: new Int8Array(HOUR * nc),
    air_temperature_setpoint: new Float32Array(HOUR * nc),
    air_temperature_setpoint_qc: new Int8Array(HOUR * nc),
    co2: new Float64Array(HOUR * nc),
    co2_qc: new Int8Array(HOUR * nc),
    co2_setpoint: new Float64Array(HOUR * nc),
    co2_setpoint_qc: new Int8Array(HOUR * nc),
  };
  // one hour of pattern, repeated
  for (let k = 0; k < HOUR; k++) {
    for (let c = 0; c < nc; c++) {
      const i = k * nc + c;
      const wobble = 0.1 * Math.sin(k / 50 + c);
      let t = TEMP_SP[c]! + wobble;
      if (c === 1 && k >= EXC_START && k < EXC_START + EXC_SLOTS) t = TEMP_SP[c]! + 1.2;
      if (c === 1 && k >= SPIKE_START && k < SPIKE_START + SPIKE_SLOTS) t = TEMP_SP[c]! + 0.9;
      const gap = c === 2 && k >= GAP_START && k < GAP_START + GAP_SLOTS;
      cols.air_temperature[i] = gap ? FILL : t;
      cols.air_temperature_qc[i] = gap ? 3 : 0;
      cols.air_temperature_setpoint[i] = TEMP_SP[c]!;
      cols.air_temperature_setpoint_qc[i] = 0;
      let co2 = CO2_SP[c]! + 5 * Math.cos(k / 30 + c);
      if (c === 2 && k >= HYST_START && k < HYST_START + 400) co2 = CO2_SP[c]! + 60;
      if (c === 2 && k >= HYST_START + 400 && k < HYST_START + 450) co2 = CO2_SP[c]! + 47;
      cols.co2[i] = co2;
      cols.co2_qc[i] = 0;
      cols.co2_setpoint[i] = CO2_SP[c]!;
      cols.co2_setpoint_qc[i] = c === 0 && k % 600 !== 0 ? 4 : 0;
    }
  }
  for (let h = 0; h < hours; h++) {
    for (let k = 0; k < HOUR; k++) time[k] = FID_T0 / 1000 + h * HOUR + k;
    w.appendColumns({ time, values: cols });
    if (h % 24 === 23) w.flush();
  }
  w.close();
}

export interface PyPlanEntry {
  measured: string;
  setpoint: string;
  band: number;
  min_duration_s: number;
  hysteresis: number;
}
export interface PyJudged {
  covered: number;
  slots: number;
  within: number;
  within_pct: number | null;
  coverage_pct: number;
  mean: number | null;
  rms: number | null;
  excursions: Array<[number, number, number]>;
}

/** The independent computation (xarray + numpy, test/support/fidelity_check.py). */
export interface PyFidelity {
  chambers: Record<string, Record<string, PyJudged>>;
  seconds: number;
  maxrss_mb: number;
}
export function pythonFidelity(path: string, plan: Record<string, PyPlanEntry[]>): PyFidelity {
  const r = spawnSync(DEBIAN_PYTHON, [join(PROJECT_ROOT, 'test', 'support', 'fidelity_check.py'), path], {
    input: JSON.stringify(plan),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`fidelity_check.py failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as PyFidelity;
}
