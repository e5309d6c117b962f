/**
 * One run's NetCDF file: the CF schema, the time grid and the writer glued together,
 * with two files beside it in the working folder while the run is open:
 *
 * - `<file>.log`, the sample log: every sample (and chamber status) given to the run is
 *   appended as a CRC-framed record and fdatasynced by `commitLog()` before the MQTT
 *   message is acknowledged. `flush()` writes the grid into the file, syncs it, and
 *   only then empties the log. `open` of an existing file replays the log, so a kill
 *   at any moment loses nothing that was acknowledged.
 * - `<file>.slots`, the distance code of each cell (see grid.ts), so that a sample
 *   arriving after its record was written still obeys the nearest-sample rule.
 *
 * Both are removed by `close()`.
 */
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { crc32 } from 'node:zlib';
import type { Sample } from '../../../core/sample.ts';
import { buildRunSchema, coverageAttributes, type ArchiveVar, type RunInfo } from './cf.ts';
import { TimeGrid, type GridStats, type GridStore } from './grid.ts';
import { NetcdfWriter, type WriterOptions } from '../../../netcdf/writer.ts';
import { derivedComputer, VPD_VAR, type DeriveRecords } from './derived.ts';

export interface RunFileOptions extends Pick<
  WriterOptions,
  'version' | 'expectedBytes' | 'headerReserve' | 'bufferBytes' | 'fsync'
> {
  now?: () => number;
  /** Samples stamped later than now + maxAheadMs are refused (default 10 s). */
  maxAheadMs?: number;
  /** Tags reported on change, held between samples. */
  onChange?: (chamber: string, tag: string) => boolean;
  /** The run's start instant: samples stamped before it are not the run's (see TimeGridOptions). */
  runStartMs?: number;
  /** Run end, when known (a stopped run being finished). */
  endMs?: number;
  cacheRecords?: number;
  /** Keep a sample log (default true). */
  log?: boolean;
}

type LoggedSample = Pick<Sample, 'tag' | 'ts' | 'value' | 'q'>;
/** A log entry: samples of a chamber (with the receive time), or a chamber status. */
type LogEntry =
  | { c: string; r: number; s: Array<[string, number, number | boolean | null, Sample['q']]> }
  | { st: string; on: boolean; ts: number };

/**
 * Log frame: [u32 body length][u32 crc32 of body][body], body = [u8 kind][…]. Kind 1
 * (samples, binary for speed): u16 chamber length, chamber utf8, f64 receive time, u32
 * count, then per sample u16 tag length, tag utf8, f64 ts, u8 value kind (0 null, 1
 * number, 2 false, 3 true), f64 value, u8 quality (0 good, 1 uncertain, 2 bad). Kind 2:
 * JSON (statuses).
 */
const HEAD = 8;
const KIND_SAMPLES = 1;
const KIND_JSON = 2;
const QUALITY: Sample['q'][] = ['good', 'uncertain', 'bad'];
const Q_CODE: Record<Sample['q'], number> = { good: 0, uncertain: 1, bad: 2 };

function frame(body: Buffer, kind: number): Buffer {
  const f = Buffer.allocUnsafe(HEAD + 1 + body.length);
  f.writeUInt32LE(1 + body.length, 0);
  f[HEAD] = kind;
  body.copy(f, HEAD + 1);
  f.writeUInt32LE(crc32(f.subarray(HEAD)), 4);
  return f;
}

/** UTF-8 bytes of the tag names seen (few, repeated in every message); bounded. */
const tagBytes = new Map<string, Buffer>();
function bytesOf(tag: string): Buffer {
  let b = tagBytes.get(tag);
  if (!b) {
    if (tagBytes.size >= 65_536) tagBytes.clear();
    b = Buffer.from(tag, 'utf8');
    tagBytes.set(tag, b);
  }
  return b;
}

function encodeSamples(chamber: string, receivedMs: number, samples: readonly LoggedSample[]): Buffer {
  let size = HEAD + 1 + 2 + Buffer.byteLength(chamber) + 8 + 4;
  for (const s of samples) size += 2 + bytesOf(s.tag).length + 18;
  const b = Buffer.allocUnsafe(size);
  let o = HEAD;
  b[o++] = KIND_SAMPLES;
  const cl = b.write(chamber, o + 2);
  b.writeUInt16LE(cl, o);
  o += 2 + cl;
  b.writeDoubleLE(receivedMs, o);
  b.writeUInt32LE(samples.length, o + 8);
  o += 12;
  for (const s of samples) {
    const t = bytesOf(s.tag);
    const tl = t.length;
    b[o] = tl & 0xff;
    b[o + 1] = tl >>> 8;
    t.copy(b, o + 2);
    o += 2 + tl;
    b.writeDoubleLE(s.ts, o);
    const v = s.value;
    b[o + 8] = v === null || typeof v === 'string' ? 0 : typeof v === 'number' ? 1 : v ? 3 : 2;
    b.writeDoubleLE(typeof v === 'number' ? v : 0, o + 9);
    b[o + 17] = Q_CODE[s.q];
    o += 18;
  }
  b.writeUInt32LE(o - HEAD, 0);
  b.writeUInt32LE(crc32(b.subarray(HEAD, o)), 4);
  return b.subarray(0, o);
}

function decodeSamples(body: Buffer): LogEntry {
  let o = 1;
  const cl = body.readUInt16LE(o);
  const c = body.toString('utf8', o + 2, o + 2 + cl);
  o += 2 + cl;
  const r = body.readDoubleLE(o);
  const n = body.readUInt32LE(o + 8);
  o += 12;
  const s: Array<[string, number, number | boolean | null, Sample['q']]> = [];
  for (let i = 0; i < n; i++) {
    const tl = body.readUInt16LE(o);
    const tag = body.toString('utf8', o + 2, o + 2 + tl);
    o += 2 + tl;
    const kind = body[o + 8]!;
    const value = kind === 0 ? null : kind === 1 ? body.readDoubleLE(o + 9) : kind === 3;
    s.push([tag, body.readDoubleLE(o), value, QUALITY[body[o + 17]!] ?? 'bad']);
    o += 18;
  }
  return { c, r, s };
}

export class RunFile {
  private pending: Buffer[] = [];
  private logDirty = false;
  private logUnsynced = false;
  private constructor(
    readonly path: string,
    readonly writer: NetcdfWriter,
    readonly grid: TimeGrid,
    private readonly run: RunInfo,
    private readonly now: () => number,
    private readonly slotsFd: number,
    private readonly logFd: number | undefined,
    private readonly doSync: boolean,
  ) {}

  /** Creates the file, or resumes it when it exists (same run) and replays its sample log. */
  static open(path: string, run: RunInfo, vars: readonly ArchiveVar[], opts: RunFileOptions = {}): RunFile {
    const now = opts.now ?? Date.now;
    const writer = existsSync(path)
      ? NetcdfWriter.resume(path, opts)
      : NetcdfWriter.create(path, buildRunSchema(run, vars).schema, opts);
    // A file begun before derived variables existed resumes without them.
    if (run.derived && !writer.header.vars.some((v) => v.name === VPD_VAR)) run = { ...run, derived: undefined };
    const { schema, gridVars } = buildRunSchema(run, vars);
    let slotsFd: number | undefined;
    let logFd: number | undefined;
    try {
      const mismatch = schema.variables.find((v) => {
        const got = writer.header.vars.find((x) => x.name === v.name);
        return (
          !got || got.type !== v.type || got.dimIds.map((id) => writer.header.dims[id]!.name).join() !== v.dims.join()
        );
      });
      const chambers = writer.header.dims.find((d) => d.name === 'chamber')?.size;
      if (mismatch || chambers !== run.chambers.length) {
        throw new Error(
          `${path}: existing file does not match the run (${mismatch ? `variable ${mismatch.name}` : 'chamber count'}); not resuming`,
        );
      }
      const ncell = gridVars.length * run.chambers.length;
      // A resumed file keeps its own grid (record 0's time), e.g. one begun by a version that placed slot 0 otherwise.
      const time = writer.recordCount > 0 ? writer.recordVar('time') : undefined;
      if (time) {
        const first = Math.round(writer.readRecordBytes(0, 1).readDoubleBE(time.off) * 1000);
        if (Number.isFinite(first) && first !== run.startMs) run = { ...run, startMs: first };
      }
      slotsFd = openSync(`${path}.slots`, existsSync(`${path}.slots`) ? 'r+' : 'w+');
      const derive = run.derived
        ? derivedComputer(run.derived, (name) => writer.recordVar(name), writer.layout.recsize)
        : undefined;
      const store = slotStore(writer, slotsFd, ncell, derive);
      const grid = new TimeGrid({
        startMs: run.startMs,
        periodMs: run.periodMs,
        chambers: run.chambers,
        vars: gridVars,
        store,
        now,
        maxAheadMs: opts.maxAheadMs,
        onChange: opts.onChange,
        runStartMs: opts.runStartMs,
        endMs: opts.endMs,
        cacheRecords: opts.cacheRecords,
      });
      const logPath = `${path}.log`;
      const replay = existsSync(logPath) ? readLog(logPath) : [];
      if (opts.log !== false) logFd = openSync(logPath, 'a');
      const rf = new RunFile(path, writer, grid, run, now, slotsFd, logFd, opts.fsync ?? true);
      // Replayed samples were accepted before the restart: not refused again as "future".
      for (const e of replay) rf.apply(e, true);
      rf.logDirty = replay.length > 0;
      return rf;
    } catch (err) {
      if (slotsFd !== undefined) closeSync(slotsFd);
      if (logFd !== undefined) closeSync(logFd);
      writer.close();
      throw err;
    }
  }

  get stats(): GridStats {
    return this.grid.stats;
  }

  /** One sample, not logged (tests, tools). */
  add(s: Pick<Sample, 'chamber' | 'tag' | 'ts' | 'value' | 'q'>): boolean {
    return this.grid.add(s);
  }

  /**
   * Samples of one message of a chamber: logged (durable at the next `commitLog`) and
   * placed on the grid. Returns how many were refused (future, outside the run…).
   */
  addMessage(chamber: string, samples: readonly LoggedSample[], receivedMs: number): number {
    let refused = 0;
    let newest = -Infinity;
    let ok: boolean[] | undefined;
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      if (this.grid.addOf(chamber, s)) {
        if (s.ts > newest) newest = s.ts;
      } else {
        refused++;
        (ok ??= samples.map(() => true))[i] = false;
      }
    }
    // Usually every sample is taken: the message is logged as it is.
    const accepted = ok ? samples.filter((_, i) => ok[i]) : samples;
    if (newest > -Infinity) this.grid.observeClock(chamber, newest, receivedMs);
    if (accepted.length && this.logFd !== undefined) this.pending.push(encodeSamples(chamber, receivedMs, accepted));
    return refused;
  }

  /** A chamber status: offline/error from `ts` on makes its cells without a sample `offline`. */
  setStatus(chamber: string, online: boolean, ts: number): void {
    this.grid.setStatus(chamber, online, ts);
    this.append({ st: chamber, on: online, ts });
  }

  /** Writes the pending log entries (a process kill no longer loses them); `sync` also fdatasyncs (a power cut neither). */
  commitLog(sync = true): void {
    if (this.logFd === undefined) return;
    if (this.pending.length) {
      const b = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
      // A failed write keeps the entries pending (tried again); a partial one is cut at replay by its CRC.
      let done = 0;
      while (done < b.length) done += writeSync(this.logFd, b, done, b.length - done);
      this.pending = [];
      this.logDirty = true;
      this.logUnsynced = true;
    }
    if (sync && this.logUnsynced && this.doSync) fdatasyncSync(this.logFd);
    if (sync) this.logUnsynced = false;
  }

  /**
   * Allocates slots up to `nowMs` when given (wall clock minus an allowance for source
   * clocks running behind), writes the grid to the file, syncs it, then empties the log.
   */
  tick(nowMs?: number): void {
    if (nowMs !== undefined) this.grid.advance(nowMs);
    this.flush();
  }

  flush(): void {
    this.grid.flush();
    const n = this.writer.recordCount;
    if (n > 0)
      this.writer.setGlobalAttributes({
        ...coverageAttributes(this.run.startMs, this.run.startMs + (n - 1) * this.run.periodMs, this.now()),
        ...this.clockAttributes(),
      });
    this.writer.flush();
    if (this.doSync) {
      fdatasyncSync(this.slotsFd);
      this.writer.sync();
    }
    if (this.logFd !== undefined && this.logDirty && this.pending.length === 0) {
      // Everything in the log is in the synced file now.
      ftruncateSync(this.logFd, 0);
      if (this.doSync) fdatasyncSync(this.logFd);
      this.logDirty = false;
      this.logUnsynced = false;
    }
  }

  /** Completes the grid to `endMs`, writes the final header, removes the log and slots files. */
  close(endMs?: number): void {
    this.grid.finish(endMs);
    this.grid.flush();
    if (this.writer.recordCount > this.grid.slots) this.writer.truncateRecords(this.grid.slots);
    const n = this.writer.recordCount;
    this.writer.close({
      ...coverageAttributes(
        this.run.startMs,
        this.run.startMs + Math.max(0, n - 1) * this.run.periodMs,
        this.now(),
        true,
      ),
      ...this.clockAttributes(),
    });
    this.release();
    removeIfThere(`${this.path}.slots`);
    removeIfThere(`${this.path}.log`);
  }

  /** Closes the files without finishing the run (it resumes at the next open). */
  abandon(): void {
    try {
      this.commitLog();
      this.flush();
    } finally {
      this.writer.close();
      this.release();
    }
  }

  private release(): void {
    closeSync(this.slotsFd);
    if (this.logFd !== undefined) closeSync(this.logFd);
  }

  /** Per chamber clock offset and refused future samples, as global attributes. */
  private clockAttributes(): Record<string, { type: 'double' | 'int'; value: number[] }> {
    const clocks = this.run.chambers.map((c) => this.grid.clock(c));
    return {
      clock_offset_ms: { type: 'double', value: clocks.map((c) => c.offsetMs ?? NaN) },
      future_samples_refused: { type: 'int', value: clocks.map((c) => c.future) },
    };
  }

  private append(e: LogEntry): void {
    if (this.logFd === undefined) return;
    this.pending.push(frame(Buffer.from(JSON.stringify(e)), KIND_JSON));
  }

  private apply(e: LogEntry, replay: boolean): void {
    if ('st' in e) {
      this.grid.setStatus(e.st, e.on, e.ts);
      return;
    }
    for (const [tag, ts, value, q] of e.s) this.grid.add({ chamber: e.c, tag, ts, value, q }, replay);
  }
}

function removeIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * The grid's store: records in the NetCDF file, distance codes in the `.slots` file.
 * `derive` fills the derived variables of every record written (so patched records too).
 */
function slotStore(writer: NetcdfWriter, fd: number, ncell: number, derive?: DeriveRecords): GridStore {
  const row = ncell * 2;
  return {
    recsize: writer.layout.recsize,
    count: () => writer.recordCount,
    recordVar: (name) => writer.recordVar(name),
    read(k, n) {
      const rec = writer.readRecordBytes(k, n);
      const count = rec.length / writer.layout.recsize;
      const dist = new Uint16Array(count * ncell);
      const b = Buffer.from(dist.buffer, dist.byteOffset, dist.byteLength);
      const got = readSync(fd, b, 0, b.length, k * row);
      // Rows the side file lost (crash before its sync): treat as measured, never overwritten.
      if (got < b.length) b.fill(0, got);
      return { rec, dist };
    },
    truncate(n) {
      writer.truncateRecords(n);
      ftruncateSync(fd, n * row);
    },
    write(k, rec, dist) {
      derive?.(rec);
      writer.writeRecordBytes(k, rec);
      const b = Buffer.from(dist.buffer, dist.byteOffset, dist.byteLength);
      let done = 0;
      while (done < b.length) done += writeSync(fd, b, done, b.length - done, k * row + done);
    },
  };
}

/** The valid entries of a sample log, up to the first torn or corrupt frame. */
function readLog(path: string): LogEntry[] {
  const fd = openSync(path, 'r');
  let buf: Buffer;
  try {
    buf = Buffer.alloc(fstatSync(fd).size);
    let done = 0;
    while (done < buf.length) {
      const got = readSync(fd, buf, done, buf.length - done, done);
      if (got === 0) break;
      done += got;
    }
  } finally {
    closeSync(fd);
  }
  const out: LogEntry[] = [];
  let off = 0;
  while (off + HEAD <= buf.length) {
    const len = buf.readUInt32LE(off);
    const end = off + HEAD + len;
    if (end > buf.length) break;
    const body = buf.subarray(off + HEAD, end);
    if (crc32(body) !== buf.readUInt32LE(off + 4)) break;
    try {
      out.push(body[0] === KIND_SAMPLES ? decodeSamples(body) : (JSON.parse(body.toString('utf8', 1)) as LogEntry));
    } catch {
      break;
    }
    off = end;
  }
  return out;
}
