import {
  closeSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  statfsSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { SpoolConfig } from '../config/instance-schema.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { errnoOf, makeDir, WriteFailedError, writeFaults, type WriteFaults } from '../core/write-faults.ts';
import { decodeFrame, encodeFrame, nextFrame, type SpoolRecord } from './spool-frame.ts';
import { SegmentScanner, type ScannedPiece } from './spool-scan.ts';

export type { SpoolRecord } from './spool-frame.ts';

interface Segment {
  first: number;
  count: number;
  bytes: number;
  samples: number;
  /** Records, bytes and samples of this segment already acknowledged. */
  ackedCount: number;
  ackedBytes: number;
  ackedSamples: number;
  path: string;
}

/** A record kept in memory because the spool folder cannot be written (gateway only). */
interface MemRecord {
  seq: number;
  frame: Buffer;
  samples: number;
  dropped?: boolean;
}

export interface SpoolDepth {
  messages: number;
  bytes: number;
  samples: number;
}

export interface SpoolOptions {
  log?: Logger;
  /** Where write failures are reported (default: the process-wide registry). */
  faults?: WriteFaults;
  /** Name of the write target in health (default `spool`). */
  target?: string;
  /**
   * What `append` does while the folder cannot be written: `throw` (default) refuses the
   * record (SpoolWriteError), so a caller that acknowledges what it spooled (the
   * collector) does not acknowledge it; `memory` keeps it in memory, in order, handed
   * out for sending like any record, and written to the folder when it is writable again
   * (the gateway: its samples have nowhere else to go). Memory is bounded by `memoryBytes`;
   * past it the oldest unsent records are dropped and counted.
   */
  onWriteFailure?: 'throw' | 'memory';
  memoryBytes?: number;
}

/** The spool folder cannot be written and the record was refused. */
export class SpoolWriteError extends WriteFailedError {}

const READ_CHUNK = 1 << 20;
const CURSOR_EVERY_MS = 200;
/** Free bytes needed beyond what is held in memory before the folder counts as writable again. */
const MIN_FREE_BYTES = 16 * 1024;
const KNOWN_FILES = new Set(['cursor.json', 'cursor.json.tmp']);

/**
 * On-disk, append-only queue in segment files: the gateway's outgoing MQTT messages
 * (trimmed after PUBACK) and the collector's InfluxDB buffer (trimmed after a 2xx).
 * Records are appended before they are sent and trimmed only once acknowledged, so an
 * outage or a restart loses nothing. Bounded: past `max_bytes` the oldest
 * segment is dropped and its unsent samples counted. Memory holds segment bookkeeping
 * and one read chunk, never the backlog.
 *
 * Faults: a write that fails (read-only, full, immutable folder) never throws out of a
 * timer; it is reported in health (path and errno) and retried every second; see
 * {@link SpoolOptions.onWriteFailure} for what happens to new records meanwhile. At
 * start, damaged records are skipped by resynchronising on the next valid frame, each
 * logged and counted in `droppedMessages`/`droppedSamples`; entries of the folder that
 * are not segment files are named in the log and in `foreign`, and left alone.
 */
export class Spool {
  private segments: Segment[] = [];
  private fd = -1;
  private nextSeq = 0;
  /** Running total of samples appended (stored in every frame to count what damage loses). */
  private cumulative = 0;
  private acked = 0;
  /** Send cursor: next record to hand to the publisher. */
  private sendSeq = 0;
  private sendOffset = 0;
  /** Sample counts and sizes of records handed out but not yet acknowledged, in order. */
  private inflight: Array<{ seq: number; samples: number; size: number }> = [];
  private cursorDirty = false;
  private cursorTimer?: NodeJS.Timeout;
  private fsyncTimer?: NodeJS.Timeout;
  private listeners: Array<() => void> = [];
  private readCache?: { path: string; start: number; buf: Buffer };
  private minRead = 0;
  /** Records not on disk (the folder could not be written), after every disk record. */
  private mem: MemRecord[] = [];
  private memBytes = 0;
  private failing = false;
  /** Write failures so far (to tell whether an append met a new one). */
  private failures = 0;
  private pendingUnlink: string[] = [];
  private readonly countedDamage = new Set<string>();
  private readonly log: Logger;
  private readonly faults: WriteFaults;
  private readonly target: string;
  private readonly mode: 'throw' | 'memory';
  private readonly memoryBound: number;
  droppedMessages = 0;
  droppedSamples = 0;
  totalAppended = 0;
  /** Records found damaged at start and skipped (also in droppedMessages). */
  corruptRecords = 0;
  /** Entries of the folder that are not the spool's own files (named, left alone). */
  foreign: string[] = [];

  private constructor(
    private readonly dir: string,
    private readonly cfg: SpoolConfig,
    o: SpoolOptions,
  ) {
    this.log = o.log ?? createLogger('spool');
    this.faults = o.faults ?? writeFaults;
    this.target = o.target ?? 'spool';
    this.mode = o.onWriteFailure ?? 'throw';
    this.memoryBound = o.memoryBytes ?? Math.min(cfg.max_bytes, 64 * 1024 ** 2);
  }

  /** Opens (creating) the spool folder; never throws for an unwritable folder (see the class comment). */
  static open(dir: string, cfg: SpoolConfig, o: SpoolOptions = {}): Spool {
    const s = new Spool(dir, cfg, o);
    try {
      makeDir(dir);
    } catch (err) {
      s.writeFailed(dir, err);
    }
    s.recover();
    if (cfg.fsync === 'interval') {
      s.fsyncTimer = setInterval(() => s.sync(), cfg.fsync_interval_ms);
      s.fsyncTimer.unref();
    }
    return s;
  }

  /** Appends one message; returns its sequence number. */
  append(topic: string, payload: string | Buffer, samples: number): number {
    const seq = this.nextSeq;
    const cumulative = this.cumulative + samples;
    const frame = encodeFrame(seq, cumulative, topic, payload, samples);
    let onDisk = false;
    if (!this.failing || this.mode === 'throw') {
      const wasFailing = this.failing;
      const failures = this.failures;
      try {
        this.writeFrame(frame, samples);
        onDisk = true;
        if (wasFailing && this.failures === failures) this.recovered();
      } catch (err) {
        const path = this.segments.at(-1)?.path ?? this.dir;
        this.writeFailed(path, err);
        if (this.mode === 'throw')
          throw new SpoolWriteError(
            this.target,
            path,
            errnoOf(err),
            `spool ${this.dir} cannot be written (${errnoOf(err)}: ${this.faults.get(this.target)?.message ?? String(err)}); record refused`,
          );
      }
    }
    if (!onDisk) {
      this.mem.push({ seq, frame, samples });
      this.memBytes += frame.length;
    }
    this.nextSeq++;
    this.cumulative = cumulative;
    this.totalAppended++;
    if (!onDisk) this.enforceMemoryBound();
    this.enforceBound();
    for (const l of this.listeners) l();
    return seq;
  }

  /** The sequence number the next append will get. */
  get nextSequence(): number {
    return this.nextSeq;
  }

  /** True while the folder cannot be written (records go to memory or are refused). */
  get degraded(): boolean {
    return this.failing;
  }

  /** Messages held in memory because the folder cannot be written. */
  get inMemory(): number {
    return this.mem.reduce((n, m) => n + (m.dropped ? 0 : 1), 0);
  }

  /** Called after every append (the publisher's pump waits on it). */
  onAppend(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Up to `max` records from the send cursor, in order. */
  read(max: number): SpoolRecord[] {
    const out: SpoolRecord[] = [];
    while (out.length < max && this.sendSeq < this.nextSeq) {
      const m0 = this.mem[0];
      if (m0 && this.sendSeq >= m0.seq) {
        const m = this.mem[this.sendSeq - m0.seq];
        if (!m) break;
        this.sendSeq++;
        if (m.dropped) continue;
        const f = decodeFrame(m.frame, 0);
        if (f.kind !== 'ok') continue;
        out.push({ seq: m.seq, topic: f.topic, payload: f.payload, samples: f.samples });
        this.inflight.push({ seq: m.seq, samples: m.samples, size: m.frame.length });
        continue;
      }
      const seg = this.segmentOf(this.sendSeq);
      if (!seg) {
        // Between segments (records acknowledged from memory, or lost to damage): skip to the next one.
        const next = this.segments.find((s) => s.first > this.sendSeq && s.count > 0)?.first ?? m0?.seq;
        if (next === undefined || next <= this.sendSeq) break;
        this.sendSeq = next;
        this.sendOffset = 0;
        continue;
      }
      if (this.sendSeq === seg.first) this.sendOffset = 0;
      if (seg.bytes - this.sendOffset <= 0) break;
      // The last chunk read is kept: consecutive reads (a batch at a time) mostly hit it.
      const c = this.readCache;
      const cached =
        c !== undefined &&
        c.path === seg.path &&
        this.sendOffset >= c.start &&
        this.sendOffset < c.start + c.buf.length;
      let chunk: Buffer;
      try {
        chunk = cached
          ? c.buf.subarray(this.sendOffset - c.start)
          : this.readChunk(
              seg.path,
              this.sendOffset,
              Math.min(Math.max(READ_CHUNK, this.minRead), seg.bytes - this.sendOffset),
            );
      } catch (err) {
        this.log.error(`spool ${seg.path}: cannot read (${errnoOf(err)}: ${(err as Error).message}); will try again`);
        break;
      }
      let off = 0;
      while (out.length < max && this.sendSeq < seg.first + seg.count) {
        const f = decodeFrame(chunk, off);
        if (f.kind !== 'ok') {
          if (off > 0) break;
          // The record runs past the bytes at hand (cache end, or a record above READ_CHUNK): read it whole.
          const need = f.kind === 'incomplete' ? f.need : 0;
          if (f.kind !== 'incomplete' || (!cached && need <= chunk.length) || need > seg.bytes - this.sendOffset) {
            // Damaged since it was written or checked at start: skip what is left of this segment.
            this.skipDamagedTail(seg);
            break;
          }
          this.readCache = undefined;
          this.minRead = need;
          break;
        }
        out.push({ seq: this.sendSeq, topic: f.topic, payload: f.payload, samples: f.samples });
        this.inflight.push({ seq: this.sendSeq, samples: f.samples, size: f.size });
        off += f.size;
        this.sendOffset += f.size;
        this.sendSeq++;
      }
    }
    return out;
  }

  /** Every record up to and including `seq` is acknowledged: trim it. */
  ack(seq: number): void {
    while (this.inflight.length && this.inflight[0]!.seq <= seq) {
      const r = this.inflight.shift()!;
      const seg = this.segmentOf(r.seq);
      if (seg) {
        seg.ackedCount++;
        seg.ackedBytes += r.size;
        seg.ackedSamples += r.samples;
      }
      this.acked = r.seq + 1;
    }
    while (this.mem.length && this.mem[0]!.seq < this.acked) {
      const m = this.mem.shift()!;
      if (!m.dropped) this.memBytes -= m.frame.length;
    }
    // Whole segments fully acknowledged are deleted (the one being written is kept).
    while (this.segments.length > 1 && this.segments[0]!.ackedCount >= this.segments[0]!.count) this.removeOldest();
    this.cursorDirty = true;
    this.scheduleCursor();
  }

  /** Records handed out but unacknowledged will be read again (after an error). */
  rewind(): void {
    this.inflight = [];
    this.sendSeq = this.acked;
    const seg = this.segmentOf(this.acked);
    this.sendOffset = seg ? seg.ackedBytes : 0;
  }

  depth(): SpoolDepth {
    let messages = 0,
      bytes = 0,
      samples = 0;
    for (const s of this.segments) {
      messages += s.count - s.ackedCount;
      bytes += s.bytes - s.ackedBytes;
      samples += s.samples - s.ackedSamples;
    }
    for (const m of this.mem) {
      if (m.dropped) continue;
      messages++;
      bytes += m.frame.length;
      samples += m.samples;
    }
    return { messages, bytes, samples };
  }

  /** Bytes on disk (acknowledged records of the oldest segment included). */
  diskBytes(): number {
    return this.segments.reduce((n, s) => n + s.bytes, 0);
  }

  sync(): void {
    if (this.fd < 0) return;
    try {
      fsyncSync(this.fd);
    } catch (err) {
      this.writeFailed(this.segments.at(-1)?.path ?? this.dir, err);
    }
  }

  /** Closes the spool; records still in memory are written if the folder allows, else counted as dropped. */
  close(): void {
    clearInterval(this.fsyncTimer);
    clearTimeout(this.cursorTimer);
    if (this.failing) this.tryRecover();
    const left = this.mem.filter((m) => !m.dropped);
    if (left.length) {
      const samples = left.reduce((n, m) => n + m.samples, 0);
      this.droppedMessages += left.length;
      this.droppedSamples += samples;
      this.log.error(
        `spool ${this.dir} still cannot be written: ${left.length} messages (${samples} samples) held in memory are lost at shutdown (counted in dropped_samples)`,
      );
      this.mem = [];
      this.memBytes = 0;
    }
    if (this.fd >= 0) {
      try {
        fsyncSync(this.fd);
        closeSync(this.fd);
      } catch (err) {
        this.log.error(
          `spool ${this.segments.at(-1)?.path}: closing failed (${errnoOf(err)}: ${(err as Error).message})`,
        );
      }
      this.fd = -1;
    }
    this.cursorDirty = true;
    this.writeCursor();
    this.faults.ok(this.target);
  }

  // ---- writing and faults ---------------------------------------------------

  private writeFrame(frame: Buffer, samples: number): void {
    let seg = this.segments.at(-1);
    if (!seg || this.fd < 0 || (seg.bytes > 0 && seg.bytes + frame.length > this.cfg.segment_bytes)) seg = this.roll();
    let off = 0;
    try {
      while (off < frame.length) off += writeSync(this.fd, frame, off);
    } catch (err) {
      // A write cut short (disk full) leaves part of a frame: cut it off, or at least never append after it.
      try {
        if (off > 0) ftruncateSync(this.fd, seg.bytes);
      } finally {
        this.closeFd();
      }
      throw err;
    }
    seg.count++;
    seg.bytes += frame.length;
    seg.samples += samples;
    if (this.cfg.fsync === 'always') {
      try {
        fsyncSync(this.fd);
      } catch (err) {
        // The record is in the file (bookkept above); what follows goes to memory until the folder works.
        this.writeFailed(seg.path, err);
      }
    }
  }

  private closeFd(): void {
    if (this.fd < 0) return;
    try {
      closeSync(this.fd);
    } catch {
      // Already unusable.
    }
    this.fd = -1;
  }

  /** A write in the folder failed: report it (health), and retry every second until it works. */
  private writeFailed(path: string, err: unknown): void {
    this.failing = true;
    this.failures++;
    this.closeFd();
    this.faults.fail(this.target, path, err, {
      effect:
        this.mode === 'memory'
          ? `new samples are kept in memory (up to ${Math.round(this.memoryBound / 1024 ** 2)} MiB) and published while the broker acknowledges; past that the oldest are dropped and counted in dropped_samples`
          : 'new data is refused (not acknowledged, so the broker keeps it) until the folder can be written',
      retry: () => this.tryRecover(),
    });
  }

  private recovered(): void {
    this.failing = false;
    this.faults.ok(this.target);
  }

  /**
   * Called every second while failing: writes what is held in memory to a new segment
   * (in order, fsynced), retries pending deletions and the cursor. True when it all worked.
   */
  private tryRecover(): boolean {
    try {
      makeDir(this.dir);
      const fs = statfsSync(this.dir);
      const free = (process.getuid?.() === 0 ? fs.bfree : fs.bavail) * fs.bsize;
      if (free < this.memBytes + MIN_FREE_BYTES)
        throw Object.assign(new Error(`no space left on device (${free} bytes free)`), { code: 'ENOSPC' });
      const live = this.mem.filter((m) => !m.dropped);
      if (live.length) this.flushMemory(live);
      else if (this.fd < 0) this.roll();
      for (const p of this.pendingUnlink.splice(0)) this.unlink(p);
      this.failing = false;
      this.cursorDirty = true;
      this.writeCursor();
    } catch (err) {
      this.failing = true;
      this.closeFd();
      const prev = this.faults.get(this.target);
      if (prev && prev.errno !== errnoOf(err)) this.faults.fail(this.target, this.dir, err);
      return false;
    }
    if (this.failing) return false;
    this.log.info(`spool ${this.dir} is writable again`);
    return true;
  }

  private flushMemory(live: MemRecord[]): void {
    this.closeFd();
    // An empty segment left by a failed first write would shadow the new one's numbering.
    const empty = this.segments.at(-1);
    if (empty && empty.count === 0) {
      this.segments.pop();
      if (empty.path !== this.segmentPath(live[0]!.seq)) this.unlink(empty.path);
    }
    const first = live[0]!.seq;
    const path = this.segmentPath(first);
    const data = Buffer.concat(live.map((m) => m.frame));
    const fd = openSync(path, 'w');
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off);
      fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      try {
        unlinkSync(path);
      } catch {
        // Left for the next start to find (it is a valid prefix).
      }
      throw err;
    }
    // Records in memory were contiguous in seq apart from dropped ones: a dropped record
    // inside the run would break the segment's numbering, so write runs separately.
    const contiguous = live.every((m, i) => m.seq === first + i);
    if (!contiguous) {
      closeSync(fd);
      unlinkSync(path);
      this.flushRuns(live);
    } else {
      this.fd = fd;
      this.segments.push({
        first,
        count: live.length,
        bytes: data.length,
        samples: live.reduce((n, m) => n + m.samples, 0),
        ackedCount: 0,
        ackedBytes: 0,
        ackedSamples: 0,
        path,
      });
    }
    if (this.sendSeq >= first) {
      const seg = this.segmentOf(this.sendSeq);
      if (seg)
        this.sendOffset = live
          .filter((m) => m.seq >= seg.first && m.seq < this.sendSeq)
          .reduce((n, m) => n + m.frame.length, 0);
    }
    this.mem = [];
    this.memBytes = 0;
    this.log.info(`spool: ${live.length} messages held in memory written to ${path}`);
  }

  /** Writes memory records as one segment per run of consecutive seqs. */
  private flushRuns(live: MemRecord[]): void {
    let start = 0;
    for (let i = 1; i <= live.length; i++) {
      if (i < live.length && live[i]!.seq === live[i - 1]!.seq + 1) continue;
      const run = live.slice(start, i);
      const path = this.segmentPath(run[0]!.seq);
      const data = Buffer.concat(run.map((m) => m.frame));
      writeFileSync(path, data);
      this.segments.push({
        first: run[0]!.seq,
        count: run.length,
        bytes: data.length,
        samples: run.reduce((n, m) => n + m.samples, 0),
        ackedCount: 0,
        ackedBytes: 0,
        ackedSamples: 0,
        path,
      });
      start = i;
    }
  }

  /** Past the memory bound, the oldest records not handed out yet are dropped and counted. */
  private enforceMemoryBound(): void {
    for (let i = 0; this.memBytes > this.memoryBound && i < this.mem.length - 1; i++) {
      const m = this.mem[i]!;
      if (m.dropped || m.seq < this.sendSeq) continue;
      m.dropped = true;
      this.memBytes -= m.frame.length;
      this.droppedMessages++;
      this.droppedSamples += m.samples;
      if (this.droppedMessages % 100 === 1)
        this.log.warn(
          `spool ${this.dir} cannot be written and the memory bound (${this.memoryBound} bytes) is full: dropping the oldest unsent samples (${this.droppedSamples} dropped so far)`,
        );
    }
    while (this.mem.length && this.mem[0]!.dropped && this.mem[0]!.seq >= this.sendSeq) this.mem.shift();
  }

  // ---- internals -----------------------------------------------------------

  private segmentPath(first: number): string {
    return join(this.dir, `seg-${String(first).padStart(16, '0')}.log`);
  }

  private readChunk(path: string, start: number, len: number): Buffer {
    const buf = Buffer.allocUnsafe(len);
    const fd = openSync(path, 'r');
    let got: number;
    try {
      got = readSync(fd, buf, 0, len, start);
    } finally {
      closeSync(fd);
    }
    const chunk = buf.subarray(0, got);
    this.readCache = { path, start, buf: chunk };
    return chunk;
  }

  /** A record that cannot be decoded while sending (damaged after start): the rest of the segment is skipped and counted. */
  private skipDamagedTail(seg: Segment): void {
    const left = seg.first + seg.count - this.sendSeq;
    let buf: Buffer;
    try {
      buf = readFileSync(seg.path);
    } catch {
      buf = Buffer.alloc(0);
    }
    // Resynchronise on the next valid frame of this segment if there is one.
    const at = nextFrame(buf, this.sendOffset + 1);
    const f = at >= 0 ? decodeFrame(buf, at) : undefined;
    if (f && f.kind === 'ok' && f.seq !== undefined && f.seq > this.sendSeq && f.seq < seg.first + seg.count) {
      const lost = f.seq - this.sendSeq;
      this.countLost(seg.path, this.sendOffset, at - this.sendOffset, lost, undefined);
      // The skipped records are acknowledged with the next ones (their bytes with the first).
      for (let i = 0; i < lost; i++)
        this.inflight.push({ seq: this.sendSeq + i, samples: 0, size: i === 0 ? at - this.sendOffset : 0 });
      this.sendSeq = f.seq;
      this.sendOffset = at;
      this.readCache = undefined;
      return;
    }
    this.countLost(seg.path, this.sendOffset, seg.bytes - this.sendOffset, left, undefined);
    for (let i = 0; i < left; i++)
      this.inflight.push({ seq: this.sendSeq + i, samples: 0, size: i === 0 ? seg.bytes - this.sendOffset : 0 });
    this.sendSeq = seg.first + seg.count;
    this.sendOffset = seg.bytes;
    this.readCache = undefined;
  }

  private countLost(path: string, offset: number, length: number, records: number, samples: number | undefined): void {
    const key = `${path}:${offset}`;
    if (this.countedDamage.has(key)) return;
    this.countedDamage.add(key);
    this.corruptRecords += records;
    this.droppedMessages += records;
    if (samples !== undefined) this.droppedSamples += samples;
    this.cursorDirty = true;
    const what =
      records === 0 && samples === undefined
        ? 'an unknown number of records (their headers are damaged too)'
        : `${records} record(s)${samples !== undefined ? ` (${samples} samples)` : ''}`;
    this.log.error(
      `spool ${path}: ${length} damaged bytes at byte ${offset}: ${what} skipped, resynchronised on the next valid record (counted in dropped_samples)`,
    );
  }

  private segmentOf(seq: number): Segment | undefined {
    for (const s of this.segments) if (seq >= s.first && seq < s.first + Math.max(s.count, 1)) return s;
    return undefined;
  }

  private roll(): Segment {
    if (this.fd >= 0) {
      fsyncSync(this.fd);
      this.closeFd();
    }
    const last = this.segments.at(-1);
    const path = this.segmentPath(this.nextSeq);
    const fd = openSync(path, 'a');
    if (last && last.count === 0) {
      this.segments.pop();
      if (last.path !== path) this.unlink(last.path);
    }
    const seg: Segment = {
      first: this.nextSeq,
      count: 0,
      bytes: 0,
      samples: 0,
      ackedCount: 0,
      ackedBytes: 0,
      ackedSamples: 0,
      path,
    };
    this.fd = fd;
    this.segments.push(seg);
    return seg;
  }

  private unlink(path: string): void {
    try {
      unlinkSync(path);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return;
      this.pendingUnlink.push(path);
      this.writeFailed(path, err);
    }
  }

  private removeOldest(): void {
    const seg = this.segments.shift()!;
    if (this.readCache?.path === seg.path) this.readCache = undefined;
    this.unlink(seg.path);
  }

  /** Past max_bytes, drop the oldest segment, counting what was never acknowledged. */
  private enforceBound(): void {
    while (this.segments.length > 1 && this.diskBytes() > this.cfg.max_bytes) {
      const seg = this.segments[0]!;
      this.droppedMessages += seg.count - seg.ackedCount;
      this.droppedSamples += seg.samples - seg.ackedSamples;
      this.removeOldest();
      const next = this.segments[0]!.first;
      this.inflight = this.inflight.filter((r) => r.seq >= next);
      if (this.acked < next) this.acked = next;
      if (this.sendSeq < next) {
        this.sendSeq = next;
        this.sendOffset = 0;
      }
      this.cursorDirty = true;
    }
  }

  private scheduleCursor(): void {
    if (this.cursorTimer) return;
    this.cursorTimer = setTimeout(() => {
      this.cursorTimer = undefined;
      this.writeCursor();
    }, CURSOR_EVERY_MS);
    this.cursorTimer.unref();
  }

  private writeCursor(): void {
    if (!this.cursorDirty) return;
    const tmp = join(this.dir, 'cursor.json.tmp');
    try {
      writeFileSync(
        tmp,
        JSON.stringify({
          acked: this.acked,
          cumulative: this.cumulative,
          droppedSamples: this.droppedSamples,
          droppedMessages: this.droppedMessages,
          corruptRecords: this.corruptRecords,
        }),
      );
      renameSync(tmp, join(this.dir, 'cursor.json'));
      this.cursorDirty = false;
    } catch (err) {
      this.writeFailed(join(this.dir, 'cursor.json'), err);
    }
  }

  /** Rebuilds bookkeeping from the segment files: damaged records skipped and counted, torn tails cut, strangers named. */
  private recover(): void {
    let cursor = { acked: 0, cumulative: 0, droppedSamples: 0, droppedMessages: 0, corruptRecords: 0 };
    try {
      cursor = { ...cursor, ...JSON.parse(readFileSync(join(this.dir, 'cursor.json'), 'utf8')) };
    } catch {
      // No cursor yet (fresh spool) or unreadable: replay everything present (at-least-once).
    }
    this.droppedSamples = cursor.droppedSamples;
    this.droppedMessages = cursor.droppedMessages;
    this.corruptRecords = cursor.corruptRecords;
    let names: string[] = [];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') {
        this.foreign.push(`(the folder cannot be listed: ${errnoOf(err)})`);
        this.log.error(
          `spool ${this.dir} cannot be listed (${errnoOf(err)}: ${(err as Error).message}); starting with an empty spool`,
        );
      }
    }
    const files: Array<{ name: string; first: number; path: string }> = [];
    for (const name of names.sort()) {
      if (KNOWN_FILES.has(name)) continue;
      const path = join(this.dir, name);
      if (/^seg-\d{16}\.log\.tmp$/.test(name)) {
        this.unlink(path); // a repair interrupted by a crash: the original is still there
        continue;
      }
      if (!/^seg-\d{16}\.log$/.test(name)) {
        this.foreign.push(name);
        continue;
      }
      try {
        const st = statSync(path);
        if (!st.isFile()) {
          this.foreign.push(`${name} (${st.isDirectory() ? 'a folder' : 'not a regular file'})`);
          continue;
        }
        files.push({ name, first: Number(name.slice(4, 20)), path });
      } catch (err) {
        this.foreign.push(`${name} (unreadable: ${errnoOf(err)})`);
      }
    }
    if (this.foreign.length)
      this.log.warn(
        `spool ${this.dir}: ignoring entries that are not spool segments: ${this.foreign.join(', ')} (left as they are; move them elsewhere)`,
      );

    // One file in memory at a time: a backlog of max_bytes is never loaded whole.
    const scanner = new SegmentScanner(cursor.acked);
    for (let i = 0; i < files.length; i++) {
      const { name, path } = files[i]!;
      let buf: Buffer;
      try {
        buf = readFileSync(path);
      } catch (err) {
        this.foreign.push(`${name} (unreadable: ${errnoOf(err)})`);
        this.log.error(`spool ${path}: cannot be read (${errnoOf(err)}); left as it is`);
        continue;
      }
      const f = scanner.file(name, files[i]!.first, buf, i === files.length - 1);
      try {
        if (f.rewrite === 'truncate') truncateSync(path, f.pieces[0]!.end);
        else if (f.rewrite === 'split') this.rewriteSplit(path, buf, f.pieces);
      } catch (err) {
        this.writeFailed(path, err);
        this.log.error(
          `spool ${path}: cannot repair (${errnoOf(err)}); its records after the damage are left on disk for the next start`,
        );
        // Keep only the records before the damage, read in place (the file is left untouched).
        f.pieces.splice(f.pieces[0]?.start === 0 ? 1 : 0);
        f.rewrite = 'none';
      }
      for (const p of f.pieces) {
        const segPath =
          p === f.pieces[0] && (f.rewrite !== 'split' || p.first === f.first) ? path : this.segmentPath(p.first);
        this.addRecovered(segPath, p, cursor.acked);
      }
    }
    scanner.finish();
    for (const d of scanner.damage) this.countLost(join(this.dir, d.file), d.offset, d.length, d.records, d.samples);
    for (const t of scanner.tails)
      this.log.warn(
        `spool ${join(this.dir, t.file)}: ${t.length} bytes after the last whole record at byte ${t.offset} (a write cut short) cut off`,
      );
    const scan = { nextSeq: scanner.nextSeq, cumulative: scanner.cumulative };
    const lastSeq = this.segments.length ? this.segments.at(-1)!.first + this.segments.at(-1)!.count : 0;
    this.nextSeq = Math.max(this.nextSeq, lastSeq, scan.nextSeq, cursor.acked);
    this.cumulative = Math.max(cursor.cumulative, scan.cumulative);
    this.acked = Math.max(cursor.acked, this.segments[0]?.first ?? this.nextSeq);
    this.rewind();
    if (this.corruptRecords !== cursor.corruptRecords) this.writeCursor();
    // The first append opens a new segment: nothing is ever appended after bytes written before a crash.
  }

  private addRecovered(path: string, p: ScannedPiece, acked: number): void {
    const seg: Segment = {
      first: p.first,
      count: p.records.length,
      bytes: 0,
      samples: 0,
      ackedCount: 0,
      ackedBytes: 0,
      ackedSamples: 0,
      path,
    };
    for (const r of p.records) {
      if (r.seq < acked) {
        seg.ackedCount++;
        seg.ackedBytes += r.size;
        seg.ackedSamples += r.samples;
      }
      seg.bytes += r.size;
      seg.samples += r.samples;
    }
    if (seg.count === 0 || seg.ackedCount === seg.count) {
      this.nextSeq = Math.max(this.nextSeq, p.first + p.records.length);
      this.unlink(path);
      return;
    }
    this.segments.push(seg);
  }

  /** Writes each run of valid records of a damaged file to its own segment file (fsynced), then replaces the original. */
  private rewriteSplit(path: string, buf: Buffer, pieces: ScannedPiece[]): void {
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      const target = i === 0 && path === this.segmentPath(p.first) ? path : this.segmentPath(p.first);
      const tmp = `${target}.tmp`;
      const fd = openSync(tmp, 'w');
      try {
        const data = buf.subarray(p.start, p.end);
        let off = 0;
        while (off < data.length) off += writeSync(fd, data, off);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, target);
    }
    if (!pieces.some((p) => this.segmentPath(p.first) === path)) unlinkSync(path);
  }
}
