/**
 * Derived variables and daily file at run stop: the cost of computing VPD and dew point
 * over a whole run file (the derive pass of derived.ts over every record: read, compute,
 * write back) plus writing the daily aggregates file (daily.ts), against numpy computing
 * the same (bench/derived_numpy.py: netCDF4 read + vectorised VPD, dew point, flags and
 * daily mean/min/max/count) measured in the same run. Agreement is checked first: the
 * numpy values must equal what Octopus wrote (derived values, flags, every daily
 * statistic) before any figure is printed.
 *
 * The file: OCTOPUS_BENCH_DERIVED_DAYS days (default 30) at 1 Hz × 4 chambers, air
 * temperature, relative humidity, CO2 and PAR with their flags (1 % missing, some
 * uncertain, one chamber held between changes, one offline hour).
 *
 *   node bin/run-ts.js bench/derived.ts
 *   npm run bench -- derived
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildRunSchema, type ArchiveVar } from '../src/collector/sinks/netcdf/cf.ts';
import { dailyPath, writeDailyFile } from '../src/collector/sinks/netcdf/daily.ts';
import { derivedComputer, derivedInputs } from '../src/collector/sinks/netcdf/derived.ts';
import { NetcdfWriter } from '../src/netcdf/writer.ts';
import type { BenchSummary } from './modbus.ts';

const HOUR = 3600;
const T0 = Date.UTC(2026, 0, 1);
const FILL = 9.969209968386869e36;
const CHAMBERS = ['c1', 'c2', 'c3', 'c4'];
const VARS: ArchiveVar[] = [
  {
    name: 'air_temperature',
    description: 'Air temperature',
    unit: 'degree_Celsius',
    standard_name: 'air_temperature',
    kind: 'float',
  },
  {
    name: 'relative_humidity',
    description: 'Relative humidity',
    unit: 'percent',
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
  {
    name: 'par',
    description: 'PAR',
    unit: 'umol m-2 s-1',
    standard_name: 'surface_downwelling_photosynthetic_photon_flux_in_air',
    kind: 'float',
  },
];

function writeInputs(path: string, days: number) {
  const derived = derivedInputs(VARS, CHAMBERS, () => VARS.map((v) => v.name))!;
  const { schema } = buildRunSchema(
    {
      id: 'bench/r001',
      title: 'derived bench',
      summary: 'bench',
      chambers: CHAMBERS,
      startMs: T0,
      periodMs: 1000,
      creator_name: 'bench',
      derived,
    },
    VARS,
  );
  const w = NetcdfWriter.create(path, schema, {
    version: 2,
    fsync: false,
    overwrite: true,
    expectedBytes: days * 86_400 * 200,
  });
  const nc = CHAMBERS.length;
  const time = new Float64Array(HOUR);
  const vals = VARS.map(() => new Float32Array(HOUR * nc));
  const qcs = VARS.map(() => new Int8Array(HOUR * nc));
  for (let h = 0; h < days * 24; h++) {
    for (let k = 0; k < HOUR; k++) {
      const s = h * HOUR + k;
      time[k] = T0 / 1000 + s;
      const dayFrac = (s % 86_400) / 86_400;
      for (let c = 0; c < nc; c++) {
        const offline = c === 3 && h === 30;
        VARS.forEach((_v, i) => {
          const missing = offline || (s * 7919 + i * 104_729 + c * 31) % 100 === 0;
          const x =
            i === 0
              ? 22 + 5 * Math.sin(2 * Math.PI * dayFrac) + c * 0.5 + (s % 13) * 0.01
              : i === 1
                ? 60 - 15 * Math.sin(2 * Math.PI * dayFrac) + (s % 7) * 0.1
                : i === 2
                  ? 420 + (s % 600) / 10
                  : Math.max(0, 800 * Math.sin(2 * Math.PI * dayFrac));
          vals[i]![k * nc + c] = missing ? FILL : x;
          qcs[i]![k * nc + c] = offline
            ? 5
            : missing
              ? 3
              : c === 1 && i === 0 && s % 60 !== 0
                ? 4
                : s % 997 === 0
                  ? 1
                  : 0;
        });
      }
    }
    const values: Record<string, ArrayLike<number>> = {};
    VARS.forEach((v, i) => {
      values[v.name] = vals[i]!;
      values[`${v.name}_qc`] = qcs[i]!;
    });
    w.appendColumns({ time, values });
    w.flush();
  }
  w.close();
  return derived;
}

/** The derive pass over every record of the file, as the archive does when it writes records. */
function derivePass(path: string, derived: NonNullable<ReturnType<typeof derivedInputs>>): void {
  const w = NetcdfWriter.resume(path, { fsync: false });
  try {
    const derive = derivedComputer(derived, (n) => w.recordVar(n), w.layout.recsize);
    const per = Math.max(1, Math.floor((4 << 20) / w.layout.recsize));
    for (let k = 0; k < w.recordCount; k += per) {
      const n = Math.min(per, w.recordCount - k);
      const rec = w.readRecordBytes(k, n);
      derive(rec);
      w.writeRecordBytes(k, rec);
    }
  } finally {
    w.close();
  }
}

export async function benchDerived(): Promise<{ name: string; lines: string[]; summary: BenchSummary }> {
  const days = Number(process.env.OCTOPUS_BENCH_DERIVED_DAYS ?? 30);
  const dir = mkdtempSync(join(tmpdir(), 'octopus-bench-derived-'));
  const lines: string[] = [];
  const say = (l: string) => {
    lines.push(l);
    process.stdout.write(`${l}\n`);
  };
  try {
    const path = join(dir, 'bench_r001.nc');
    const w0 = performance.now();
    const derived = writeInputs(path, days);
    say(
      `derived bench: ${days} day(s) × 1 Hz × ${CHAMBERS.length} chambers × ${VARS.length} variables (+ qc, + derived): ${(statSync(path).size / 2 ** 20).toFixed(0)} MiB written in ${((performance.now() - w0) / 1000).toFixed(1)} s`,
    );
    const t1 = performance.now();
    derivePass(path, derived);
    const tDerive = (performance.now() - t1) / 1000;
    const t2 = performance.now();
    const daily = await writeDailyFile(path);
    const tDaily = (performance.now() - t2) / 1000;
    const ours = tDerive + tDaily;
    const py = spawnSync(
      '/usr/bin/python3',
      [fileURLToPath(new URL('derived_numpy.py', import.meta.url)), path, dailyPath(path)],
      { encoding: 'utf8', maxBuffer: 1 << 20 },
    );
    if (py.status !== 0) throw new Error(`derived_numpy.py failed: ${py.stderr}`);
    const np = JSON.parse(py.stdout) as {
      read_s: number;
      compute_s: number;
      records: number;
      days: number;
      vpd_max_abs_diff: number;
      qc_mismatches: number;
      daily_max_rel_diff: number;
      daily_mismatches: number;
    };
    // Agreement first.
    const agree =
      np.vpd_max_abs_diff < 1e-5 &&
      np.qc_mismatches === 0 &&
      np.daily_mismatches === 0 &&
      np.daily_max_rel_diff < 1e-5 &&
      np.days === daily.days;
    say(
      `  agreement with numpy: VPD max |diff| ${np.vpd_max_abs_diff.toExponential(1)} kPa, flag mismatches ${np.qc_mismatches}, daily max rel. diff ${np.daily_max_rel_diff.toExponential(1)}, daily mismatches ${np.daily_mismatches}, ${np.days} days: ${agree ? 'ok' : 'DISAGREE'}`,
    );
    if (!agree) throw new Error('Octopus and numpy disagree: no figure');
    const base = np.read_s + np.compute_s;
    say(
      `  octopus: derive pass ${tDerive.toFixed(2)} s (${(np.records / tDerive / 1e6).toFixed(2)} M records/s) + daily file ${tDaily.toFixed(2)} s (${daily.variables} variables) = ${ours.toFixed(2)} s`,
    );
    say(`  numpy  : read ${np.read_s.toFixed(2)} s + compute ${np.compute_s.toFixed(2)} s = ${base.toFixed(2)} s`);
    const ratio = ours / base;
    say(`  ratio octopus/numpy: ${ratio.toFixed(2)}× (goal ≤ 3×, and < 60 s for 30 days at stop)`);
    const per30 = (ours * 30) / days;
    return {
      name: 'derived',
      lines,
      summary: {
        figure: `${ours.toFixed(2)} s for ${days} d (derive ${tDerive.toFixed(2)} + daily ${tDaily.toFixed(2)})`,
        baseline: `numpy ${base.toFixed(2)} s`,
        ratio: `${ratio.toFixed(2)}×`,
        goal: '≤ 3× numpy, 30 d < 60 s',
        ok: ratio <= 3 && per30 < 60,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await benchDerived();
