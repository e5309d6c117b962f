/**
 * Daily aggregates of a run file: `<run file name>_daily.nc` beside it, written at run
 * stop. CF-1.11 timeSeries like the run file, one record per UTC day:
 *
 * - time(time): the middle of the day, `bounds = "time_bnds"`, time_bnds(time, nv) the
 *   day's start and end (00:00 to 24:00 UTC; the first and last days of a run are partial,
 *   `<var>_count` says how many values were used);
 * - per chamber and variable: `<var>_mean`, `<var>_min`, `<var>_max` with
 *   `cell_methods = "time: mean"` / `"time: minimum"` / `"time: maximum"`, and
 *   `<var>_count` (standard_name number_of_observations) linked by ancillary_variables;
 * - the values used are those flagged good (0) or held (4) in `<var>_qc` (held: the last
 *   good value carried while the controller reported no change, which is what the chamber
 *   held); uncertain, bad, missing and offline slots are left out; a day without one is
 *   `_FillValue` with count 0;
 * - aggregated variables: the run file's float/double data variables that are physical
 *   quantities (units other than `1`; flags, codes and counters are not averaged),
 *   derived VPD and dew point included.
 *
 * The run file is read chunk by chunk, yielding between chunks (the collector is not
 * stalled by a long run), and the result written to a `.part` file renamed at the end.
 */
import { renameSync, rmSync } from 'node:fs';
import { basename } from 'node:path';
import { NcRunReader, type NcVariable } from '../../../netcdf/reader.ts';
import { NC_DEFAULT_FILL, attrValue, getValue, type AttrInput } from '../../../netcdf/format.ts';
import { NetcdfWriter, type NcVarSpec } from '../../../netcdf/writer.ts';
import { TIME_UNITS, isoTime } from './cf.ts';
import { QC } from './grid.ts';
import { VERSION } from '../../../core/version.ts';

const DAY_S = 86_400;

/** `<dir>/<name>.nc` → `<dir>/<name>_daily.nc`. */
export function dailyPath(runFile: string): string {
  return runFile.replace(/\.nc$/, '') + '_daily.nc';
}

export interface DailyResult {
  days: number;
  variables: number;
  path: string;
}

interface Agg {
  v: NcVariable;
  qc?: NcVariable;
  size: number;
  qsize: number;
}

/** The variables averaged: float/double data variables with units other than 1, no flags. */
function aggregated(r: NcRunReader): Agg[] {
  const out: Agg[] = [];
  for (const v of r.dataVariables()) {
    if (v.type !== 'float' && v.type !== 'double') continue;
    if (attrValue(v.attrs, 'flag_values') !== undefined) continue;
    if (!v.units || v.units === '1') continue;
    const qc = v.qc ? r.variables.get(v.qc) : undefined;
    out.push({ v, qc, size: v.type === 'double' ? 8 : 4, qsize: 1 });
  }
  return out;
}

export async function writeDailyFile(
  runFile: string,
  out = dailyPath(runFile),
  opts: { chunkBytes?: number; now?: () => number } = {},
): Promise<DailyResult> {
  const now = opts.now ?? Date.now;
  const r = NcRunReader.open(runFile);
  const part = `${out}.part`;
  let w: NetcdfWriter | undefined;
  try {
    const aggs = aggregated(r);
    const nc = r.chambers.length;
    const na = aggs.length;
    w = NetcdfWriter.create(part, dailySchema(r, aggs, runFile, now()), { overwrite: true, fsync: false });
    const sum = new Float64Array(na * nc);
    const min = new Float64Array(na * nc);
    const max = new Float64Array(na * nc);
    const cnt = new Int32Array(na * nc);
    const reset = () => {
      sum.fill(0);
      min.fill(Infinity);
      max.fill(-Infinity);
      cnt.fill(0);
    };
    reset();
    let day: number | undefined;
    let days = 0;
    const emit = (d: number) => {
      const values: Record<string, number[]> = {};
      aggs.forEach((a, i) => {
        const mean: number[] = [];
        const lo: number[] = [];
        const hi: number[] = [];
        const n: number[] = [];
        for (let c = 0; c < nc; c++) {
          const j = i * nc + c;
          const k = cnt[j]!;
          mean.push(k ? sum[j]! / k : NaN);
          lo.push(k ? min[j]! : NaN);
          hi.push(k ? max[j]! : NaN);
          n.push(k);
        }
        const fill = NC_DEFAULT_FILL[a.v.type];
        const f = (x: number[]) => x.map((y) => (Number.isNaN(y) ? fill : y));
        values[`${a.v.name}_mean`] = f(mean);
        values[`${a.v.name}_min`] = f(lo);
        values[`${a.v.name}_max`] = f(hi);
        values[`${a.v.name}_count`] = n;
      });
      values.time_bnds = [d * DAY_S, (d + 1) * DAY_S];
      w!.appendRecords([{ time: d * DAY_S + DAY_S / 2, values }]);
      days++;
      reset();
    };
    const timeVar = r.variables.get('time')!;
    for (const chunk of r.chunks(0, r.records, opts.chunkBytes ?? 4 << 20)) {
      const dv = new DataView(chunk.buf.buffer, chunk.buf.byteOffset, chunk.buf.length);
      const step = chunk.buf.length / chunk.count;
      for (let k = 0; k < chunk.count; k++) {
        const base = k * step;
        const d = Math.floor(dv.getFloat64(base + timeVar.at, false) / DAY_S);
        if (day === undefined) day = d;
        else if (d !== day) {
          emit(day);
          day = d;
        }
        for (let i = 0; i < na; i++) {
          const a = aggs[i]!;
          for (let c = 0; c < nc; c++) {
            if (a.qc) {
              const q = dv.getInt8(base + a.qc.at + c);
              if (q !== QC.good && q !== QC.held) continue;
            }
            const x = getValue(dv, base + a.v.at + c * a.size, a.v.type);
            if (x === a.v.fill || Number.isNaN(x)) continue;
            const j = i * nc + c;
            sum[j]! += x;
            if (x < min[j]!) min[j] = x;
            if (x > max[j]!) max[j] = x;
            cnt[j]!++;
          }
        }
      }
      await new Promise((res) => setImmediate(res));
    }
    if (day !== undefined) emit(day);
    w.close();
    w = undefined;
    renameSync(part, out);
    return { days, variables: na, path: out };
  } catch (err) {
    try {
      w?.close();
    } catch {
      /* reported below */
    }
    rmSync(part, { force: true });
    throw err;
  } finally {
    r.close();
  }
}

/** Schema of the daily file: the run file's global attributes, adapted; the aggregate variables. */
function dailySchema(r: NcRunReader, aggs: readonly Agg[], runFile: string, nowMs: number) {
  const globals: Record<string, AttrInput> = {};
  for (const a of r.header.attrs) globals[a.name] = { type: a.type, value: a.value };
  const g = (n: string) => {
    const v = r.globalAttr(n);
    return typeof v === 'string' ? v : '';
  };
  const created = isoTime(nowMs);
  const name = basename(runFile);
  Object.assign(globals, {
    title: `${g('title')} — daily aggregates`,
    summary: `Daily mean, minimum and maximum per chamber of ${name}. ${g('summary')}`,
    id: `${g('id')}/daily`,
    source: `${name} (run file), aggregated by octopus ${VERSION}`,
    processing_level:
      "daily mean, minimum and maximum per UTC day of the run file's values flagged good (0) or held (4); count of the values used in <var>_count",
    comment:
      'Days are UTC days [00:00, 24:00); the first and last days of a run are partial (see <var>_count). Only values whose <var>_qc is 0 (good) or 4 (held) are used; a day without any is _FillValue with count 0.',
    time_coverage_resolution: 'P1D',
    date_created: created,
    date_modified: created,
    date_metadata_modified: created,
    date_issued: created,
    history: `${g('history')}\n${created} daily aggregates of ${name} by octopus ${VERSION}`.trim(),
  } satisfies Record<string, AttrInput>);
  const strlen =
    r.header.dims.find((d) => d.name === 'name_strlen')?.size ??
    Math.max(1, ...r.chambers.map((c) => Buffer.byteLength(c)));
  const variables: NcVarSpec[] = [
    {
      name: 'time',
      type: 'double',
      dims: ['time'],
      attributes: {
        standard_name: 'time',
        long_name: 'time (middle of the UTC day)',
        units: TIME_UNITS,
        calendar: 'standard',
        axis: 'T',
        bounds: 'time_bnds',
      },
    },
    { name: 'time_bnds', type: 'double', dims: ['time', 'nv'] },
    {
      name: 'station_name',
      type: 'char',
      dims: ['chamber', 'name_strlen'],
      data: r.chambers,
      attributes: { cf_role: 'timeseries_id', long_name: 'chamber id' },
    },
  ];
  for (const { v } of aggs) {
    const sn = attrValue(v.attrs, 'standard_name');
    const long = v.longName ?? v.name;
    const common = (what: string, method: string): NcVarSpec => ({
      name: `${v.name}_${what}`,
      type: v.type,
      dims: ['time', 'chamber'],
      attributes: {
        ...(typeof sn === 'string' ? { standard_name: sn } : {}),
        long_name: `daily ${what === 'mean' ? 'mean' : what === 'min' ? 'minimum' : 'maximum'} of ${long}`,
        units: v.units!,
        _FillValue: NC_DEFAULT_FILL[v.type],
        cell_methods: `time: ${method}`,
        coordinates: 'station_name',
        ancillary_variables: `${v.name}_count`,
      },
    });
    variables.push(common('mean', 'mean'), common('min', 'minimum'), common('max', 'maximum'));
    variables.push({
      name: `${v.name}_count`,
      type: 'int',
      dims: ['time', 'chamber'],
      attributes: {
        standard_name: 'number_of_observations',
        long_name: `values of ${v.name} used per day (flag good or held)`,
        units: '1',
        coordinates: 'station_name',
      },
    });
  }
  return {
    globalAttributes: globals,
    dimensions: [
      { name: 'time', size: 'unlimited' as const },
      { name: 'chamber', size: r.chambers.length },
      { name: 'name_strlen', size: strlen },
      { name: 'nv', size: 2 },
    ],
    variables,
  };
}
