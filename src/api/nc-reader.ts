import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { NetCDFReader } from 'netcdfjs';

type NcType = 'byte' | 'char' | 'short' | 'int' | 'float' | 'double';
const SIZE: Record<NcType, number> = { byte: 1, char: 1, short: 2, int: 4, float: 4, double: 8 };
/** netCDF-3 default fill values (used when a variable has no _FillValue). */
const DEFAULT_FILL: Record<NcType, number> = { byte: -127, char: 0, short: -32767, int: -2147483647, float: Math.fround(9.969209968386869e36), double: 9.969209968386869e36 };

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
}

/**
 * Reads an experiment run file (CF timeSeries, variables laid out (time, chamber))
 * record by record without loading it: netcdfjs parses the header (from the first bytes
 * of the file only), then records are read in chunks from disk. Works on a file still
 * being written: the record count is the header's numrecs, capped by what the file holds.
 */
export class NcRunReader {
  readonly chambers: string[];
  readonly records: number;
  readonly variables: Map<string, NcVariable>;
  private readonly recordStep: number;
  private readonly recordBase: number;
  private readonly timeVar: NcVariable;
  private closed = false;

  private constructor(private readonly fd: number, header: NetCDFReader['header'], size: number) {
    const h = header;
    const dimOf = (name: string) => h.dimensions.findIndex((d) => d.name === name);
    const recVars = h.variables.filter((v) => v.record);
    if (!recVars.length) throw new Error('not a run file: no record variables');
    this.recordStep = h.recordDimension.recordStep ?? 0;
    this.recordBase = Math.min(...recVars.map((v) => v.offset));
    const numrecs = h.recordDimension.length;
    const fit = this.recordStep > 0 ? Math.floor((size - this.recordBase) / this.recordStep) : 0;
    this.records = Math.max(0, Math.min(numrecs, fit));
    const station = h.variables.find((v) => v.name === 'station_name');
    const chamberDim = dimOf('chamber');
    if (station) {
      const strlen = h.dimensions[station.dimensions[1]!]!.size;
      const n = h.dimensions[station.dimensions[0]!]!.size;
      const buf = this.read(station.offset, n * strlen);
      this.chambers = Array.from({ length: n }, (_, i) => buf.subarray(i * strlen, (i + 1) * strlen).toString('utf8').replace(/\0+$/, '').trim());
    } else {
      const n = chamberDim >= 0 ? h.dimensions[chamberDim]!.size : 1;
      this.chambers = Array.from({ length: n }, (_, i) => String(i));
    }
    this.variables = new Map();
    for (const v of recVars) {
      const attr = (name: string) => (v.attributes as Array<{ name: string; value: unknown }>).find((a) => a.name === name)?.value;
      const type = v.type as NcType;
      const fill = attr('_FillValue');
      const anc = attr('ancillary_variables');
      this.variables.set(v.name, {
        name: v.name,
        type,
        units: typeof attr('units') === 'string' ? (attr('units') as string) : undefined,
        longName: typeof attr('long_name') === 'string' ? (attr('long_name') as string) : undefined,
        qc: typeof anc === 'string' && anc ? anc.split(/\s+/)[0] : undefined,
        fill: typeof fill === 'number' ? (type === 'float' ? Math.fround(fill) : fill) : DEFAULT_FILL[type],
        at: v.offset - this.recordBase,
      });
    }
    const time = this.variables.get('time');
    if (!time || time.type !== 'double') throw new Error('not a run file: no double time(time) variable');
    this.timeVar = time;
  }

  static open(path: string): NcRunReader {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      // The header is at the start; read a growing prefix until netcdfjs can parse it.
      for (let n = 64 * 1024; ; n *= 4) {
        const len = Math.min(n, size);
        const buf = Buffer.alloc(len);
        readSync(fd, buf, 0, len, 0);
        try {
          return new NcRunReader(fd, new NetCDFReader(buf).header, size);
        } catch (e) {
          if (len >= size) throw e;
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
    // first record strictly after `to`
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

  /** Records [from, to) in chunks of about `chunkBytes`; `get` reads one value of a record of the chunk. */
  *chunks(from: number, to: number, chunkBytes = 1 << 20): Generator<Chunk> {
    const per = Math.max(1, Math.floor(chunkBytes / Math.max(1, this.recordStep)));
    for (let start = from; start < to; start += per) {
      const count = Math.min(per, to - start);
      const buf = this.read(this.recordBase + start * this.recordStep, count * this.recordStep);
      yield new Chunk(buf, start, count, this.recordStep, this.chambers.length);
    }
  }

  private read(pos: number, len: number): Buffer {
    const buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const n = readSync(this.fd, buf, got, len - got, pos + got);
      if (n === 0) break;
      got += n;
    }
    return buf;
  }
}

export class Chunk {
  constructor(readonly buf: Buffer, readonly start: number, readonly count: number, private readonly step: number, private readonly nc: number) {}

  time(k: number, v: NcVariable): number {
    return this.buf.readDoubleBE(k * this.step + v.at);
  }

  /** Value of variable v at record k of the chunk and chamber c (NaN when fill). */
  value(k: number, v: NcVariable, c: number): number {
    const size = SIZE[v.type];
    const off = k * this.step + v.at + (v.type === 'char' ? 0 : c * size);
    let x: number;
    switch (v.type) {
      case 'byte': x = this.buf.readInt8(off); break;
      case 'short': x = this.buf.readInt16BE(off); break;
      case 'int': x = this.buf.readInt32BE(off); break;
      case 'float': x = this.buf.readFloatBE(off); break;
      case 'double': x = this.buf.readDoubleBE(off); break;
      default: return NaN;
    }
    return x === v.fill ? NaN : x;
  }

  get chambers(): number {
    return this.nc;
  }
}
