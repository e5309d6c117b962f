import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { NC_DEFAULT_FILL, NC_TYPE_SIZE, type NcAttr, type NcHeader, type NcType, type NcVar } from './format.ts';
import { HeaderTruncatedError, isRecordVar, layoutOf, parseHeader } from './header.ts';

export type { NcType } from './format.ts';

/** numrecs of a file being written in streaming mode (netCDF-C's NC_STREAMING). */
const STREAMING = 0xffffffff;

export interface NcVariable {
  name: string;
  type: NcType;
  units?: string;
  longName?: string;
  /** Quality-flag variable linked by ancillary_variables (`<name>_qc`). */
  qc?: string;
  fill: number;
  /** Byte offset of the variable inside a record. */
  at: number;
  /** All attributes, as parsed. */
  attrs: NcAttr[];
}

/**
 * Reads an experiment run file (CF timeSeries, record variables laid out (time, chamber))
 * record by record without loading it, with the header parser and type table of the
 * writer (netcdf/format.ts, header.ts): CDF-1 and CDF-2 (64-bit offset),
 * files far beyond 4 GiB included — offsets are plain numbers (exact up to 2^53) and
 * every read is positional (`readSync` with a position), never a whole-file buffer.
 * Works on a file still being written: the record count is the header's numrecs,
 * capped by what the file holds.
 */
export class NcRunReader {
  readonly chambers: string[];
  readonly records: number;
  readonly variables: Map<string, NcVariable>;
  readonly header: NcHeader;
  readonly fileSize: number;
  private readonly recordStep: number;
  private readonly recordBase: number;
  private readonly timeVar: NcVariable;
  private closed = false;

  private constructor(
    private readonly fd: number,
    header: NcHeader,
    size: number,
  ) {
    this.header = header;
    this.fileSize = size;
    const h = header;
    const recVars = h.vars.filter((v) => isRecordVar(h, v));
    if (!recVars.length) throw new Error('not a run file: no record variables');
    const layout = layoutOf(h);
    this.recordStep = layout.recsize;
    this.recordBase = layout.recStart;
    const fit = this.recordStep > 0 ? Math.floor((size - this.recordBase) / this.recordStep) : 0;
    this.records = Math.max(0, h.numrecs === STREAMING ? fit : Math.min(h.numrecs, fit));
    const station = h.vars.find((v) => v.name === 'station_name');
    if (station && station.dimIds.length === 2) {
      const n = h.dims[station.dimIds[0]!]!.size;
      const strlen = h.dims[station.dimIds[1]!]!.size;
      const buf = this.read(station.begin, n * strlen);
      this.chambers = Array.from({ length: n }, (_, i) =>
        buf
          .subarray(i * strlen, (i + 1) * strlen)
          .toString('utf8')
          .replace(/\0+$/, '')
          .trim(),
      );
    } else {
      const chamberDim = h.dims.findIndex((d) => d.name === 'chamber');
      const n = chamberDim >= 0 ? h.dims[chamberDim]!.size : 1;
      this.chambers = Array.from({ length: n }, (_, i) => String(i));
    }
    this.variables = new Map();
    for (const v of recVars) this.variables.set(v.name, describe(v, v.begin - this.recordBase));
    const time = this.variables.get('time');
    if (!time || time.type !== 'double') throw new Error('not a run file: no double time(time) variable');
    this.timeVar = time;
  }

  static open(path: string): NcRunReader {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      // The header is at the start; read a growing prefix until it parses.
      for (let n = 64 * 1024; ; n *= 4) {
        const len = Math.min(n, size);
        const buf = Buffer.alloc(len);
        readFully(fd, buf, 0);
        try {
          return new NcRunReader(fd, parseHeader(buf).header, size);
        } catch (e) {
          if (!(e instanceof HeaderTruncatedError) || len >= size) throw new Error(`${path}: ${(e as Error).message}`);
        }
      }
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  close(): void {
    if (!this.closed) closeSync(this.fd);
    this.closed = true;
  }

  /** A global attribute's value. */
  globalAttr(name: string): string | number[] | undefined {
    return this.header.attrs.find((a) => a.name === name)?.value;
  }

  /** Data variables (not time, not quality flags). */
  dataVariables(): NcVariable[] {
    const qcs = new Set([...this.variables.values()].flatMap((v) => (v.qc ? [v.qc] : [])));
    return [...this.variables.values()].filter((v) => v.name !== 'time' && !qcs.has(v.name) && !v.name.endsWith('_qc'));
  }

  /** Time of record i, seconds since 1970-01-01. */
  timeAt(i: number): number {
    return this.read(this.recordBase + i * this.recordStep + this.timeVar.at, 8).readDoubleBE(0);
  }

  /** First record whose time is ≥ t (seconds); times are increasing (one record per grid slot). */
  lowerBound(t: number): number {
    let lo = 0;
    let hi = this.records;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timeAt(mid) < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Record index range [from, to) of a time interval (ms, inclusive bounds). */
  range(fromMs?: number, toMs?: number): [number, number] {
    const a = fromMs === undefined ? 0 : this.lowerBound(fromMs / 1000);
    let b = this.records;
    if (toMs !== undefined) {
      let lo = a;
      let hi = this.records;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.timeAt(mid) <= toMs / 1000) lo = mid + 1;
        else hi = mid;
      }
      b = lo;
    }
    return [a, Math.max(a, b)];
  }

  /**
   * Records [from, to) in chunks of about `chunkBytes`; `get` reads one value of a record of
   * the chunk. `reuse`: every chunk is read into the same buffer (a caller that is done
   * with a chunk before asking for the next: a long file read without a megabyte of
   * garbage per chunk).
   */
  *chunks(from: number, to: number, chunkBytes = 1 << 20, reuse = false): Generator<Chunk> {
    const per = Math.max(1, Math.floor(chunkBytes / Math.max(1, this.recordStep)));
    const shared = reuse ? Buffer.allocUnsafe(Math.min(per, Math.max(0, to - from)) * this.recordStep) : undefined;
    for (let start = from; start < to; start += per) {
      const count = Math.min(per, to - start);
      const len = count * this.recordStep;
      const pos = this.recordBase + start * this.recordStep;
      let buf: Buffer;
      if (shared) {
        buf = shared.subarray(0, len);
        // Past the end of the file (a truncated file) reads as zeros, as with a fresh buffer.
        buf.fill(0, readFully(this.fd, buf, pos));
      } else buf = this.read(pos, len);
      yield new Chunk(buf, start, count, this.recordStep, this.chambers.length);
    }
  }

  private read(pos: number, len: number): Buffer {
    const buf = Buffer.alloc(len);
    readFully(this.fd, buf, pos);
    return buf;
  }
}

/** Fills `buf` from file position `pos` (a number: exact far beyond 4 GiB); returns the bytes read (what lies past the end is left as it was). */
function readFully(fd: number, buf: Buffer, pos: number): number {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

function describe(v: NcVar, at: number): NcVariable {
  const attr = (name: string) => v.attrs.find((a) => a.name === name)?.value;
  const text = (name: string) => {
    const x = attr(name);
    return typeof x === 'string' ? x : undefined;
  };
  const fill = attr('_FillValue');
  const anc = text('ancillary_variables');
  const f = Array.isArray(fill) && fill.length ? fill[0]! : NC_DEFAULT_FILL[v.type];
  return {
    name: v.name,
    type: v.type,
    units: text('units'),
    longName: text('long_name'),
    qc: anc ? anc.split(/\s+/)[0] : undefined,
    fill: v.type === 'float' ? Math.fround(f) : f,
    at,
    attrs: v.attrs,
  };
}

/**
 * A variable the archive computed from others (derived VPD, dew point: `source = "derived
 * from …"`), not received from a PLC: completeness and verify leave it out.
 */
export function isDerivedVariable(v: NcVariable): boolean {
  const src = v.attrs.find((a) => a.name === 'source')?.value;
  return typeof src === 'string' && src.startsWith('derived from ');
}

/**
 * Whether a chamber's controller provides a variable: false when the variable's
 * `measured_in_chambers` attribute (written when only some of a run's chambers have the
 * tag) does not name it. Its slots there are fill, not missing data.
 */
export function isMeasuredIn(v: NcVariable, chamber: string): boolean {
  const by = v.attrs.find((a) => a.name === 'measured_in_chambers')?.value;
  return typeof by !== 'string' || by.split(' ').includes(chamber);
}

export class Chunk {
  constructor(
    readonly buf: Buffer,
    readonly start: number,
    readonly count: number,
    private readonly step: number,
    private readonly nc: number,
  ) {}

  time(k: number, v: NcVariable): number {
    return this.buf.readDoubleBE(k * this.step + v.at);
  }

  /** The time coordinate (a double record variable) of every record of the chunk. */
  times(v: NcVariable): Float64Array {
    const out = new Float64Array(this.count);
    for (let k = 0; k < this.count; k++) out[k] = this.buf.readDoubleBE(k * this.step + v.at);
    return out;
  }

  /** Value of variable v at record k of the chunk and chamber c (NaN when fill). */
  value(k: number, v: NcVariable, c: number): number {
    const x = this.raw(k, v, c);
    return x === v.fill ? NaN : x;
  }

  /** Value as stored, fill included (NaN for char). */
  raw(k: number, v: NcVariable, c: number): number {
    const size = NC_TYPE_SIZE[v.type];
    const off = k * this.step + v.at + (v.type === 'char' ? 0 : c * size);
    switch (v.type) {
      case 'byte':
        return this.buf.readInt8(off);
      case 'short':
        return this.buf.readInt16BE(off);
      case 'int':
        return this.buf.readInt32BE(off);
      case 'float':
        return this.buf.readFloatBE(off);
      case 'double':
        return this.buf.readDoubleBE(off);
      default:
        return NaN;
    }
  }

  get chambers(): number {
    return this.nc;
  }
}
