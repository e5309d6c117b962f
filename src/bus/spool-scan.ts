import { decodeFrame, HEADER, MAGIC, nextFrame } from './spool-frame.ts';

/** A run of consecutive valid records in one segment file: bytes [start, end). */
export interface ScannedPiece {
  first: number;
  start: number;
  end: number;
  records: Array<{ seq: number; size: number; samples: number }>;
}

interface ScanResult {
  files: Array<{ name: string; first: number; pieces: ScannedPiece[]; rewrite: 'none' | 'truncate' | 'split' }>;
  /** Damaged byte ranges and the records/samples lost there (samples undefined when unknowable). */
  damage: Array<{ file: string; offset: number; length: number; records: number; samples?: number }>;
  /** Bytes cut off the end of the last file: a write cut short by a crash or a full disk (never acknowledged). */
  tails: Array<{ file: string; offset: number; length: number }>;
}

interface Pending {
  file: string;
  offset: number;
  end: number;
  headers: Array<{ seq: number; samples: number }>;
}

const u64 = (buf: Buffer, at: number) => buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * 2 ** 32;

/**
 * Reads the segment files in order, one at a time (`file()`, then `finish()`), and finds
 * the valid records. Damaged bytes are skipped by resynchronising on the next frame with
 * a valid header (magic + CRC); the records lost there are counted exactly from the seq
 * and running sample total of the frames on either side (across files too). Records
 * below `acked` were delivered before and are not counted as lost.
 */
export class SegmentScanner {
  readonly damage: ScanResult['damage'] = [];
  readonly tails: ScanResult['tails'] = [];
  private expected: number | undefined;
  private lastCum: number | undefined;
  private pending: Pending | undefined;

  constructor(private readonly acked: number) {}

  get nextSeq(): number {
    return this.expected ?? 0;
  }

  get cumulative(): number {
    return this.lastCum ?? 0;
  }

  /** Scans one file; `last` = no file follows (a frame cut short at its end is a torn write). */
  file(name: string, first: number, buf: Buffer, last: boolean): ScanResult['files'][number] {
    const pieces: ScannedPiece[] = [];
    let cur: ScannedPiece | undefined;
    let changed = false;
    let tailAt = -1;
    let off = 0;
    while (off < buf.length) {
      const d = decodeFrame(buf, off);
      if (d.kind === 'ok') {
        const seq =
          d.seq ??
          (cur ? cur.first + cur.records.length : this.expected !== undefined && pieces.length ? this.expected : first);
        if (this.pending) {
          this.resolve(this.pending, seq, d.cumulative !== undefined ? d.cumulative - d.samples : undefined);
          this.pending = undefined;
        }
        if (!cur || seq !== cur.first + cur.records.length) {
          cur = { first: seq, start: off, end: off, records: [] };
          pieces.push(cur);
        }
        cur.records.push({ seq, size: d.size, samples: d.samples });
        cur.end = off + d.size;
        this.expected = seq + 1;
        if (d.cumulative !== undefined) this.lastCum = d.cumulative;
        off += d.size;
        continue;
      }
      changed = true;
      cur = undefined;
      if (d.kind === 'damaged') {
        this.pending ??= { file: name, offset: off, end: off, headers: [] };
        this.pending.headers.push({ seq: d.seq, samples: d.samples });
        off += d.size;
        this.pending.end = off;
        continue;
      }
      const next = nextFrame(buf, off + 1);
      if (next < 0 && !this.pending && last && isTornTail(buf, off)) {
        tailAt = off;
        break;
      }
      this.pending ??= { file: name, offset: off, end: off, headers: [] };
      const inferred = infer(buf, off, this.expected, this.lastCum);
      if (inferred && !this.pending.headers.some((h) => h.seq === inferred.seq)) this.pending.headers.push(inferred);
      if (next < 0) {
        this.pending.end = buf.length;
        break;
      }
      this.pending.end = next;
      off = next;
    }
    if (tailAt >= 0) this.tails.push({ file: name, offset: tailAt, length: buf.length - tailAt });
    const rewrite = !changed
      ? 'none'
      : pieces.length === 1 && pieces[0]!.start === 0 && tailAt >= 0
        ? 'truncate'
        : 'split';
    return { name, first, pieces, rewrite };
  }

  /** Damage left unresolved at the end of the last file is counted from what its headers tell. */
  finish(): void {
    if (this.pending) this.resolve(this.pending, undefined, undefined);
    this.pending = undefined;
  }

  private resolve(p: Pending, seq: number | undefined, cumBefore: number | undefined): void {
    const from = Math.max(this.expected ?? p.headers[0]?.seq ?? seq ?? 0, this.acked);
    let records: number;
    let samples: number | undefined;
    if (seq !== undefined) {
      records = Math.max(0, seq - from);
      if (cumBefore !== undefined && this.lastCum !== undefined && (this.expected ?? 0) >= this.acked)
        samples = Math.max(0, cumBefore - this.lastCum);
    } else {
      // Damage up to the end of the last file: only what the surviving headers tell is known.
      const hs = p.headers.filter((h) => h.seq >= this.acked);
      records = hs.length;
      if (hs.length) samples = hs.reduce((n, h) => n + h.samples, 0);
    }
    this.damage.push({
      file: p.file,
      offset: p.offset,
      length: p.end - p.offset,
      records,
      ...(samples !== undefined ? { samples } : {}),
    });
  }
}
/** A frame cut short at the end of the file: fewer bytes than a header, or a valid header whose body runs past the end. */
function isTornTail(buf: Buffer, off: number): boolean {
  const d = decodeFrame(buf, off);
  if (d.kind !== 'incomplete') return false;
  return buf.length - off < HEADER || buf.readUInt32LE(off) === MAGIC;
}

/**
 * The seq and samples of a record whose header is damaged, when its fields still agree
 * with the record before it (seq one more, running total grown by exactly its samples).
 */
function infer(
  buf: Buffer,
  off: number,
  expected: number | undefined,
  lastCum: number | undefined,
): { seq: number; samples: number } | undefined {
  if (expected === undefined || lastCum === undefined || off + HEADER > buf.length) return undefined;
  const seq = u64(buf, off + 8);
  const samples = buf.readUInt32LE(off + 16);
  const cum = u64(buf, off + 20);
  return seq === expected && cum === lastCum + samples ? { seq, samples } : undefined;
}
