import { NetcdfWriter, readNetcdfHeader, type NcRecord, type NcSchema, type NcVarSpec } from '../netcdf/writer.ts';
import { isoSeconds, type AttrInput, type NcAttr } from '../netcdf/format.ts';
import type { NcRunReader, NcVariable } from '../api/nc-reader.ts';

const attrs = (list: NcAttr[]): Record<string, AttrInput> =>
  Object.fromEntries(list.map((a) => [a.name, { type: a.type, value: a.value }]));
const iso = isoSeconds;

/**
 * Writes a subset (variables and their quality flags, records [a, b)) of a run file to
 * `out`, keeping the source's dimensions, attributes and types (so it stays CF/ACDD),
 * with time_coverage_* and history updated. Returns the number of records written.
 */
export function writeSubsetNc(
  source: string,
  reader: NcRunReader,
  vars: NcVariable[],
  a: number,
  b: number,
  out: string,
  what: string,
): number {
  const h = readNetcdfHeader(source);
  const keep = new Set(['time', 'station_name', ...vars.flatMap((v) => (v.qc ? [v.name, v.qc] : [v.name]))]);
  const variables: NcVarSpec[] = h.vars
    .filter((v) => keep.has(v.name))
    .map((v) => ({
      name: v.name,
      type: v.type,
      dims: v.dimIds.map((i) => h.dims[i]!.name),
      attributes: attrs(v.attrs),
      ...(v.name === 'station_name' ? { data: reader.chambers } : {}),
    }));
  const global = attrs(h.attrs);
  const history = h.attrs.find((x) => x.name === 'history')?.value;
  global.history = `${new Date().toISOString()} octopus web: subset ${what}${typeof history === 'string' && history ? `\n${history}` : ''}`;
  if (b > a) {
    global.time_coverage_start = iso(reader.timeAt(a));
    global.time_coverage_end = iso(reader.timeAt(b - 1));
  }
  const schema: NcSchema = {
    globalAttributes: global,
    dimensions: h.dims.map((d) => ({ name: d.name, size: d.size === 0 ? 'unlimited' : d.size })),
    variables,
  };
  const w = NetcdfWriter.create(out, schema, { fsync: false, overwrite: true });
  const time = reader.variables.get('time')!;
  const cols = [...keep]
    .filter((n) => n !== 'time' && n !== 'station_name')
    .map((n) => reader.variables.get(n)!)
    .filter(Boolean);
  const nc = reader.chambers.length;
  let n = 0;
  try {
    for (const chunk of reader.chunks(a, b, 512 * 1024)) {
      const recs: NcRecord[] = [];
      for (let k = 0; k < chunk.count; k++) {
        const values: NcRecord['values'] = {};
        for (const v of cols) {
          const row: Array<number | null> = new Array(nc);
          for (let c = 0; c < nc; c++) {
            const x = chunk.value(k, v, c);
            row[c] = Number.isNaN(x) ? null : x;
          }
          values[v.name] = row;
        }
        recs.push({ time: chunk.time(k, time), values });
      }
      w.appendRecords(recs);
      n += recs.length;
    }
  } finally {
    w.close();
  }
  return n;
}
