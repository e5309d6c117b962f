import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { SpoolConfig } from '../config/instance-schema.ts';
import { decodeFrame, encodeFrame, HEADER, type SpoolRecord } from './spool-frame.ts';

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

export interface SpoolDepth { messages: number; bytes: number; samples: number }

const READ_CHUNK = 1 << 20;
const CURSOR_EVERY_MS = 200;

/**
 * On-disk, append-only queue in segment files: the gateway's outgoing MQTT messages
 * (trimmed after PUBACK) and the collector's InfluxDB buffer (trimmed after a 2xx).
 * Records are appended before they are sent and trimmed only once acknowledged, so an
 * outage or a restart loses nothing. Bounded: past `max_bytes` the oldest
 * segment is dropped and its unsent samples counted. Memory holds segment bookkeeping
 * and one read chunk, never the backlog.
 */
export class Spool {
  private segments: Segment[] = [];
  private fd = -1;
  private nextSeq = 0;
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
  droppedMessages = 0;
  droppedSamples = 0;
  totalAppended = 0;

  private constructor(private readonly dir: string, private readonly cfg: SpoolConfig) {}

  static open(dir: string, cfg: SpoolConfig): Spool {
    mkdirSync(dir, { recursive: true });
    const s = new Spool(dir, cfg);
    s.recover();
    if (cfg.fsync === 'interval') {
      s.fsyncTimer = setInterval(() => s.sync(), cfg.fsync_interval_ms);
      s.fsyncTimer.unref();
    }
    return s;
  }

  /** Appends one message; returns its sequence number. */
  append(topic: string, payload: string | Buffer, samples: number): number {
    const frame = encodeFrame(topic, payload, samples);
    let seg = this.segments.at(-1);
    if (!seg || this.fd < 0 || (seg.bytes > 0 && seg.bytes + frame.length > this.cfg.segment_bytes)) seg = this.roll();
    writeSync(this.fd, frame);
    if (this.cfg.fsync === 'always') fsyncSync(this.fd);
    seg.count++;
    seg.bytes += frame.length;
    seg.samples += samples;
    this.totalAppended++;
    const seq = this.nextSeq++;
    this.enforceBound();
    for (const l of this.listeners) l();
    return seq;
  }

  /** The sequence number the next append will get. */
  get nextSequence(): number {
    return this.nextSeq;
  }

  /** Called after every append (the publisher's pump waits on it). */
  onAppend(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Up to `max` records from the send cursor, in order. */
  read(max: number): SpoolRecord[] {
    const out: SpoolRecord[] = [];
    while (out.length < max && this.sendSeq < this.nextSeq) {
      const seg = this.segmentOf(this.sendSeq);
      if (!seg) break;
      if (this.sendSeq === seg.first) this.sendOffset = 0;
      if (seg.bytes - this.sendOffset <= 0) break;
      // The last chunk read is kept: consecutive reads (a batch at a time) mostly hit it.
      const c = this.readCache;
      const cached = c !== undefined && c.path === seg.path && this.sendOffset >= c.start && this.sendOffset < c.start + c.buf.length;
      const chunk = cached ? c.buf.subarray(this.sendOffset - c.start) : this.readChunk(seg.path, this.sendOffset, Math.min(Math.max(READ_CHUNK, this.minRead), seg.bytes - this.sendOffset));
      let off = 0;
      while (out.length < max && this.sendSeq < seg.first + seg.count) {
        const f = decodeFrame(chunk, off);
        if (!f) {
          if (off > 0) break;
          // The record runs past the bytes at hand (cache end, or a record above READ_CHUNK): read it whole.
          const need = chunk.length >= HEADER ? HEADER + chunk.readUInt32LE(0) : HEADER;
          if ((!cached && need <= chunk.length) || need > seg.bytes - this.sendOffset) {
            throw new Error(`spool ${seg.path}: unreadable record at byte ${this.sendOffset} (seq ${this.sendSeq})`);
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

  /** Every record up to and including `seq` is acknowledged: trim it. */
  ack(seq: number): void {
    while (this.inflight.length && this.inflight[0]!.seq <= seq) {
      const r = this.inflight.shift()!;
      const seg = this.segmentOf(r.seq);
      if (!seg) continue;
      seg.ackedCount++;
      seg.ackedBytes += r.size;
      seg.ackedSamples += r.samples;
      this.acked = r.seq + 1;
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
    let messages = 0, bytes = 0, samples = 0;
    for (const s of this.segments) {
      messages += s.count - s.ackedCount;
      bytes += s.bytes - s.ackedBytes;
      samples += s.samples - s.ackedSamples;
    }
    return { messages, bytes, samples };
  }

  /** Bytes on disk (acknowledged records of the oldest segment included). */
  diskBytes(): number {
    return this.segments.reduce((n, s) => n + s.bytes, 0);
  }

  sync(): void {
    if (this.fd >= 0) fsyncSync(this.fd);
  }

  close(): void {
    clearInterval(this.fsyncTimer);
    clearTimeout(this.cursorTimer);
    if (this.fd >= 0) {
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = -1;
    }
    this.writeCursor();
  }

  // ---- internals -----------------------------------------------------------

  private segmentOf(seq: number): Segment | undefined {
    for (const s of this.segments) if (seq >= s.first && seq < s.first + Math.max(s.count, 1)) return s;
    return undefined;
  }

  private roll(): Segment {
    if (this.fd >= 0) {
      fsyncSync(this.fd);
      closeSync(this.fd);
    }
    const seg: Segment = { first: this.nextSeq, count: 0, bytes: 0, samples: 0, ackedCount: 0, ackedBytes: 0, ackedSamples: 0, path: join(this.dir, `seg-${String(this.nextSeq).padStart(16, '0')}.log`) };
    this.fd = openSync(seg.path, 'a');
    this.segments.push(seg);
    return seg;
  }

  private removeOldest(): void {
    const seg = this.segments.shift()!;
    unlinkSync(seg.path);
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
    writeFileSync(tmp, JSON.stringify({ acked: this.acked, droppedSamples: this.droppedSamples, droppedMessages: this.droppedMessages }));
    renameSync(tmp, join(this.dir, 'cursor.json'));
    this.cursorDirty = false;
  }

  /** Rebuilds bookkeeping from the segment files; truncates a torn tail. */
  private recover(): void {
    let cursor = { acked: 0, droppedSamples: 0, droppedMessages: 0 };
    try {
      cursor = { ...cursor, ...JSON.parse(readFileSync(join(this.dir, 'cursor.json'), 'utf8')) };
    } catch {
      // No cursor yet (fresh spool) or unreadable: replay everything present (at-least-once).
    }
    this.droppedSamples = cursor.droppedSamples;
    this.droppedMessages = cursor.droppedMessages;
    const files = readdirSync(this.dir).filter((f) => /^seg-\d{16}\.log$/.test(f)).sort();
    for (const name of files) {
      const path = join(this.dir, name);
      const first = Number(name.slice(4, 20));
      const buf = readFileSync(path);
      const seg: Segment = { first, count: 0, bytes: 0, samples: 0, ackedCount: 0, ackedBytes: 0, ackedSamples: 0, path };
      let off = 0;
      for (;;) {
        const f = decodeFrame(buf, off);
        if (!f) break;
        if (first + seg.count < cursor.acked) {
          seg.ackedCount++;
          seg.ackedBytes += f.size;
          seg.ackedSamples += f.samples;
        }
        seg.count++;
        seg.samples += f.samples;
        off += f.size;
      }
      if (off < statSync(path).size) truncateSync(path, off);
      seg.bytes = off;
      if (seg.count === 0 || seg.ackedCount === seg.count) {
        unlinkSync(path);
        this.nextSeq = Math.max(this.nextSeq, first + seg.count);
        continue;
      }
      this.segments.push(seg);
      this.nextSeq = first + seg.count;
    }
    this.acked = Math.max(cursor.acked, this.segments[0]?.first ?? this.nextSeq);
    this.nextSeq = Math.max(this.nextSeq, this.acked);
    this.rewind();
    if (this.segments.length) {
      const last = this.segments.at(-1)!;
      this.fd = openSync(last.path, 'a');
    }
  }
}
