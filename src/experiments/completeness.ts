import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { BUFFER_READERS, isoSeconds, NC_TYPE_SIZE } from '../netcdf/format.ts';
import { isDerivedVariable, isMeasuredIn, NcRunReader, type NcVariable } from '../netcdf/reader.ts';

/**
 * Completeness of a run file, per chamber and variable, from its quality flags
 * (`<var>_qc`, flag_values 0 1 2 3 4 5 = good uncertain bad missing held offline):
 *
 * | qc | meaning | counted as |
 * |---|---|---|
 * | 0 | measured, good | measured |
 * | 1 | measured, uncertain | measured (and `uncertain`) |
 * | 2 | bad quality (value written) | missing, cause `bad_quality` |
 * | 3 | not received (fill) | missing, cause `not_received` |
 * | 4 | held: last good value carried | held |
 * | 5 | chamber offline / connection lost (fill) | missing, cause `offline` |
 *
 * A variable without a qc variable counts a fill value as `not_received`, anything
 * else as measured. A fill value under a qc flag that says a value is there (0, 1, 4)
 * counts as `not_received` too (a record deleted by hand). An unknown flag counts as
 * missing with cause `unknown`. Consecutive missing slots of one cause form a gap.
 */
export type GapCause = 'offline' | 'bad_quality' | 'not_received' | 'unknown';

export interface Gap {
  /** Time of the first and last missing slot (ISO 8601 UTC). */
  start: string;
  end: string;
  slots: number;
  cause: GapCause;
}

export interface VariableCompleteness {
  expected: number;
  measured: number;
  /** Of `measured`, with quality uncertain. */
  uncertain: number;
  held: number;
  missing: { total: number } & Record<GapCause, number>;
  /** (measured + held) / expected, 0…1 (1 for an empty run). */
  completeness: number;
  gaps: Gap[];
  /** Gaps left out of `gaps` (past MAX_GAPS). */
  gaps_omitted?: number;
}

export interface CompletenessReport {
  version: 1;
  file: string;
  generated_at: string;
  /** Global attribute `id` of the file (`<experiment>/<run>`), when present. */
  run?: string;
  slots: number;
  /** Time of the first and last slot (ISO), and the slot period in seconds (from the time axis). */
  start?: string;
  end?: string;
  period_s?: number;
  chambers: Record<string, { variables: Record<string, VariableCompleteness> }>;
  totals: { expected: number; measured: number; held: number; missing: number; completeness: number };
}

/** Gaps listed per chamber and variable; the rest are counted in `gaps_omitted`. */
export const MAX_GAPS = 1000;

/** Slot kinds: present ones first (≤ K_HELD), then the missing causes in CAUSES order. */
type Kind = number;
const K_MEASURED = 0,
  K_UNCERTAIN = 1,
  K_HELD = 2,
  K_OFFLINE = 3,
  K_NOT_RECEIVED = 5,
  K_UNKNOWN = 6;
const CAUSES: GapCause[] = ['offline', 'bad_quality', 'not_received', 'unknown'];
/** qc flag → kind (index = flag value). */
const KIND_OF_QC: Kind[] = [
  K_MEASURED,
  K_UNCERTAIN,
  K_OFFLINE + 1 /* bad_quality */,
  K_NOT_RECEIVED,
  K_HELD,
  K_OFFLINE,
];
const READERS = BUFFER_READERS;

const iso = isoSeconds;

interface Acc {
  v: VariableCompleteness;
  /** Slots per kind. */
  counts: Int32Array;
  open?: { kind: Kind; start: number; end: number; slots: number };
}

/** Computes the report of a run file, reading it record chunk by record chunk (memory does not grow with the file). */
export function computeCompleteness(runFilePath: string, opts: { chunkBytes?: number } = {}): CompletenessReport {
  const steps = completenessSteps(runFilePath, opts);
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
  }
}

/**
 * The same report, yielding to the event loop after every chunk: for a running process
 * (the archiver at run stop) that must keep acknowledging MQTT and polling PLCs while a
 * long run's file is read.
 */
export async function computeCompletenessAsync(
  runFilePath: string,
  opts: { chunkBytes?: number } = {},
): Promise<CompletenessReport> {
  const steps = completenessSteps(runFilePath, opts);
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** The report computation, one step per record chunk. */
function* completenessSteps(runFilePath: string, opts: { chunkBytes?: number }): Generator<void, CompletenessReport> {
  const r = NcRunReader.open(runFilePath);
  try {
    // Derived variables (VPD, dew point) are not received: their flags follow from their inputs'.
    const vars = r.dataVariables().filter((v) => !isDerivedVariable(v));
    const timeVar = r.variables.get('time')!;
    const accs: Acc[][] = r.chambers.map(() =>
      vars.map(() => ({ v: emptyVar(), counts: new Int32Array(K_UNKNOWN + 1) })),
    );
    const qcOf: Array<NcVariable | undefined> = vars.map((v) =>
      v.qc ? r.variables.get(v.qc) : r.variables.get(`${v.name}_qc`),
    );
    let first: number | undefined;
    let second: number | undefined;
    let last: number | undefined;
    // Hot loop: one pass per chunk, variable and chamber, reading the big-endian values in place.
    // One buffer for every chunk: each is done with before the next is read (the async variant yields between them, the buffer stays ours).
    for (const chunk of r.chunks(0, r.records, opts.chunkBytes, true)) {
      const { buf, count: n } = chunk;
      const step = n > 0 ? buf.length / n : 0;
      const times = chunk.times(timeVar);
      if (n > 0) {
        if (first === undefined) {
          first = times[0]!;
          if (n > 1) second = times[1]!;
        } else if (second === undefined) second = times[0]!;
        last = times[n - 1]!;
      }
      for (let vi = 0; vi < vars.length; vi++) {
        const v = vars[vi]!;
        const qv = qcOf[vi];
        const read = READERS[v.type];
        const size = NC_TYPE_SIZE[v.type];
        const fill = v.fill;
        for (let c = 0; c < r.chambers.length; c++) {
          const acc = accs[c]![vi]!;
          const vOff = v.at + (v.type === 'char' ? 0 : c * size);
          const qOff = qv ? qv.at + c : -1;
          const counts = acc.counts;
          for (let k = 0; k < n; k++) {
            const base = k * step;
            let isFill = false;
            if (read) {
              const raw = read(buf, base + vOff);
              isFill = raw === fill || raw !== raw;
            }
            let kind: Kind;
            if (qOff >= 0) {
              kind = KIND_OF_QC[buf.readInt8(base + qOff)] ?? K_UNKNOWN;
              if (isFill && kind <= K_HELD) kind = K_NOT_RECEIVED;
            } else kind = isFill ? K_NOT_RECEIVED : K_MEASURED;
            counts[kind]!++;
            const open = acc.open;
            if (kind <= K_HELD) {
              if (open) closeGap(acc);
            } else if (open && open.kind === kind) {
              open.end = times[k]!;
              open.slots++;
            } else {
              if (open) closeGap(acc);
              acc.open = { kind, start: times[k]!, end: times[k]!, slots: 1 };
            }
          }
        }
      }
      yield;
    }
    const chambers: CompletenessReport['chambers'] = {};
    const totals = { expected: 0, measured: 0, held: 0, missing: 0, completeness: 1 };
    r.chambers.forEach((name, c) => {
      const variables: Record<string, VariableCompleteness> = {};
      vars.forEach((v, vi) => {
        // A tag this chamber's controller does not have: nothing was expected.
        if (!isMeasuredIn(v, name)) return;
        const a = accs[c]![vi]!;
        closeGap(a);
        const n = a.counts;
        a.v.measured = n[K_MEASURED]! + n[K_UNCERTAIN]!;
        a.v.uncertain = n[K_UNCERTAIN]!;
        a.v.held = n[K_HELD]!;
        CAUSES.forEach((cause, i) => (a.v.missing[cause] = n[K_OFFLINE + i]!));
        a.v.missing.total = CAUSES.reduce((t, cause) => t + a.v.missing[cause], 0);
        a.v.expected = a.v.measured + a.v.held + a.v.missing.total;
        a.v.completeness = a.v.expected ? (a.v.measured + a.v.held) / a.v.expected : 1;
        variables[v.name] = a.v;
        totals.expected += a.v.expected;
        totals.measured += a.v.measured;
        totals.held += a.v.held;
        totals.missing += a.v.missing.total;
      });
      chambers[name] = { variables };
    });
    totals.completeness = totals.expected ? (totals.measured + totals.held) / totals.expected : 1;
    const id = r.globalAttr('id');
    return {
      version: 1,
      file: basename(runFilePath),
      generated_at: new Date().toISOString(),
      ...(typeof id === 'string' ? { run: id } : {}),
      slots: r.records,
      ...(first !== undefined ? { start: iso(first), end: iso(last!) } : {}),
      ...(first !== undefined && second !== undefined ? { period_s: Math.round((second - first) * 1000) / 1000 } : {}),
      chambers,
      totals,
    };
  } finally {
    r.close();
  }
}

function emptyVar(): VariableCompleteness {
  return {
    expected: 0,
    measured: 0,
    uncertain: 0,
    held: 0,
    missing: { total: 0, offline: 0, bad_quality: 0, not_received: 0, unknown: 0 },
    completeness: 1,
    gaps: [],
  };
}

function closeGap(a: Acc): void {
  const g = a.open;
  if (!g) return;
  a.open = undefined;
  if (a.v.gaps.length < MAX_GAPS)
    a.v.gaps.push({ start: iso(g.start), end: iso(g.end), slots: g.slots, cause: CAUSES[g.kind - K_OFFLINE]! });
  else a.v.gaps_omitted = (a.v.gaps_omitted ?? 0) + 1;
}

const CAUSE_TEXT: Record<GapCause, string> = {
  offline: 'chamber offline',
  bad_quality: 'bad quality',
  not_received: 'not received',
  unknown: 'unknown flag',
};
const pct = (x: number) => `${(Math.floor(x * 10000) / 100).toFixed(2)} %`;

/** The report as a markdown section (for the experiment README). */
export function completenessMarkdown(report: CompletenessReport, opts: { gapsPerVariable?: number } = {}): string {
  const maxGaps = opts.gapsPerVariable ?? 20;
  const out: string[] = [];
  out.push(`## Completeness${report.run ? ` of run ${report.run}` : ''}`, '');
  out.push(
    `File \`${report.file}\`: ${report.slots} slots${report.period_s ? ` of ${report.period_s} s` : ''}${report.start ? `, ${report.start} to ${report.end}` : ''}. ` +
      `Overall ${pct(report.totals.completeness)} of the expected values are present (measured or held); ${report.totals.missing} missing.`,
    '',
  );
  out.push(
    'A slot is *measured* when a sample fell into it, *held* when the last good value was carried (the source reports on change and the chamber was online), *missing* otherwise, with its cause.',
    '',
  );
  for (const [chamber, { variables }] of Object.entries(report.chambers)) {
    out.push(`### Chamber ${chamber}`, '');
    out.push('| variable | expected | measured | held | missing: offline | bad quality | not received | complete |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const [name, v] of Object.entries(variables)) {
      out.push(
        `| ${name} | ${v.expected} | ${v.measured} | ${v.held} | ${v.missing.offline} | ${v.missing.bad_quality} | ${v.missing.not_received + v.missing.unknown} | ${pct(v.completeness)} |`,
      );
    }
    out.push('');
    const gaps = Object.entries(variables).filter(([, v]) => v.gaps.length);
    if (gaps.length) {
      out.push('Gaps:', '');
      for (const [name, v] of gaps) {
        const shown = v.gaps
          .slice(0, maxGaps)
          .map(
            (g) =>
              `${g.start === g.end ? g.start : `${g.start} – ${g.end}`} (${g.slots} slot${g.slots === 1 ? '' : 's'}, ${CAUSE_TEXT[g.cause]})`,
          );
        const more = v.gaps.length - shown.length + (v.gaps_omitted ?? 0);
        out.push(`- **${name}**: ${shown.join('; ')}${more > 0 ? `; and ${more} more (completeness.json)` : ''}`);
      }
      out.push('');
    }
  }
  return out.join('\n');
}

/** Computes the report of a run file and writes `completeness.json` (atomically) into `outDir`; returns it. */
export function writeCompletenessReport(
  runFilePath: string,
  outDir: string,
  name = 'completeness.json',
): CompletenessReport {
  return saveReport(computeCompleteness(runFilePath), outDir, name);
}

/** writeCompletenessReport without blocking the event loop (see computeCompletenessAsync). */
export async function writeCompletenessReportAsync(
  runFilePath: string,
  outDir: string,
  name = 'completeness.json',
): Promise<CompletenessReport> {
  return saveReport(await computeCompletenessAsync(runFilePath), outDir, name);
}

function saveReport(report: CompletenessReport, outDir: string, name: string): CompletenessReport {
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, name);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  return report;
}
