import { NcRunReader } from '../netcdf/reader.ts';
import { runPlan, usableAt, type FidelityOptions } from './report.ts';
import { isoSeconds } from '../netcdf/format.ts';

export interface DeviationBucket {
  t: string;
  n: number;
  mean: number | null;
  min: number | null;
  max: number | null;
}
export interface DeviationSeries {
  var: string;
  units: string | null;
  records: number;
  bucket_records: number;
  /** Per chamber where the variable is judged: its setpoint, band, and the buckets of value − setpoint over the covered slots. */
  chambers: Record<string, { setpoint: string; band: number; buckets: DeviationBucket[] }>;
}

const iso = isoSeconds;

/**
 * value − setpoint of one controlled variable, decimated for a plot: at most `points`
 * buckets per chamber with the mean, min and max deviation of the covered slots (value and
 * setpoint both usable, the fidelity report's rule). Reads the file chunk by chunk,
 * yielding between chunks.
 */
export async function deviationSeries(
  path: string,
  variable: string,
  points: number,
  opts: Pick<FidelityOptions, 'source' | 'metadata'>,
): Promise<DeviationSeries | undefined> {
  const r = NcRunReader.open(path);
  try {
    const plan = runPlan(r, opts);
    const judged = r.chambers.flatMap((c, i) => {
      const p = plan[c]!.variables.find((v) => v.measured === variable);
      return p ? [{ c, i, p }] : [];
    });
    if (!judged.length) return undefined;
    const value = r.variables.get(variable)!;
    const time = r.variables.get('time')!;
    const qcOf = (name: string) => {
      const v = r.variables.get(name)!;
      return v.qc ? r.variables.get(v.qc) : r.variables.get(`${name}_qc`);
    };
    const n = r.records;
    const per = Math.max(1, Math.ceil(n / points));
    const nb = Math.ceil(n / per);
    const nj = judged.length;
    const sum = new Float64Array(nb * nj);
    const cnt = new Uint32Array(nb * nj);
    const min = new Float64Array(nb * nj).fill(Infinity);
    const max = new Float64Array(nb * nj).fill(-Infinity);
    const t0 = new Float64Array(nb);
    const cols = judged.map(({ i, p }) => {
      const sp = r.variables.get(p.setpoint)!;
      const vq = qcOf(variable);
      const sq = qcOf(p.setpoint);
      return {
        sp,
        vOff: value.at + i * sizeOf(value.type),
        sOff: sp.at + i * sizeOf(sp.type),
        vq: vq ? vq.at + i : -1,
        sq: sq ? sq.at + i : -1,
      };
    });
    for (const chunk of r.chunks(0, n)) {
      const step = chunk.count ? chunk.buf.length / chunk.count : 0;
      for (let k = 0; k < chunk.count; k++) {
        const rec = chunk.start + k;
        const bi = Math.floor(rec / per);
        if (rec % per === 0) t0[bi] = chunk.time(k, time);
        const base = k * step;
        for (let j = 0; j < nj; j++) {
          const c = cols[j]!;
          const v = usableAt(chunk.buf, value, base + c.vOff, c.vq >= 0 ? base + c.vq : -1);
          if (v !== v) continue;
          const s = usableAt(chunk.buf, c.sp, base + c.sOff, c.sq >= 0 ? base + c.sq : -1);
          if (s !== s) continue;
          const d = v - s;
          const x = bi * nj + j;
          sum[x] = sum[x]! + d;
          cnt[x] = cnt[x]! + 1;
          if (d < min[x]!) min[x] = d;
          if (d > max[x]!) max[x] = d;
        }
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const chambers: DeviationSeries['chambers'] = {};
    judged.forEach(({ c, p }, j) => {
      chambers[c] = {
        setpoint: p.setpoint,
        band: p.tolerance.band,
        buckets: Array.from({ length: nb }, (_, bi) => {
          const x = bi * nj + j;
          const k = cnt[x]!;
          return {
            t: iso(t0[bi]!),
            n: k,
            mean: k ? sum[x]! / k : null,
            min: k ? min[x]! : null,
            max: k ? max[x]! : null,
          };
        }),
      };
    });
    return { var: variable, units: value.units ?? null, records: n, bucket_records: per, chambers };
  } finally {
    r.close();
  }
}

const sizeOf = (t: string) => (t === 'double' ? 8 : t === 'float' || t === 'int' ? 4 : t === 'short' ? 2 : 1);
