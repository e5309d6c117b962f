import type { InfluxConfig } from '../config/instance-schema.ts';
import { isDerivedVariable, NcRunReader, type NcVariable } from '../netcdf/reader.ts';

/**
 * Compares a run file with the database the collector wrote (InfluxDB sink) over the
 * run's window (its slots, clamped to the run's start and stop instants when given),
 * slot by slot: for every chamber, variable and slot, the database samples
 * of quality good/uncertain whose time is nearest the slot time (within half a period)
 * are the candidates; the file agrees when its value equals one of them (float32
 * variables compared as float32). Differences:
 *
 * - `missing_in_file`: the database has a sample for the slot, the file has none
 *   (fill, qc missing/offline);
 * - `missing_in_db`: the file has a measured value (qc good/uncertain) and the database
 *   no sample for the slot;
 * - `value_differs`: both have one and they differ (measured or held slots).
 *
 * Slots of bad quality (qc 2) are not compared (the database keeps bad samples without a
 * numeric value). Reads the file and queries the database window by window (`windowSlots`
 * records at a time), so memory does not grow with the run.
 *
 * Queries: VictoriaMetrics `/api/v1/export` (series `<measurement>_value`), or InfluxQL
 * `/query` (InfluxDB 1.x, and 2.x through its v1 compatibility API) when `influx.api` is
 * `v1`, `influx.database` is set, or the export endpoint answers 404.
 */
export type DifferenceKind = 'missing_in_file' | 'missing_in_db' | 'value_differs';

export interface Difference {
  chamber: string;
  variable: string;
  time: string;
  kind: DifferenceKind;
  file: number | null;
  db: number | null;
  qc?: number;
}

export interface DatabaseComparison {
  target: string;
  query: 'victoriametrics-export' | 'influxql';
  from: string;
  to: string;
  /** Slot values compared (chamber × variable × slot). */
  compared: number;
  /** Database samples read. */
  samples: number;
  differences_total: number;
  by_kind: Record<DifferenceKind, number>;
  /** Up to `maxListed` differences, in file order. */
  differences: Difference[];
}

interface DbSample {
  chamber: string;
  tag: string;
  ts: number;
  value: number;
}

type Query = (chambers: string[], fromMs: number, toMs: number) => AsyncGenerator<DbSample>;

const iso = (ms: number) => new Date(Math.round(ms)).toISOString().replace('.000Z', 'Z');

export async function compareWithDatabase(
  runFilePath: string,
  cfg: InfluxConfig,
  token: string | undefined,
  opts: {
    windowSlots?: number;
    maxListed?: number;
    fetch?: typeof fetch;
    /** The run's start and stop instants (ms): database samples outside are not the run's (the first and last slots are partial). */
    runStartMs?: number;
    runStopMs?: number;
  } = {},
): Promise<DatabaseComparison> {
  if (!cfg.url) throw new Error('influx.url is not set: nothing to compare with');
  const f = opts.fetch ?? fetch;
  const maxListed = opts.maxListed ?? 10_000;
  const r = NcRunReader.open(runFilePath);
  try {
    // Derived variables (VPD, dew point) are not received: their flags follow from their inputs'.
    const vars = r.dataVariables().filter((v) => !isDerivedVariable(v));
    const timeVar = r.variables.get('time')!;
    const qcOf = vars.map((v) => (v.qc ? r.variables.get(v.qc) : r.variables.get(`${v.name}_qc`)));
    const varIndex = new Map(vars.map((v, i) => [v.name, i]));
    const chamberIndex = new Map(r.chambers.map((c, i) => [c, i]));
    const nC = r.chambers.length;
    const nV = vars.length;
    const period = r.records > 1 ? (r.timeAt(1) - r.timeAt(0)) * 1000 : 1000;
    const { query, kind, target } = await chooseQuery(cfg, token, f);
    const out: DatabaseComparison = {
      target,
      query: kind,
      from: '',
      to: '',
      compared: 0,
      samples: 0,
      differences_total: 0,
      by_kind: { missing_in_file: 0, missing_in_db: 0, value_differs: 0 },
      differences: [],
    };
    if (r.records === 0) return out;
    const lo = Math.max(r.timeAt(0) * 1000 - period / 2, opts.runStartMs ?? -Infinity);
    const hi = Math.min(r.timeAt(r.records - 1) * 1000 + period / 2, opts.runStopMs ?? Infinity);
    out.from = iso(lo);
    out.to = iso(hi);
    const windowSlots = opts.windowSlots ?? Math.max(1, Math.floor(2_000_000 / Math.max(1, nC * nV)));
    for (let from = 0; from < r.records; from += windowSlots) {
      const to = Math.min(r.records, from + windowSlots);
      const t0 = r.timeAt(from) * 1000;
      const n = to - from;
      // Nearest database candidates per (slot, chamber, variable): distance and values at that distance.
      const dist = new Float64Array(n * nC * nV).fill(Infinity);
      const vals = new Map<number, number[]>();
      for await (const s of query(
        r.chambers,
        Math.max(lo, t0 - period / 2),
        Math.min(hi, r.timeAt(to - 1) * 1000 + period / 2),
      )) {
        if (s.ts < lo || s.ts > hi) continue;
        out.samples++;
        const c = chamberIndex.get(s.chamber);
        const v = varIndex.get(s.tag);
        if (c === undefined || v === undefined) continue;
        const k = Math.round((s.ts - t0) / period);
        if (k < 0 || k >= n) continue;
        const d = Math.abs(s.ts - (t0 + k * period));
        const i = (k * nC + c) * nV + v;
        if (d < dist[i]!) {
          dist[i] = d;
          vals.set(i, [s.value]);
        } else if (d === dist[i]) vals.get(i)!.push(s.value);
      }
      let k = 0;
      for (const chunk of r.chunks(from, to, undefined, true)) {
        for (let j = 0; j < chunk.count; j++, k++) {
          const tMs = chunk.time(j, timeVar) * 1000;
          for (let c = 0; c < nC; c++) {
            for (let vi = 0; vi < nV; vi++) {
              const v = vars[vi]!;
              const qv = qcOf[vi];
              const q = qv ? chunk.raw(j, qv, c) : undefined;
              if (q === 2) continue;
              out.compared++;
              const fileVal = chunk.value(j, v, c);
              const db = vals.get((k * nC + c) * nV + vi);
              const present = !Number.isNaN(fileVal) && q !== 3 && q !== 5;
              let diff: DifferenceKind | undefined;
              if (!present) {
                if (db) diff = 'missing_in_file';
              } else if (!db) {
                if (q !== 4) diff = 'missing_in_db';
              } else if (!db.some((x) => same(v, fileVal, x))) diff = 'value_differs';
              if (!diff) continue;
              out.differences_total++;
              out.by_kind[diff]++;
              if (out.differences.length < maxListed) {
                out.differences.push({
                  chamber: r.chambers[c]!,
                  variable: v.name,
                  time: iso(tMs),
                  kind: diff,
                  file: Number.isNaN(fileVal) ? null : fileVal,
                  db: db ? db[0]! : null,
                  ...(q !== undefined ? { qc: q } : {}),
                });
              }
            }
          }
        }
      }
    }
    return out;
  } finally {
    r.close();
  }
}

function same(v: NcVariable, file: number, db: number): boolean {
  if (v.type === 'float') return Math.fround(db) === file;
  if (v.type === 'double') return db === file || Math.abs(db - file) <= 1e-12 * Math.max(1, Math.abs(file));
  return db === file;
}

async function chooseQuery(
  cfg: InfluxConfig,
  token: string | undefined,
  f: typeof fetch,
): Promise<{ query: Query; kind: DatabaseComparison['query']; target: string }> {
  const base = cfg.url!.replace(/\/$/, '');
  const influxql = {
    query: influxQl(cfg, token, f),
    kind: 'influxql' as const,
    target: `${base} InfluxQL database "${cfg.database ?? cfg.bucket}"`,
  };
  if (cfg.api === 'v1' || cfg.database !== undefined) return influxql;
  const probe = await f(
    `${base}/api/v1/export?${new URLSearchParams({ 'match[]': `{__name__="${cfg.measurement}_value",chamber="-"}`, start: '0', end: '1' })}`,
    { headers: authHeader(token) },
  ).catch((err: Error) => {
    throw new Error(`cannot reach ${base}: ${(err.cause as Error | undefined)?.message ?? err.message}`);
  });
  await probe.arrayBuffer();
  if (probe.status === 404) return influxql;
  if (!probe.ok) throw new Error(`${base}/api/v1/export: HTTP ${probe.status}`);
  return {
    query: vmExport(cfg, token, f),
    kind: 'victoriametrics-export',
    target: `${base} (VictoriaMetrics export, series ${cfg.measurement}_value)`,
  };
}

const authHeader = (token: string | undefined): Record<string, string> =>
  token && !token.includes(':') ? { authorization: `Token ${token}` } : {};
const regexEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/"]/g, '\\$&');

function vmExport(cfg: InfluxConfig, token: string | undefined, f: typeof fetch): Query {
  const base = cfg.url!.replace(/\/$/, '');
  return async function* (chambers, fromMs, toMs) {
    const match = `{__name__="${cfg.measurement}_value",chamber=~"${chambers.map(regexEscape).join('|')}",q=~"good|uncertain"}`;
    const res = await f(
      `${base}/api/v1/export?${new URLSearchParams({ 'match[]': match, start: String(fromMs / 1000), end: String(toMs / 1000) })}`,
      { headers: authHeader(token) },
    );
    if (!res.ok) throw new Error(`${base}/api/v1/export: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
    for await (const line of lines(res)) {
      const s = JSON.parse(line) as { metric: Record<string, string>; values: number[]; timestamps: number[] };
      const { chamber, tag } = s.metric;
      if (!chamber || !tag) continue;
      for (let i = 0; i < s.timestamps.length; i++)
        if (s.timestamps[i]! >= fromMs && s.timestamps[i]! <= toMs)
          yield { chamber, tag, ts: s.timestamps[i]!, value: s.values[i]! };
    }
  };
}

function influxQl(cfg: InfluxConfig, token: string | undefined, f: typeof fetch): Query {
  const base = cfg.url!.replace(/\/$/, '');
  const db = cfg.database ?? (cfg.bucket ?? '').split('/')[0]!;
  const ident = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const lit = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return async function* (chambers, fromMs, toMs) {
    const q = `SELECT "value" FROM ${ident(cfg.measurement)} WHERE time >= ${Math.floor(fromMs)}ms AND time <= ${Math.ceil(toMs)}ms AND (${chambers.map((c) => `"chamber" = ${lit(c)}`).join(' OR ')}) AND ("q" = 'good' OR "q" = 'uncertain') GROUP BY "chamber", "tag"`;
    const params = new URLSearchParams({
      db,
      q,
      epoch: 'ms',
      ...(cfg.retention_policy ? { rp: cfg.retention_policy } : {}),
    });
    const [u, ...p] = (token ?? '').split(':');
    if (token && p.length) {
      params.set('u', u!);
      params.set('p', p.join(':'));
    }
    const res = await f(`${base}/query?${params}`, { headers: authHeader(token) });
    const body = (await res.json()) as {
      error?: string;
      results?: Array<{
        error?: string;
        series?: Array<{ tags: Record<string, string>; values: Array<[number, number | boolean | null]> }>;
      }>;
    };
    const err = body.error ?? body.results?.find((x) => x.error)?.error;
    if (!res.ok || err) throw new Error(`${base}/query: HTTP ${res.status} ${err ?? ''}`);
    for (const s of body.results?.[0]?.series ?? []) {
      for (const [ts, value] of s.values) {
        if (value === null) continue;
        yield {
          chamber: s.tags.chamber!,
          tag: s.tags.tag!,
          ts,
          value: typeof value === 'boolean' ? Number(value) : value,
        };
      }
    }
  };
}

async function* lines(res: Response): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    rest += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, i);
      rest = rest.slice(i + 1);
      if (line) yield line;
    }
  }
  if (rest.trim()) yield rest;
}
