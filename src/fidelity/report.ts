import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { QC } from '../collector/sinks/netcdf/grid.ts';
import type { ExperimentMetadata } from '../experiments/schema.ts';
import { BUFFER_READERS, isoSeconds, type NcType } from '../netcdf/format.ts';
import { NcRunReader, type NcVariable } from '../netcdf/reader.ts';
import { planFidelity, type FidelityPlan, type PlannedVariable, type ToleranceSource } from './plan.ts';
import type {
  ChamberFidelity,
  Excursion,
  FidelityReport,
  GroupVariable,
  TreatmentGroup,
  VariableFidelity,
} from './report-schema.ts';

/**
 * Treatment fidelity of a run file: per chamber and controlled variable, how closely the
 * value followed its setpoint (docs/experiments.md, "Treatment fidelity").
 *
 * A slot is *covered* when value and setpoint are both usable: not fill/NaN and quality
 * good, uncertain or held (qc 0, 1, 4; a variable without a qc variable: not fill).
 * Over the covered slots, d = value − setpoint:
 *
 * - within tolerance: |d| ≤ band; `within_tolerance_percent` = 100 · within / covered;
 * - `mean_deviation` = Σd / covered, `rms_deviation` = √(Σd² / covered);
 * - `coverage_percent` = 100 · covered / slots.
 *
 * An **excursion** starts at a covered slot with |d| > band and goes on through the
 * covered slots with |d| > band − hysteresis; it ends at its last such slot, before the
 * first covered slot back within band − hysteresis, or before a stretch of uncovered
 * slots longer than max(min_duration_s, period) (its end is then its last covered slot).
 * Its duration is end − start + one period; it counts when the duration is at least
 * `min_duration_s`. Shorter ones only lower the within-tolerance percentage.
 *
 * The file is read chunk by chunk (memory does not grow with the run), yielding to the
 * event loop between chunks in the async form.
 */

/** Excursions listed per chamber and variable; the rest are counted in `excursions_omitted`. */
export const MAX_EXCURSIONS = 200;

/** Quality flags whose value is usable for fidelity: good, uncertain, held. */
const USABLE_QC = new Uint8Array(256);
for (const q of [QC.good, QC.uncertain, QC.held]) USABLE_QC[q] = 1;

const READERS = BUFFER_READERS;

const iso = isoSeconds;

export interface FidelityOptions {
  /** The configured chambers' tolerances (profile and chamber tiers); chambers it does not know are judged from the file's attributes. */
  source?: ToleranceSource;
  /** The experiment metadata: treatments (names, tolerance tier). */
  metadata?: Pick<ExperimentMetadata, 'treatments'>;
  /** The run is still recording. */
  open?: boolean;
  chunkBytes?: number;
  now?: () => Date;
}

/** One judged (chamber, variable) pair and its running sums. */
class Judge {
  covered = 0;
  within = 0;
  sum = 0;
  sumSq = 0;
  maxAbs = 0;
  excursions = 0;
  excursionTime = 0;
  longest: Excursion | null = null;
  list: Excursion[] = [];
  omitted = 0;
  // the excursion being followed
  inExc = false;
  excStart = 0;
  excLast = 0;
  excSlots = 0;
  excPeak = 0;
  lastCovered = -Infinity;
  readonly enterAbove: number;
  readonly stayAbove: number;
  readonly maxGap: number;

  constructor(
    readonly chamber: string,
    readonly c: number,
    readonly plan: PlannedVariable,
    readonly value: NcVariable,
    readonly setpoint: NcVariable,
    readonly valueQc: NcVariable | undefined,
    readonly setpointQc: NcVariable | undefined,
    readonly period: number,
  ) {
    const t = plan.tolerance;
    this.enterAbove = t.band;
    this.stayAbove = t.band - t.hysteresis;
    this.maxGap = Math.max(t.min_duration_s, period);
  }

  /** One covered slot at time t with deviation d. */
  covered1(t: number, d: number): void {
    this.covered++;
    const a = d < 0 ? -d : d;
    if (a <= this.enterAbove) this.within++;
    this.sum += d;
    this.sumSq += d * d;
    if (a > this.maxAbs) this.maxAbs = a;
    if (this.inExc && t - this.lastCovered - this.period > this.maxGap + 1e-9) this.endExcursion();
    if (this.inExc) {
      if (a > this.stayAbove) {
        this.excLast = t;
        this.excSlots++;
        if (a > Math.abs(this.excPeak)) this.excPeak = d;
      } else this.endExcursion();
    } else if (a > this.enterAbove) {
      this.inExc = true;
      this.excStart = t;
      this.excLast = t;
      this.excSlots = 1;
      this.excPeak = d;
    }
    this.lastCovered = t;
  }

  endExcursion(): void {
    if (!this.inExc) return;
    this.inExc = false;
    const duration = Math.round((this.excLast - this.excStart + this.period) * 1e6) / 1e6;
    if (duration + 1e-9 < this.plan.tolerance.min_duration_s) return;
    const e: Excursion = {
      start: iso(this.excStart),
      end: iso(this.excLast),
      duration_s: duration,
      slots: this.excSlots,
      peak_deviation: this.excPeak,
    };
    this.excursions++;
    this.excursionTime += duration;
    if (!this.longest || duration > this.longest.duration_s) this.longest = e;
    if (this.list.length < MAX_EXCURSIONS) this.list.push(e);
    else this.omitted++;
  }

  result(slots: number): VariableFidelity {
    this.endExcursion();
    const n = this.covered;
    return {
      setpoint: this.plan.setpoint,
      ...(this.value.units ? { units: this.value.units } : {}),
      tolerance: this.plan.tolerance,
      slots,
      covered: n,
      within: this.within,
      coverage_percent: slots ? (100 * n) / slots : 0,
      within_tolerance_percent: n ? (100 * this.within) / n : null,
      mean_deviation: n ? this.sum / n : null,
      rms_deviation: n ? Math.sqrt(this.sumSq / n) : null,
      max_abs_deviation: n ? this.maxAbs : null,
      excursions: this.excursions,
      excursion_time_s: this.excursionTime,
      longest_excursion: this.longest,
      excursion_list: this.list,
      ...(this.omitted ? { excursions_omitted: this.omitted } : {}),
    };
  }
}

/** The report of a run file, synchronously (CLI, tests). */
export function computeFidelity(runFilePath: string, opts: FidelityOptions = {}): FidelityReport {
  const steps = fidelitySteps(runFilePath, opts);
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
  }
}

/** The same, yielding to the event loop after every chunk (the archiver at run stop, the API for an open run). */
export async function computeFidelityAsync(runFilePath: string, opts: FidelityOptions = {}): Promise<FidelityReport> {
  const steps = fidelitySteps(runFilePath, opts);
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Tolerances recorded in the run file (attributes written at a previous stop), for chambers the configuration does not know. */
function planFromFile(r: NcRunReader, chamber: number): FidelityPlan[string]['variables'] {
  const out: PlannedVariable[] = [];
  for (const v of r.dataVariables()) {
    const at = (name: string) => v.attrs.find((a) => a.name === name)?.value;
    const sp = at('fidelity_setpoint_variable');
    const band = at('tolerance_band');
    if (typeof sp !== 'string' || !Array.isArray(band) || !r.variables.has(sp)) continue;
    const num = (name: string) => {
      const x = at(name);
      return Array.isArray(x) ? x[chamber] : undefined;
    };
    const b = num('tolerance_band');
    const d = num('tolerance_min_duration_s');
    const h = num('tolerance_hysteresis');
    if (b === undefined || !(b > 0) || d === undefined || !(d >= 0) || h === undefined || !(h >= 0)) continue;
    out.push({
      measured: v.name,
      setpoint: sp,
      tolerance: {
        band: b,
        min_duration_s: d,
        hysteresis: h,
        source: { band: 'file', min_duration_s: 'file', hysteresis: 'file' },
      },
    });
  }
  return out;
}

/** What to judge in an open run file: the configured tolerances, else those recorded in the file's attributes. */
export function runPlan(r: NcRunReader, opts: Pick<FidelityOptions, 'source' | 'metadata'>): FidelityPlan {
  const archived = new Set(r.dataVariables().map((v) => v.name));
  const plan = planFidelity(r.chambers, opts.source, opts.metadata, archived);
  r.chambers.forEach((c, i) => {
    if (!opts.source?.(c)) plan[c]!.variables = planFromFile(r, i);
  });
  return plan;
}

/** Usable value of variable v (qc good, uncertain or held, not fill) at byte offset `off` of a record whose qc byte is at `qOff` (-1: none); NaN otherwise. */
export function usableAt(buf: Buffer, v: NcVariable, off: number, qOff: number): number {
  if (qOff >= 0 && USABLE_QC[buf[qOff]!] === 0) return NaN;
  const read = READERS[v.type];
  if (!read) return NaN;
  const x = read(buf, off);
  return x === v.fill ? NaN : x;
}

function* fidelitySteps(runFilePath: string, opts: FidelityOptions): Generator<void, FidelityReport> {
  const r = NcRunReader.open(runFilePath);
  try {
    const timeVar = r.variables.get('time')!;
    const plan = runPlan(r, opts);
    // The period: from the first two records, else the time_coverage_resolution-free default of 1 s.
    const period = r.records >= 2 ? Math.round((r.timeAt(1) - r.timeAt(0)) * 1e6) / 1e6 : 1;
    const qcOf = (v: NcVariable) => (v.qc ? r.variables.get(v.qc) : r.variables.get(`${v.name}_qc`));
    const judges: Judge[] = [];
    r.chambers.forEach((chamber, c) => {
      for (const p of plan[chamber]!.variables) {
        const value = r.variables.get(p.measured)!;
        const setpoint = r.variables.get(p.setpoint)!;
        if (!READERS[value.type] || !READERS[setpoint.type]) {
          plan[chamber]!.notJudged.push({
            variable: p.measured,
            reason: `not numeric (${value.type}/${setpoint.type})`,
          });
          continue;
        }
        judges.push(new Judge(chamber, c, p, value, setpoint, qcOf(value), qcOf(setpoint), period));
      }
    });
    let first: number | undefined;
    let last: number | undefined;
    for (const chunk of r.chunks(0, r.records, opts.chunkBytes)) {
      const { buf, count: n } = chunk;
      const step = n > 0 ? buf.length / n : 0;
      const times = chunk.times(timeVar);
      if (n > 0) {
        first ??= times[0]!;
        last = times[n - 1]!;
      }
      // Hot loop: one pass per chunk and judged pair, reading the big-endian values in place.
      for (const j of judges) {
        const readV = READERS[j.value.type]!;
        const readS = READERS[j.setpoint.type]!;
        const vOff = j.value.at + j.c * SIZE[j.value.type];
        const sOff = j.setpoint.at + j.c * SIZE[j.setpoint.type];
        const vq = j.valueQc ? j.valueQc.at + j.c : -1;
        const sq = j.setpointQc ? j.setpointQc.at + j.c : -1;
        const vFill = j.value.fill;
        const sFill = j.setpoint.fill;
        for (let k = 0; k < n; k++) {
          const base = k * step;
          if (vq >= 0 && USABLE_QC[buf[base + vq]!] === 0) continue;
          if (sq >= 0 && USABLE_QC[buf[base + sq]!] === 0) continue;
          const v = readV(buf, base + vOff);
          if (v === vFill || v !== v) continue;
          const s = readS(buf, base + sOff);
          if (s === sFill || s !== s) continue;
          j.covered1(times[k]!, v - s);
        }
      }
      yield;
    }
    const chambers: Record<string, ChamberFidelity> = {};
    for (const chamber of r.chambers) {
      const p = plan[chamber]!;
      chambers[chamber] = {
        ...(p.treatment ? { treatment: p.treatment } : {}),
        variables: {},
        not_judged: p.notJudged,
      };
    }
    for (const j of judges) chambers[j.chamber]!.variables[j.plan.measured] = j.result(r.records);
    const id = r.globalAttr('id');
    return {
      version: 1,
      file: basename(runFilePath),
      generated_at: (opts.now?.() ?? new Date()).toISOString(),
      ...(typeof id === 'string' ? { run: id } : {}),
      open: opts.open ?? false,
      slots: r.records,
      ...(first !== undefined ? { start: iso(first), end: iso(last!) } : {}),
      period_s: period,
      chambers,
      treatments: treatmentGroups(chambers),
    };
  } finally {
    r.close();
  }
}

const SIZE: Record<NcType, number> = { byte: 1, char: 1, short: 2, int: 4, float: 4, double: 8 };

/** Summary per treatment name over the chambers that share it (pooled over their covered slots). */
export function treatmentGroups(chambers: Record<string, ChamberFidelity>): Record<string, TreatmentGroup> {
  const groups: Record<string, TreatmentGroup> = {};
  for (const [chamber, cf] of Object.entries(chambers)) {
    if (!cf.treatment) continue;
    const g = (groups[cf.treatment] ??= { chambers: [], variables: {} });
    g.chambers.push(chamber);
  }
  for (const g of Object.values(groups)) {
    const names = new Set(g.chambers.flatMap((c) => Object.keys(chambers[c]!.variables)));
    for (const name of names) {
      const members = g.chambers.flatMap((c) => {
        const v = chambers[c]!.variables[name];
        return v ? [{ c, v }] : [];
      });
      const covered = members.reduce((n, m) => n + m.v.covered, 0);
      const slots = members.reduce((n, m) => n + m.v.slots, 0);
      const within = members.reduce((n, m) => n + m.v.within, 0);
      const sum = members.reduce((n, m) => n + (m.v.mean_deviation ?? 0) * m.v.covered, 0);
      const sumSq = members.reduce((n, m) => n + (m.v.rms_deviation ?? 0) ** 2 * m.v.covered, 0);
      const judged = members.filter((m) => m.v.within_tolerance_percent !== null);
      const worst = judged.reduce<(typeof judged)[number] | undefined>(
        (w, m) => (!w || m.v.within_tolerance_percent! < w.v.within_tolerance_percent! ? m : w),
        undefined,
      );
      const gv: GroupVariable = {
        chambers: members.map((m) => m.c),
        covered,
        within_tolerance_percent: covered ? (100 * within) / covered : null,
        min_within_tolerance_percent: worst ? worst.v.within_tolerance_percent : null,
        worst_chamber: worst ? worst.c : null,
        mean_deviation: covered ? sum / covered : null,
        rms_deviation: covered ? Math.sqrt(sumSq / covered) : null,
        coverage_percent: slots ? (100 * covered) / slots : 0,
        excursions: members.reduce((n, m) => n + m.v.excursions, 0),
      };
      g.variables[name] = gv;
    }
  }
  return groups;
}

/** Writes `fidelity.json` (atomically) into `outDir`; returns its path. */
export function saveFidelityReport(report: FidelityReport, outDir: string, name = 'fidelity.json'): string {
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, name);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  return file;
}
