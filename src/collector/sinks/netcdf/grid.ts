/**
 * The regular time grid of a run, kept directly in the run's record layout. Slot k is
 * the instant start + k·period and is record k of the file. Every sample goes to its
 * nearest slot whenever it arrives: a slot still in the in-memory cache is changed
 * there, an older one is patched in place in the file (classic records have a fixed
 * size and place). Nothing is "late".
 *
 * Rules (docs/experiments.md, "Completeness"):
 * - nearest sample wins; on equal distance the earlier sample (before the slot instant)
 *   wins; the same instant twice keeps the first received;
 * - a cell without a measured sample is derived: `offline` (5) while the chamber's
 *   status says offline/error at the slot instant, else `held` (4) with the last good
 *   value for a tag reported on change (OPC UA subscription) until a bad or uncertain
 *   sample of that tag, else `missing` (3) with the fill value — never a made-up value;
 * - a sample stamped more than `maxAheadMs` after the receive clock is refused for its
 *   chamber (counted per chamber) and moves nothing.
 * A measured cell keeps its distance code in a side array (the `.slots` file of the
 * run) so that the nearest rule also holds for cells already in the file.
 */
import type { Sample } from '../../../core/sample.ts';
import { getValue, NC_TYPE_SIZE, setValue, type NcType } from '../../../netcdf/format.ts';

/**
 * Quality codes in the `<var>_qc` byte variables: THE contract of the archive (the
 * completeness report and `octopus verify` read it). docs/experiments.md documents it.
 */
export const QC = { good: 0, uncertain: 1, bad: 2, missing: 3, held: 4, offline: 5 } as const;
export type QcCode = (typeof QC)[keyof typeof QC];
export const QC_FLAG_VALUES = [0, 1, 2, 3, 4, 5];
export const QC_FLAG_MEANINGS = 'good uncertain bad missing held offline';
/** Codes that mean a sample was received for the slot (its value, or fill for a bad one). */
export const QC_MEASURED: readonly number[] = [QC.good, QC.uncertain, QC.bad];

/** Distance code of a cell without a measured sample. */
export const DIST_NONE = 0xffff;

export interface GridVar {
  /** Sample tag name. */
  tag: string;
  /** Record variable receiving the value. */
  variable: string;
  /** Record variable receiving the quality code (optional). */
  qcVariable?: string;
}

/** Records of the run as stored (the NetCDF file and its `.slots` side file). */
export interface GridStore {
  readonly recsize: number;
  /** Records stored so far. */
  count(): number;
  recordVar(name: string): { off: number; type: NcType; fill: number } | undefined;
  read(k: number, n: number): { rec: Buffer; dist: Uint16Array };
  write(k: number, rec: Buffer, dist: Uint16Array): void;
  /** Keeps the first `n` records. */
  truncate(n: number): void;
}

export interface TimeGridOptions {
  startMs: number;
  periodMs: number;
  chambers: readonly string[];
  vars: readonly GridVar[];
  store: GridStore;
  /** Tags reported on change (held between samples): default none. */
  onChange?: (chamber: string, tag: string) => boolean;
  /** Receive clock, for refusing future-dated samples. */
  now?: () => number;
  /** Samples stamped later than now() + maxAheadMs are refused (default 10 s). */
  maxAheadMs?: number;
  /**
   * The run's start instant (slot 0 is the slot it rounds to): samples stamped before it
   * are not the run's, except that the last value of an on-change tag before it is held
   * from the start. Default: half a period before slot 0 (the whole first slot).
   */
  runStartMs?: number;
  /** Run end (its stop instant): samples stamped after it are outside; finish() allocates up to the slot it rounds to. */
  endMs?: number;
  /** Records kept in memory (default: 2 minutes of slots, at least 64, at most 16 MiB). */
  cacheRecords?: number;
}

export interface GridStats {
  accepted: number;
  /** Samples that changed a record already in the file (arrived after it was written). */
  patched: number;
  /** Before the start or after the end of the run. */
  outside: number;
  /** Too far in the future (refused). */
  future: number;
  /** Unknown chamber or tag. */
  unknown: number;
  /** Values that are not numbers or booleans (strings). */
  unsupported: number;
  /** Records allocated (slots on the grid so far). */
  records: number;
}

export interface ChamberClock {
  /** Smallest (receive time − sample time) over the recent messages: the clock offset plus the least transport delay. */
  offsetMs?: number;
  /** Samples refused as too far in the future. */
  future: number;
}

interface Transition {
  ts: number;
  online: boolean;
}

const CHUNK = 256;
/** The cache may grow to this while the file cannot be written (then samples are refused). */
const MAX_CACHE_BYTES = 512 * 1024 * 1024;
const OFFSET_WINDOW = 200;
/** Patched store records kept in memory until the next flush (then written in slot order). */
const PATCH_BYTES = 8 * 1024 * 1024;

export class TimeGrid {
  readonly stats: GridStats = {
    accepted: 0,
    patched: 0,
    outside: 0,
    future: 0,
    unknown: 0,
    unsupported: 0,
    records: 0,
  };
  private readonly chamberIdx: Map<string, number>;
  private readonly tagIdx: Map<string, number>;
  private readonly nc: number;
  private readonly nv: number;
  private readonly ncell: number;
  private readonly recsize: number;
  private readonly timeOff: number;
  private readonly valOff: Int32Array;
  private readonly valType: NcType[];
  private readonly valSize: Int32Array;
  private readonly fill: Float64Array;
  private readonly qcOff: Int32Array;
  private readonly distUnit: number;
  private readonly onChange: Uint8Array;
  private readonly maxAhead: number;
  private readonly now: () => number;
  // cache: records [base, base + n)
  private cap: number;
  private buf: Buffer;
  private dv: DataView;
  private dist: Uint16Array;
  private base: number;
  private n = 0;
  private dirtyFrom = Infinity;
  /** Store records (older than the cache) changed by late samples, not yet written back. */
  private readonly patches = new Map<number, { rec: Buffer; dist: Uint16Array; dv: DataView }>();
  // live state per cell (vi * nc + ci)
  private readonly holdVal: Float64Array;
  private readonly holdTs: Float64Array;
  private readonly clearedTs: Float64Array;
  private readonly timeline: Transition[][];
  private readonly clocks: Array<{ offsets: number[]; future: number }>;

  constructor(private readonly o: TimeGridOptions & { endMs?: number }) {
    if (!(o.periodMs > 0)) throw new Error(`periodMs must be positive (got ${o.periodMs})`);
    this.chamberIdx = new Map(o.chambers.map((c, i) => [c, i]));
    this.tagIdx = new Map(o.vars.map((v, i) => [v.tag, i]));
    this.nc = o.chambers.length;
    this.nv = o.vars.length;
    this.ncell = this.nc * this.nv;
    this.recsize = o.store.recsize;
    const time = o.store.recordVar('time');
    this.timeOff = time ? time.off : -1;
    this.valOff = new Int32Array(this.nv);
    this.valSize = new Int32Array(this.nv);
    this.qcOff = new Int32Array(this.nv).fill(-1);
    this.fill = new Float64Array(this.nv);
    this.valType = [];
    o.vars.forEach((v, vi) => {
      const rv = o.store.recordVar(v.variable);
      if (!rv) throw new Error(`record variable ${v.variable} is not in the file`);
      this.valOff[vi] = rv.off;
      this.valType.push(rv.type);
      this.valSize[vi] = NC_TYPE_SIZE[rv.type];
      this.fill[vi] = rv.fill;
      if (v.qcVariable) {
        const q = o.store.recordVar(v.qcVariable);
        if (!q) throw new Error(`record variable ${v.qcVariable} is not in the file`);
        this.qcOff[vi] = q.off;
      }
    });
    this.distUnit = Math.max(1, Math.ceil(o.periodMs / 65_000));
    this.onChange = new Uint8Array(this.ncell);
    o.vars.forEach((v, vi) =>
      o.chambers.forEach((c, ci) => (this.onChange[vi * this.nc + ci] = o.onChange?.(c, v.tag) ? 1 : 0)),
    );
    this.maxAhead = o.maxAheadMs ?? 10_000;
    this.now = o.now ?? Date.now;
    const byTime = Math.ceil(120_000 / o.periodMs);
    const byBytes = Math.floor((16 * 1024 * 1024) / Math.max(1, this.recsize + 2 * this.ncell));
    this.cap = Math.max(2, o.cacheRecords ?? Math.max(1, Math.min(Math.max(64, byTime), byBytes)));
    this.buf = Buffer.alloc(this.cap * this.recsize);
    this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
    this.dist = new Uint16Array(this.cap * this.ncell);
    this.base = o.store.count();
    this.stats.records = this.base;
    this.holdVal = new Float64Array(this.ncell).fill(NaN);
    this.holdTs = new Float64Array(this.ncell).fill(-Infinity);
    this.clearedTs = new Float64Array(this.ncell).fill(-Infinity);
    this.timeline = o.chambers.map(() => []);
    this.clocks = o.chambers.map(() => ({ offsets: [], future: 0 }));
    if (this.base > 0) this.resumeHolds();
  }

  /** Slots allocated so far (records of the run, in memory or in the file). */
  get slots(): number {
    return this.base + this.n;
  }
  slotTime(k: number): number {
    return this.o.startMs + k * this.o.periodMs;
  }
  slotOf(ts: number): number {
    return Math.round((ts - this.o.startMs) / this.o.periodMs);
  }

  /** Per chamber: clock offset and future samples refused. */
  clock(chamber: string): ChamberClock {
    const c = this.clocks[this.chamberIdx.get(chamber) ?? -1];
    if (!c) return { future: 0 };
    return { ...(c.offsets.length ? { offsetMs: Math.min(...c.offsets) } : {}), future: c.future };
  }

  /** Notes receive time − sample time of one message of a chamber (clock offset). */
  observeClock(chamber: string, sampleTs: number, receivedMs: number): void {
    const c = this.clocks[this.chamberIdx.get(chamber) ?? -1];
    if (!c) return;
    c.offsets.push(receivedMs - sampleTs);
    if (c.offsets.length > OFFSET_WINDOW) c.offsets.shift();
  }

  /** Places one sample; returns false when it was refused (future, outside, unknown). */
  add(s: Pick<Sample, 'chamber' | 'tag' | 'ts' | 'value' | 'q'>, replay = false): boolean {
    return this.addOf(s.chamber, s, replay);
  }

  /** `add` of a sample of `chamber` (the hot path of a message: no object per sample). */
  addOf(chamber: string, s: Pick<Sample, 'tag' | 'ts' | 'value' | 'q'>, replay = false): boolean {
    const ci = this.chamberIdx.get(chamber);
    const vi = this.tagIdx.get(s.tag);
    if (ci === undefined || vi === undefined) {
      this.stats.unknown++;
      return false;
    }
    if (typeof s.value === 'string') {
      this.stats.unsupported++;
      return false;
    }
    if (!replay && s.ts > this.now() + this.maxAhead) {
      this.stats.future++;
      this.clocks[ci]!.future++;
      return false;
    }
    const k = this.slotOf(s.ts);
    const beforeRun = s.ts < (this.o.runStartMs ?? this.o.startMs - this.o.periodMs / 2);
    if (beforeRun && this.onChange[vi * this.nc + ci] && s.ts >= this.holdTs[vi * this.nc + ci]!) {
      // A value of an on-change tag reported before the run started: held from the start.
      const i = vi * this.nc + ci;
      const good = s.q === 'good' && typeof s.value !== 'string' && s.value !== null;
      this.holdVal[i] = good ? Number(s.value) : NaN;
      this.holdTs[i] = s.ts;
      if (!good) this.clearedTs[i] = Math.max(this.clearedTs[i]!, s.ts);
      this.propagate(vi, ci, 0, this.holdVal[i]!);
      return true;
    }
    // The first and last slots are partial: only samples within the run's start and stop instants are the run's.
    if (beforeRun || k < 0 || k > this.lastSlot() || (this.o.endMs !== undefined && s.ts > this.o.endMs)) {
      this.stats.outside++;
      return false;
    }
    if (k >= this.slots) this.allocate(k);
    const i = vi * this.nc + ci;
    const d = Math.abs(s.ts - this.slotTime(k));
    const code = Math.min(0xfffe, Math.floor(d / this.distUnit) * 2 + (s.ts > this.slotTime(k) ? 1 : 0));
    const value = s.value === null ? NaN : typeof s.value === 'boolean' ? Number(s.value) : s.value;
    const q = QC[s.q];
    this.stats.accepted++;
    if (k < this.base) this.stats.patched++;
    let won = false;
    if (k >= this.base) {
      // Hot path: the slot is in the cache.
      const a = k - this.base;
      if (code < this.dist[a * this.ncell + i]!) {
        this.dist[a * this.ncell + i] = code;
        this.writeCell(this.dv, a * this.recsize, vi, ci, value, q);
        if (k < this.dirtyFrom) this.dirtyFrom = k;
        won = true;
      }
    } else {
      this.visit(k, k, (_k, dv, off, dist, doff) => {
        if (code >= dist[doff + i]!) return false;
        dist[doff + i] = code;
        this.writeCell(dv, off, vi, ci, value, q);
        won = true;
        return true;
      });
    }
    if (!this.onChange[i]) return true;
    // The live hold of an on-change tag (newest by sample time), and re-assertion after an interruption.
    const good = q === QC.good && !Number.isNaN(value);
    // The newest sample of the tag sets what is held after its slot even when a nearer one
    // keeps the slot itself (the PLC held the newest value, not the nearest).
    const newest = s.ts >= this.holdTs[i]!;
    let from = k + 1;
    if (good) {
      if (this.clearedTs[i]! > s.ts) {
        // A value sent again after a reconnect (OPC UA initial notification) with its old
        // source time: it holds again from where the interruption was.
        from = Math.max(from, this.slotOf(this.clearedTs[i]!) + 1);
        this.clearedTs[i] = -Infinity;
        this.holdVal[i] = value;
        this.holdTs[i] = Math.max(this.holdTs[i]!, s.ts);
        this.propagate(vi, ci, from, value);
        return true;
      }
      if (s.ts >= this.holdTs[i]!) {
        this.holdVal[i] = value;
        this.holdTs[i] = s.ts;
        this.clearedTs[i] = -Infinity;
      }
    } else if (s.ts >= this.holdTs[i]!) {
      this.holdVal[i] = NaN;
      this.holdTs[i] = s.ts;
      this.clearedTs[i] = Math.max(this.clearedTs[i]!, s.ts);
    }
    if (won || newest) this.propagate(vi, ci, from, good ? value : NaN);
    return true;
  }

  /**
   * A chamber status (retained `<prefix>/<chamber>/status`): from `ts` on, cells without a
   * measured sample are `offline` until it is online again.
   */
  setStatus(chamber: string, online: boolean, ts: number): void {
    const ci = this.chamberIdx.get(chamber);
    if (ci === undefined) return;
    const tl = this.timeline[ci]!;
    if (this.onlineAt(ci, ts) === online && !tl.some((t) => t.ts > ts)) return;
    let at = tl.findIndex((t) => t.ts > ts);
    if (at < 0) at = tl.length;
    tl.splice(at, 0, { ts, online });
    const from = Math.max(0, Math.ceil((ts - this.o.startMs) / this.o.periodMs));
    const next = tl[at + 1];
    const to = Math.min(this.slots, next ? Math.ceil((next.ts - this.o.startMs) / this.o.periodMs) : this.slots) - 1;
    if (from > to) return;
    for (let vi = 0; vi < this.nv; vi++) this.rederive(vi, ci, from, to);
  }

  /**
   * The run stopped at `endMs`: later samples are outside, `finish` allocates up to it.
   * Samples stamped after the stop that reached the last slot before the stop was known
   * are taken out again (their cells derived anew); returns how many, so that the caller
   * can give the run's recent samples again (an earlier sample of the run may belong there).
   */
  setEnd(endMs: number): number {
    this.o.endMs = endMs;
    return this.dropAfterEnd();
  }

  /** Allocates slots up to the instant `nowMs` (e.g. wall clock minus an allowance), so that silent slots exist too. */
  advance(nowMs: number): void {
    const k = Math.min(Math.floor((nowMs - this.o.startMs) / this.o.periodMs), this.lastSlot());
    if (k >= this.slots) this.allocate(k);
  }

  /**
   * Allocates every slot up to the one of `endMs` (default the run end: the slot its
   * instant rounds to, like any sample's), and drops slots allocated past it (samples
   * stamped slightly ahead, before the end was known).
   */
  finish(endMs = this.o.endMs): void {
    if (endMs === undefined) return;
    this.o.endMs = endMs;
    this.dropAfterEnd();
    const k = this.slotOf(endMs);
    if (k >= this.slots) this.allocate(k);
    if (this.slots > k + 1) {
      if (k + 1 >= this.base) this.n = k + 1 - this.base;
      else {
        this.flushPatches();
        this.o.store.truncate(k + 1);
        this.base = k + 1;
        this.n = 0;
      }
      this.stats.records = this.slots;
    }
  }

  /** Writes the records changed in memory to the store; the cache keeps the newest ones. */
  flush(): void {
    this.flushPatches();
    if (this.dirtyFrom < this.base + this.n) {
      const from = Math.max(this.dirtyFrom, this.base);
      const a = from - this.base;
      this.o.store.write(
        from,
        this.buf.subarray(a * this.recsize, this.n * this.recsize),
        this.dist.subarray(a * this.ncell, this.n * this.ncell),
      );
    }
    this.dirtyFrom = Infinity;
  }

  // ---- internals -------------------------------------------------------------

  /** Measured cells of the last slot whose sample is stamped after the run's end become derived again. */
  private dropAfterEnd(): number {
    const end = this.o.endMs;
    if (end === undefined) return 0;
    const last = this.slotOf(end);
    if (last < 0 || last >= this.slots) return 0;
    const slot = this.slotTime(last);
    const dropped: number[] = [];
    this.visit(last, last, (_k, _dv, _off, dist, doff) => {
      for (let i = 0; i < this.ncell; i++) {
        const code = dist[doff + i]!;
        if (code === DIST_NONE) continue;
        // The sample's time from its distance code (exact to distUnit, 1 ms up to a 65 s period).
        const ts = slot + (code & 1 ? 1 : -1) * (code >> 1) * this.distUnit;
        if (ts <= end) continue;
        dist[doff + i] = DIST_NONE;
        dropped.push(i);
      }
      return dropped.length > 0;
    });
    for (const i of dropped) this.rederive(Math.floor(i / this.nc), i % this.nc, last, last);
    return dropped.length;
  }

  private lastSlot(): number {
    return this.o.endMs === undefined ? Infinity : this.slotOf(this.o.endMs);
  }

  private onlineAt(ci: number, ts: number): boolean {
    const tl = this.timeline[ci]!;
    let online = true;
    for (const t of tl) {
      if (t.ts > ts) break;
      online = t.online;
    }
    return online;
  }

  private writeCell(dv: DataView, off: number, vi: number, ci: number, value: number, q: number): void {
    setValue(
      dv,
      off + this.valOff[vi]! + ci * this.valSize[vi]!,
      this.valType[vi]!,
      Number.isNaN(value) ? this.fill[vi]! : value,
    );
    if (this.qcOff[vi]! >= 0) dv.setInt8(off + this.qcOff[vi]! + ci, q);
  }

  /** The derived content of a cell without a measured sample. */
  private derived(k: number, vi: number, ci: number, hold: number): { value: number; q: number } {
    if (!this.onlineAt(ci, this.slotTime(k))) return { value: NaN, q: QC.offline };
    if (this.onChange[vi * this.nc + ci] && !Number.isNaN(hold)) return { value: hold, q: QC.held };
    return { value: NaN, q: QC.missing };
  }

  /** Carries `hold` (NaN: none) forward from slot `from` through derived cells, up to the next measured one. */
  private propagate(vi: number, ci: number, from: number, hold: number): void {
    const i = vi * this.nc + ci;
    let stop = false;
    for (let a = from; a < this.slots && !stop; a += CHUNK) {
      this.visit(a, Math.min(this.slots, a + CHUNK) - 1, (k, dv, off, dist, doff) => {
        if (stop) return false;
        if (dist[doff + i] !== DIST_NONE) {
          stop = true;
          return false;
        }
        const d = this.derived(k, vi, ci, hold);
        return this.setDerived(dv, off, vi, ci, d);
      });
    }
  }

  /** Recomputes derived cells of one chamber and variable in [from, to] (after a status change). */
  private rederive(vi: number, ci: number, from: number, to: number): void {
    const i = vi * this.nc + ci;
    let hold = NaN;
    if (this.onChange[i]) {
      if (from > 0) {
        this.visit(from - 1, from - 1, (_k, dv, off) => {
          const q = this.qcOff[vi]! >= 0 ? dv.getInt8(off + this.qcOff[vi]! + ci) : QC.missing;
          if (q === QC.good || q === QC.held)
            hold = getValue(dv, off + this.valOff[vi]! + ci * this.valSize[vi]!, this.valType[vi]!);
          return false;
        });
      }
      if (Number.isNaN(hold) && this.clearedTs[i] === -Infinity) hold = this.holdVal[i]!;
    }
    for (let a = from; a <= to; a += CHUNK) {
      this.visit(a, Math.min(to, a + CHUNK - 1), (k, dv, off, dist, doff) => {
        if (dist[doff + i] !== DIST_NONE) {
          const q = this.qcOff[vi]! >= 0 ? dv.getInt8(off + this.qcOff[vi]! + ci) : QC.good;
          hold =
            q === QC.good && this.onChange[i]
              ? getValue(dv, off + this.valOff[vi]! + ci * this.valSize[vi]!, this.valType[vi]!)
              : NaN;
          return false;
        }
        return this.setDerived(dv, off, vi, ci, this.derived(k, vi, ci, hold));
      });
    }
  }

  private setDerived(dv: DataView, off: number, vi: number, ci: number, d: { value: number; q: number }): boolean {
    const qAt = off + this.qcOff[vi]! + ci;
    const vAt = off + this.valOff[vi]! + ci * this.valSize[vi]!;
    const type = this.valType[vi]!;
    const v = Number.isNaN(d.value) ? this.fill[vi]! : type === 'float' ? Math.fround(d.value) : d.value;
    const oldQ = this.qcOff[vi]! >= 0 ? dv.getInt8(qAt) : d.q;
    const oldV = getValue(dv, vAt, this.valType[vi]!);
    if (oldQ === d.q && (oldV === v || (Number.isNaN(oldV) && Number.isNaN(v)))) return false;
    setValue(dv, vAt, this.valType[vi]!, v);
    if (this.qcOff[vi]! >= 0) dv.setInt8(qAt, d.q);
    return true;
  }

  /**
   * Calls `fn` for each slot in [from, to] with the record bytes and distance codes,
   * from the cache or (older slots) the store; what `fn` changed is written back.
   */
  private visit(
    from: number,
    to: number,
    fn: (k: number, dv: DataView, off: number, dist: Uint16Array, doff: number) => boolean,
  ): void {
    let k = from;
    if (from === to && k < this.base) {
      // One slot in the store (a late sample): changed in a patch kept until the next flush,
      // so that many late samples cost one read each and one write per flush, not a write each.
      let p = this.patches.get(k);
      if (!p) {
        const { rec, dist } = this.o.store.read(k, 1);
        p = { rec, dist, dv: new DataView(rec.buffer, rec.byteOffset, rec.length) };
      }
      if (fn(k, p.dv, 0, p.dist, 0) && !this.patches.has(k)) {
        this.patches.set(k, p);
        if (this.patches.size * (this.recsize + 2 * this.ncell) > PATCH_BYTES) this.tryFlushPatches();
      }
      return;
    }
    // Ranges (re-derivations) see the patches written first.
    if (k < this.base && this.patches.size) this.flushPatches();
    // Slots in the store (older than the cache): read, change, write back.
    while (k <= to && k < this.base) {
      const end = Math.min(to, this.base - 1, k + CHUNK - 1);
      const { rec, dist } = this.o.store.read(k, end - k + 1);
      const dv = new DataView(rec.buffer, rec.byteOffset, rec.length);
      let changed = false;
      for (let j = k; j <= end; j++) if (fn(j, dv, (j - k) * this.recsize, dist, (j - k) * this.ncell)) changed = true;
      if (changed) this.o.store.write(k, rec, dist);
      k = end + 1;
    }
    for (; k <= to; k++) {
      const a = k - this.base;
      if (fn(k, this.dv, a * this.recsize, this.dist, a * this.ncell) && k < this.dirtyFrom) this.dirtyFrom = k;
    }
  }

  /** Writes the patched store records (in slot order); on a failure the unwritten ones stay for the next try. */
  private flushPatches(): void {
    if (!this.patches.size) return;
    for (const k of [...this.patches.keys()].sort((a, b) => a - b)) {
      const p = this.patches.get(k)!;
      this.o.store.write(k, p.rec, p.dist);
      this.patches.delete(k);
    }
  }

  /** Bounds the patches' memory; while the store cannot be written they are kept (up to the cache limit). */
  private tryFlushPatches(): void {
    try {
      this.flushPatches();
    } catch (err) {
      if (this.patches.size * (this.recsize + 2 * this.ncell) > MAX_CACHE_BYTES) throw err;
    }
  }

  /** Appends slots up to k, each with its time and derived cells from the live state. */
  private allocate(k: number): void {
    while (this.slots <= k) {
      if (this.n === this.cap) this.evict();
      const slot = this.slots;
      const a = this.n;
      const off = a * this.recsize;
      this.buf.fill(0, off, off + this.recsize);
      if (this.timeOff >= 0) this.dv.setFloat64(off + this.timeOff, this.slotTime(slot) / 1000, false);
      this.dist.fill(DIST_NONE, a * this.ncell, (a + 1) * this.ncell);
      const t = this.slotTime(slot);
      for (let ci = 0; ci < this.nc; ci++) {
        const online = this.onlineAt(ci, t);
        for (let vi = 0; vi < this.nv; vi++) {
          const i = vi * this.nc + ci;
          const held =
            online && this.onChange[i] && !Number.isNaN(this.holdVal[i]!) && this.holdTs[i]! <= t + this.o.periodMs / 2;
          this.writeCell(
            this.dv,
            off,
            vi,
            ci,
            held ? this.holdVal[i]! : NaN,
            !online ? QC.offline : held ? QC.held : QC.missing,
          );
        }
      }
      this.n++;
      this.stats.records = this.slots;
      if (slot < this.dirtyFrom) this.dirtyFrom = slot;
    }
  }

  /** Writes out and drops the older half of the cache; while the store cannot be written, the cache grows instead. */
  private evict(): void {
    const drop = Math.max(1, Math.floor(this.n / 2));
    if (this.dirtyFrom < this.base + drop) {
      const a = Math.max(this.dirtyFrom, this.base) - this.base;
      try {
        this.o.store.write(
          this.base + a,
          this.buf.subarray(a * this.recsize, drop * this.recsize),
          this.dist.subarray(a * this.ncell, drop * this.ncell),
        );
      } catch (err) {
        if (this.buf.length * 2 > MAX_CACHE_BYTES) throw err;
        this.grow();
        return;
      }
    }
    this.buf.copyWithin(0, drop * this.recsize, this.n * this.recsize);
    this.dist.copyWithin(0, drop * this.ncell, this.n * this.ncell);
    this.n -= drop;
    this.base += drop;
    if (this.dirtyFrom < this.base) this.dirtyFrom = this.base;
  }

  private grow(): void {
    const buf = Buffer.alloc(this.buf.length * 2);
    this.buf.copy(buf);
    const dist = new Uint16Array(this.dist.length * 2);
    dist.set(this.dist);
    this.buf = buf;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
    this.dist = dist;
    this.cap *= 2;
  }

  /** After a restart: the hold of each on-change cell from the last record in the file. */
  private resumeHolds(): void {
    const { rec } = this.o.store.read(this.base - 1, 1);
    if (rec.length < this.recsize) return;
    const dv = new DataView(rec.buffer, rec.byteOffset, rec.length);
    const t = this.slotTime(this.base - 1);
    for (let vi = 0; vi < this.nv; vi++) {
      for (let ci = 0; ci < this.nc; ci++) {
        const i = vi * this.nc + ci;
        if (!this.onChange[i] || this.qcOff[vi]! < 0) continue;
        const q = dv.getInt8(this.qcOff[vi]! + ci);
        if (q !== QC.good && q !== QC.held) continue;
        this.holdVal[i] = getValue(dv, this.valOff[vi]! + ci * this.valSize[vi]!, this.valType[vi]!);
        this.holdTs[i] = t;
      }
    }
  }
}
