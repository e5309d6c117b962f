/**
 * Maps samples (chamber, tag, ts, value, quality) onto the regular time grid of a run:
 * grid slot k is the instant start + k·period and becomes one record. A sample goes to
 * the nearest slot (the one nearest to the slot instant wins). Samples may arrive a
 * little late, so a slot is committed only once the newest time seen (sample times,
 * or the clock given to `advance`) has passed its end by the reorder window; a sample
 * for an already committed slot is dropped and counted in `stats.late`. Missing values
 * are written as the fill value (never a repeated value) with quality 3 (missing).
 */
import type { Sample } from '../../../core/sample.ts';
import type { NcRecord } from './writer.ts';

/** Quality codes in the `<var>_qc` byte variables. */
export const QC = { good: 0, uncertain: 1, bad: 2, missing: 3 } as const;
export const QC_FLAG_VALUES = [0, 1, 2, 3];
export const QC_FLAG_MEANINGS = 'good uncertain bad missing';

export interface GridVar {
  /** Sample tag name. */
  tag: string;
  /** Record variable receiving the value. */
  variable: string;
  /** Record variable receiving the quality code (optional). */
  qcVariable?: string;
}

export interface TimeGridOptions {
  startMs: number;
  periodMs: number;
  chambers: readonly string[];
  vars: readonly GridVar[];
  /** How long after a slot's end samples are still accepted (default 5000 ms). */
  reorderWindowMs?: number;
  /** Receives committed records in time order (at most `batch` per call). */
  onRecords: (records: NcRecord[]) => void;
  /** Samples stamped later than now() + maxAheadMs are dropped (clock glitch), default 60 s. */
  now?: () => number;
  maxAheadMs?: number;
  /** Run end: samples after it are dropped; finish() commits up to it. */
  endMs?: number;
  batch?: number;
}

export interface GridStats {
  accepted: number;
  /** For a slot already committed. */
  late: number;
  /** Before the start or after the end of the run. */
  outside: number;
  /** Too far in the future. */
  future: number;
  /** Unknown chamber or tag. */
  unknown: number;
  /** Values that are not numbers or booleans (strings). */
  unsupported: number;
  /** Records committed. */
  committed: number;
}

interface Slot { vals: Float64Array; dist: Float64Array; q: Uint8Array }

export class TimeGrid {
  readonly stats: GridStats = { accepted: 0, late: 0, outside: 0, future: 0, unknown: 0, unsupported: 0, committed: 0 };
  private readonly pending = new Map<number, Slot>();
  private next = 0;
  private watermark = -Infinity;
  private readonly chamberIdx: Map<string, number>;
  private readonly tagIdx: Map<string, number>;
  private readonly nc: number;
  private readonly nv: number;
  private readonly window: number;

  constructor(private readonly o: TimeGridOptions) {
    if (!(o.periodMs > 0)) throw new Error(`periodMs must be positive (got ${o.periodMs})`);
    this.chamberIdx = new Map(o.chambers.map((c, i) => [c, i]));
    this.tagIdx = new Map(o.vars.map((v, i) => [v.tag, i]));
    this.nc = o.chambers.length;
    this.nv = o.vars.length;
    this.window = o.reorderWindowMs ?? 5000;
  }

  /** Index of the first slot not committed yet. */
  get nextSlot(): number { return this.next; }
  slotTime(k: number): number { return this.o.startMs + k * this.o.periodMs; }

  /** Treats slots before `k` as committed (they are already in a resumed file). */
  resumeAt(k: number): void {
    this.next = Math.max(this.next, k);
    for (const key of this.pending.keys()) if (key < this.next) this.pending.delete(key);
  }

  add(s: Pick<Sample, 'chamber' | 'tag' | 'ts' | 'value' | 'q'>): void {
    const ci = this.chamberIdx.get(s.chamber);
    const vi = this.tagIdx.get(s.tag);
    if (ci === undefined || vi === undefined) { this.stats.unknown++; return; }
    if (typeof s.value === 'string') { this.stats.unsupported++; return; }
    if (s.ts > (this.o.now ?? Date.now)() + (this.o.maxAheadMs ?? 60_000)) { this.stats.future++; return; }
    const k = Math.round((s.ts - this.o.startMs) / this.o.periodMs);
    if (k < 0 || (this.o.endMs !== undefined && s.ts > this.o.endMs)) { this.stats.outside++; return; }
    if (k < this.next) { this.stats.late++; return; }
    let slot = this.pending.get(k);
    if (!slot) {
      const n = this.nv * this.nc;
      slot = { vals: new Float64Array(n).fill(NaN), dist: new Float64Array(n).fill(Infinity), q: new Uint8Array(n).fill(QC.missing) };
      this.pending.set(k, slot);
    }
    const i = vi * this.nc + ci;
    const d = Math.abs(s.ts - this.slotTime(k));
    if (d <= slot.dist[i]!) {
      slot.dist[i] = d;
      slot.vals[i] = s.value === null ? NaN : typeof s.value === 'boolean' ? Number(s.value) : s.value;
      slot.q[i] = QC[s.q];
    }
    this.stats.accepted++;
    if (s.ts > this.watermark) { this.watermark = s.ts; this.commitClosed(); }
  }

  /** Moves time forward (e.g. the wall clock) so that slots close even without samples. */
  advance(nowMs: number): void {
    if (nowMs > this.watermark) this.watermark = nowMs;
    this.commitClosed();
  }

  /** Commits every slot up to `endMs` (default: the run end, else the last pending slot). */
  finish(endMs = this.o.endMs): void {
    let last = this.next - 1;
    for (const k of this.pending.keys()) last = Math.max(last, k);
    if (endMs !== undefined) last = Math.floor((endMs - this.o.startMs) / this.o.periodMs);
    this.commitThrough(last);
  }

  private commitClosed(): void {
    // Slot k collects samples up to slotTime(k) + period/2; it closes a window later.
    const last = Math.floor((this.watermark - this.window - this.o.startMs - this.o.periodMs / 2) / this.o.periodMs);
    let end = last;
    if (this.o.endMs !== undefined) end = Math.min(end, Math.floor((this.o.endMs - this.o.startMs) / this.o.periodMs));
    if (end >= this.next) this.commitThrough(end);
  }

  private commitThrough(last: number): void {
    const batch = this.o.batch ?? 1000;
    let out: NcRecord[] = [];
    for (; this.next <= last; this.next++) {
      const slot = this.pending.get(this.next);
      this.pending.delete(this.next);
      out.push(this.record(this.next, slot));
      if (out.length >= batch) { this.emit(out); out = []; }
    }
    if (out.length) this.emit(out);
    for (const k of this.pending.keys()) if (k < this.next) this.pending.delete(k);
  }

  private emit(records: NcRecord[]): void {
    this.stats.committed += records.length;
    this.o.onRecords(records);
  }

  private record(k: number, slot: Slot | undefined): NcRecord {
    const values: NcRecord['values'] = {};
    const nc = this.nc;
    this.o.vars.forEach((v, vi) => {
      const data: (number | null)[] = new Array(nc);
      const q: number[] = new Array(nc);
      for (let c = 0; c < nc; c++) {
        const x = slot ? slot.vals[vi * nc + c]! : NaN;
        data[c] = Number.isNaN(x) ? null : x;
        q[c] = slot ? slot.q[vi * nc + c]! : QC.missing;
      }
      values[v.variable] = data;
      if (v.qcVariable) values[v.qcVariable] = q;
    });
    return { time: this.slotTime(k) / 1000, values };
  }
}
