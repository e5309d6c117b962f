/**
 * Streaming writer of netCDF classic (CDF-1) / 64-bit offset (CDF-2) files.
 *
 * The header is written at creation into reserved space (default 64 KiB) followed by
 * the fixed variables; records are encoded into one flush buffer and appended
 * whole. `flush()` writes the buffer, fdatasyncs, and only then patches `numrecs`, so
 * a crash at any point leaves a file whose numrecs counts only complete records;
 * `resume()` cuts off whatever lies beyond them. `close()` rewrites the header in
 * place (final attributes) without moving data. Memory is the flush buffer, whatever
 * the run length. Calls are synchronous: a flush blocks for one write + fdatasync.
 */
import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import {
  CDF1_MAX_OFFSET,
  NC_DEFAULT_FILL,
  NC_TYPE_SIZE,
  attrValue,
  normaliseAttr,
  normaliseAttrs,
  setValue,
  type AttrInput,
  type NcHeader,
  type NcType,
  type NcVar,
  type NcVersion,
} from './format.ts';
import {
  HeaderTruncatedError,
  computeLayout,
  dataStartOf,
  encodeHeader,
  isRecordVar,
  layoutOf,
  parseHeader,
  varElements,
  type Layout,
} from './header.ts';

export interface NcVarSpec {
  name: string;
  type: NcType;
  /** Dimension names; the unlimited dimension, if any, comes first. */
  dims: readonly string[];
  attributes?: Record<string, AttrInput>;
  /** Data of a fixed (non-record) variable, written at creation; char variables take
   * one string per row (padded with NUL). Absent: the fill value. */
  data?: ArrayLike<number> | string | readonly string[];
}

export interface NcSchema {
  globalAttributes?: Record<string, AttrInput>;
  /** In order; size 'unlimited' for the record dimension (at most one). */
  dimensions: ReadonlyArray<{ name: string; size: number | 'unlimited' }>;
  variables: readonly NcVarSpec[];
}

/** One record: the value of the record coordinate (e.g. time) and of each record
 * variable (a number when a record holds one element, else one per element).
 * Missing variables and null/undefined elements are written as the fill value. */
export interface NcRecord {
  time: number;
  values: Record<string, number | ArrayLike<number | null | undefined> | string | null | undefined>;
}

/** Columns for `appendColumns`: `time[i]` and, per variable, `count` elements per record (row-major). */
export interface NcColumns {
  time: ArrayLike<number>;
  values: Record<string, ArrayLike<number>>;
}

export interface WriterOptions {
  /** 1 = classic, 2 = 64-bit offset, 'auto' (default) = 2 when expectedBytes passes 2 GiB. */
  version?: NcVersion | 'auto';
  /** Expected final file size, for 'auto'. */
  expectedBytes?: number;
  /** Bytes reserved for the header so it can be rewritten in place (default 64 KiB). */
  headerReserve?: number;
  /** Flush buffer size in bytes (default 4 MiB, at least one record). */
  bufferBytes?: number;
  /** fdatasync before patching numrecs (default true). */
  fsync?: boolean;
  /** Replace an existing file (default false: fail if it exists). */
  overwrite?: boolean;
  /** File size past which a CDF-1 file is switched to CDF-2 at a flush (default 2 GiB; for tests). */
  cdf2ThresholdBytes?: number;
}

interface RecVar {
  name: string;
  type: NcType;
  count: number;
  off: number;
  fill: number;
  isTime: boolean;
}

const TWO_GIB = 2 ** 31;

export class NetcdfWriter {
  private buf: Buffer;
  private dv: DataView;
  private readonly cap: number;
  private buffered = 0;
  /** Records on disk (complete), committed or not. */
  private written: number;
  private headerDirty = false;
  /** Records rewritten in place since the last sync. */
  private dirtyData = false;
  private closed = false;
  private readonly recVars: RecVar[];
  private readonly doSync: boolean;
  private readonly cdf2Threshold: number;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    readonly header: NcHeader,
    readonly layout: Layout,
    /** Where the first variable's data begins; the header must fit before it. */
    readonly dataStart: number,
    opts: WriterOptions,
  ) {
    this.written = header.numrecs;
    this.doSync = opts.fsync ?? true;
    this.cdf2Threshold = opts.cdf2ThresholdBytes ?? TWO_GIB;
    const recDim = header.dims.find((d) => d.size === 0)?.name;
    this.recVars = header.vars
      .filter((v) => isRecordVar(header, v))
      .map((v) => {
        const fillAttr = attrValue(v.attrs, '_FillValue');
        return {
          name: v.name,
          type: v.type,
          count: varElements(header, v),
          off: v.begin - layout.recStart,
          fill: Array.isArray(fillAttr) && fillAttr.length ? fillAttr[0]! : NC_DEFAULT_FILL[v.type],
          isTime: v.name === recDim,
        };
      });
    const recsize = Math.max(layout.recsize, 1);
    this.cap = Math.max(1, Math.floor((opts.bufferBytes ?? 4 * 1024 * 1024) / recsize));
    this.buf = Buffer.alloc(this.cap * recsize);
    this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }

  static create(path: string, schema: NcSchema, opts: WriterOptions = {}): NetcdfWriter {
    const header = schemaToHeader(schema, 1);
    const reserve = opts.headerReserve ?? 64 * 1024;
    const probe = encodeHeader({ ...header, version: 2 }).length;
    const dataStart = Math.max(reserve, probe);
    const layout = computeLayout(header, dataStart);
    const wanted = opts.version ?? 'auto';
    header.version =
      wanted === 'auto' ? ((opts.expectedBytes ?? 0) >= TWO_GIB || layout.recStart > CDF1_MAX_OFFSET ? 2 : 1) : wanted;
    if (header.version === 1 && layout.recStart > CDF1_MAX_OFFSET)
      throw new Error(`${path}: fixed data passes 2 GiB; CDF-1 cannot address it (use version 2)`);
    const fd = openSync(path, opts.overwrite ? 'w+' : 'wx+');
    try {
      const head = encodeHeader(header);
      writeSync(fd, head, 0, head.length, 0);
      for (const [i, spec] of schema.variables.entries()) {
        const v = header.vars[i]!;
        if (isRecordVar(header, v)) continue;
        const data = encodeFixed(header, v, spec);
        writeSync(fd, data, 0, data.length, v.begin);
      }
      ftruncateSync(fd, layout.recStart);
      if (opts.fsync ?? true) fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return new NetcdfWriter(path, fd, header, layout, dataStart, opts);
  }

  /** Reopens a file, drops any partial record past numrecs, and continues appending. */
  static resume(
    path: string,
    opts: Omit<WriterOptions, 'version' | 'expectedBytes' | 'headerReserve' | 'overwrite'> = {},
  ): NetcdfWriter {
    const fd = openSync(path, 'r+');
    try {
      const header = readHeaderFd(fd, path);
      const layout = layoutOf(header);
      const size = fstatSync(fd).size;
      const onDisk = layout.recsize > 0 ? Math.max(0, Math.floor((size - layout.recStart) / layout.recsize)) : 0;
      if (header.numrecs === 0xffffffff || header.numrecs > onDisk) {
        // Streaming marker, or numrecs counts data that is not there: keep what is complete.
        header.numrecs = onDisk;
        const b = Buffer.alloc(4);
        b.writeUInt32BE(onDisk);
        writeSync(fd, b, 0, 4, 4);
      }
      const end = layout.recStart + header.numrecs * layout.recsize;
      if (size > end && layout.recsize > 0) ftruncateSync(fd, end);
      return new NetcdfWriter(path, fd, header, layout, dataStartOf(header), opts);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  get version(): NcVersion {
    return this.header.version;
  }
  /** Records appended so far (committed or still buffered). */
  get recordCount(): number {
    return this.written + this.buffered;
  }
  /** Records counted by numrecs on disk. */
  get committedRecords(): number {
    return this.header.numrecs;
  }

  appendRecords(records: readonly NcRecord[]): void {
    this.assertOpen();
    const dv = this.dv;
    const recsize = this.layout.recsize;
    for (const rec of records) {
      if (this.buffered === this.cap) this.writeBuffer();
      const base = this.buffered * recsize;
      for (const rv of this.recVars) {
        const off = base + rv.off;
        const size = NC_TYPE_SIZE[rv.type];
        const v = rv.isTime ? rec.time : rec.values[rv.name];
        if (typeof v === 'number') {
          if (rv.count !== 1) throw new Error(`${rv.name}: ${rv.count} elements per record, got one number`);
          setValue(dv, off, rv.type, v);
        } else if (typeof v === 'string') {
          const b = Buffer.from(v, 'utf8');
          for (let j = 0; j < rv.count; j++) dv.setUint8(off + j, j < b.length ? b[j]! : 0);
        } else if (v == null) {
          for (let j = 0; j < rv.count; j++) setValue(dv, off + j * size, rv.type, rv.fill);
        } else {
          if (v.length !== rv.count) throw new Error(`${rv.name}: ${rv.count} elements per record, got ${v.length}`);
          for (let j = 0; j < rv.count; j++) {
            const x = v[j];
            setValue(dv, off + j * size, rv.type, x == null ? rv.fill : x);
          }
        }
      }
      this.buffered++;
    }
  }

  /** Fast path: many records given column-wise (no per-record objects). */
  appendColumns(cols: NcColumns): void {
    this.assertOpen();
    const n = cols.time.length;
    for (const rv of this.recVars) {
      const col = rv.isTime ? cols.time : cols.values[rv.name];
      if (col && col.length !== n * rv.count)
        throw new Error(`${rv.name}: expected ${n * rv.count} values for ${n} records, got ${col.length}`);
    }
    let done = 0;
    while (done < n) {
      if (this.buffered === this.cap) this.writeBuffer();
      const k = Math.min(n - done, this.cap - this.buffered);
      for (const rv of this.recVars) {
        const col = rv.isTime ? cols.time : cols.values[rv.name];
        encodeColumn(this.dv, this.buffered * this.layout.recsize + rv.off, this.layout.recsize, rv, col, done, k);
      }
      this.buffered += k;
      done += k;
    }
  }

  /** Where a record variable sits inside a record: byte offset, type, elements, fill value. */
  recordVar(name: string): { off: number; type: NcType; count: number; fill: number } | undefined {
    const rv = this.recVars.find((v) => v.name === name);
    return rv && { off: rv.off, type: rv.type, count: rv.count, fill: rv.fill };
  }

  /**
   * Writes whole encoded records at record index `k` (in place, or extending the file
   * when `k` is the next index). Used by the run grid to patch committed records: a
   * classic record has a fixed size and place. Not counted in numrecs before `flush`.
   */
  writeRecordBytes(k: number, bytes: Buffer): void {
    this.assertOpen();
    const recsize = this.layout.recsize;
    if (bytes.length % recsize !== 0)
      throw new Error(`${this.path}: ${bytes.length} bytes is not a whole number of ${recsize}-byte records`);
    this.writeBuffer();
    if (k > this.written)
      throw new Error(`${this.path}: record ${k} would leave a hole after record ${this.written - 1}`);
    const pos = this.layout.recStart + k * recsize;
    let done = 0;
    while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done, pos + done);
    this.written = Math.max(this.written, k + bytes.length / recsize);
    this.dirtyData = true;
  }

  /** Drops the records from index `n` on (e.g. slots allocated past a run's end). */
  truncateRecords(n: number): void {
    this.assertOpen();
    this.writeBuffer();
    if (n >= this.written) return;
    this.written = n;
    if (this.header.numrecs > n) this.header.numrecs = n;
    this.headerDirty = true;
    ftruncateSync(this.fd, this.layout.recStart + n * this.layout.recsize);
  }

  /** Reads `n` whole records from index `k` (records written so far). */
  readRecordBytes(k: number, n: number): Buffer {
    this.assertOpen();
    this.writeBuffer();
    const recsize = this.layout.recsize;
    const count = Math.max(0, Math.min(n, this.written - k));
    const out = Buffer.alloc(count * recsize);
    let done = 0;
    while (done < out.length) {
      const got = readSync(this.fd, out, done, out.length - done, this.layout.recStart + k * recsize + done);
      if (got === 0) break;
      done += got;
    }
    return out;
  }

  /** Global attributes to change; written at the next flush or at close. */
  setGlobalAttributes(attrs: Record<string, AttrInput>): void {
    for (const [name, input] of Object.entries(attrs)) {
      const a = normaliseAttr(name, input);
      const i = this.header.attrs.findIndex((x) => x.name === name);
      if (i >= 0) this.header.attrs[i] = a;
      else this.header.attrs.push(a);
    }
    this.headerDirty = true;
  }

  /** Writes buffered records, syncs them, then counts them in numrecs. */
  flush(): void {
    this.assertOpen();
    this.writeBuffer();
    if (this.written === this.header.numrecs && !this.headerDirty) {
      if (this.dirtyData && this.doSync) fdatasyncSync(this.fd);
      this.dirtyData = false;
      return;
    }
    if ((this.written > this.header.numrecs || this.dirtyData) && this.doSync) fdatasyncSync(this.fd);
    this.dirtyData = false;
    this.header.numrecs = this.written;
    const end = this.layout.recStart + this.written * this.layout.recsize;
    if (this.header.version === 1 && end >= this.cdf2Threshold) {
      // Same begins, wider offset fields: fits in the reserved space, data stays put.
      this.header.version = 2;
      if (encodeHeader(this.header).length > this.dataStart) this.header.version = 1;
      else this.headerDirty = true;
    }
    if (this.headerDirty) this.rewriteHeader();
    else {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(this.header.numrecs);
      writeSync(this.fd, b, 0, 4, 4);
    }
  }

  /** fdatasync of the file (e.g. after `flush`, so that numrecs itself is durable). */
  sync(): void {
    this.assertOpen();
    fdatasyncSync(this.fd);
  }

  /** Flushes, rewrites the header with `attrs` (e.g. time_coverage_end), syncs and closes. */
  close(attrs?: Record<string, AttrInput>): void {
    if (this.closed) return;
    try {
      if (attrs) this.setGlobalAttributes(attrs);
      this.flush();
      if (this.doSync) fsyncSync(this.fd);
    } finally {
      this.closed = true;
      closeSync(this.fd);
    }
  }

  private rewriteHeader(): void {
    const head = encodeHeader(this.header);
    if (head.length > this.dataStart) {
      throw new Error(
        `${this.path}: the header grew to ${head.length} bytes but only ${this.dataStart} are reserved before the data`,
      );
    }
    writeSync(this.fd, head, 0, head.length, 0);
    this.headerDirty = false;
  }

  private writeBuffer(): void {
    if (this.buffered === 0) return;
    const len = this.buffered * this.layout.recsize;
    const pos = this.layout.recStart + this.written * this.layout.recsize;
    let done = 0;
    while (done < len) done += writeSync(this.fd, this.buf, done, len - done, pos + done);
    this.written += this.buffered;
    this.buffered = 0;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`${this.path}: writer is closed`);
  }
}

/** One type switch per column, tight loops inside (the hot path of appendColumns). */
function encodeColumn(
  dv: DataView,
  base: number,
  recsize: number,
  rv: RecVar,
  col: ArrayLike<number> | undefined,
  from: number,
  k: number,
): void {
  const c = rv.count;
  const size = NC_TYPE_SIZE[rv.type];
  if (!col) {
    for (let i = 0; i < k; i++)
      for (let j = 0; j < c; j++) setValue(dv, base + i * recsize + j * size, rv.type, rv.fill);
    return;
  }
  const s = from * c;
  switch (rv.type) {
    case 'float':
      for (let i = 0; i < k; i++) {
        const o = base + i * recsize;
        const r = s + i * c;
        for (let j = 0; j < c; j++) dv.setFloat32(o + j * 4, col[r + j]!, false);
      }
      break;
    case 'double':
      for (let i = 0; i < k; i++) {
        const o = base + i * recsize;
        const r = s + i * c;
        for (let j = 0; j < c; j++) dv.setFloat64(o + j * 8, col[r + j]!, false);
      }
      break;
    default:
      for (let i = 0; i < k; i++) {
        const o = base + i * recsize;
        const r = s + i * c;
        for (let j = 0; j < c; j++) setValue(dv, o + j * size, rv.type, col[r + j]!);
      }
  }
}

function schemaToHeader(schema: NcSchema, version: NcVersion): NcHeader {
  const unlimited = schema.dimensions.filter((d) => d.size === 'unlimited');
  if (unlimited.length > 1) throw new Error('classic netCDF allows one unlimited dimension');
  const dims = schema.dimensions.map((d) => {
    if (d.size !== 'unlimited' && (!Number.isInteger(d.size) || d.size < 1))
      throw new Error(`dimension ${d.name}: size must be a positive integer (got ${d.size})`);
    return { name: d.name, size: d.size === 'unlimited' ? 0 : d.size };
  });
  const vars: NcVar[] = schema.variables.map((s) => {
    const dimIds = s.dims.map((name) => {
      const id = dims.findIndex((d) => d.name === name);
      if (id < 0) throw new Error(`variable ${s.name}: unknown dimension ${name}`);
      return id;
    });
    if (dimIds.slice(1).some((id) => dims[id]!.size === 0))
      throw new Error(`variable ${s.name}: the unlimited dimension must come first`);
    return { name: s.name, dimIds, attrs: normaliseAttrs(s.attributes, s.type), type: s.type, vsize: 0, begin: 0 };
  });
  const names = new Set<string>();
  for (const v of vars) {
    if (names.has(v.name)) throw new Error(`variable ${v.name} defined twice`);
    names.add(v.name);
  }
  return { version, numrecs: 0, dims, attrs: normaliseAttrs(schema.globalAttributes), vars };
}

function encodeFixed(h: NcHeader, v: NcVar, spec: NcVarSpec): Buffer {
  const n = varElements(h, v);
  const size = NC_TYPE_SIZE[v.type];
  const out = Buffer.alloc(v.vsize);
  const dv = new DataView(out.buffer, out.byteOffset, out.length);
  const data = spec.data;
  if (
    v.type === 'char' &&
    data !== undefined &&
    (typeof data === 'string' || (Array.isArray(data) && typeof data[0] === 'string'))
  ) {
    const rows = typeof data === 'string' ? [data] : (data as readonly string[]);
    const rowLen = v.dimIds.length ? h.dims[v.dimIds[v.dimIds.length - 1]!]!.size : 1;
    rows.forEach((s, r) => {
      const b = Buffer.from(s, 'utf8');
      if (b.length > rowLen) throw new Error(`variable ${v.name}: "${s}" is longer than ${rowLen} bytes`);
      b.copy(out, r * rowLen);
    });
    return out;
  }
  const fillAttr = attrValue(v.attrs, '_FillValue');
  const fill = Array.isArray(fillAttr) && fillAttr.length ? fillAttr[0]! : NC_DEFAULT_FILL[v.type];
  const nums = data as ArrayLike<number> | undefined;
  if (nums && nums.length !== n) throw new Error(`variable ${v.name}: expected ${n} values, got ${nums.length}`);
  for (let i = 0; i < n; i++) setValue(dv, i * size, v.type, nums ? nums[i]! : fill);
  return out;
}

function readHeaderFd(fd: number, path: string): NcHeader {
  const size = fstatSync(fd).size;
  let want = Math.min(size, 256 * 1024);
  for (;;) {
    const b = Buffer.alloc(want);
    const got = readSync(fd, b, 0, want, 0);
    try {
      return parseHeader(b.subarray(0, got)).header;
    } catch (err) {
      if (!(err instanceof HeaderTruncatedError) || want >= size) throw new Error(`${path}: ${(err as Error).message}`);
      want = Math.min(size, want * 4);
    }
  }
}

/** Reads just the header of a classic / 64-bit offset file. */
export function readNetcdfHeader(path: string): NcHeader {
  const fd = openSync(path, 'r');
  try {
    return readHeaderFd(fd, path);
  } finally {
    closeSync(fd);
  }
}
