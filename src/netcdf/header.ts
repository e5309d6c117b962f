/**
 * Encodes and parses the header of a netCDF classic (CDF-1) or 64-bit offset (CDF-2)
 * file, and computes the data layout (vsize, begin, record size) the way netCDF-C
 * does: fixed variables first in definition order, then the record variables
 * interleaved per record.
 *
 *   header  = magic numrecs dim_list gatt_list var_list
 *   var     = name nelems [dimid…] vatt_list nc_type vsize begin(32 | 64 bit)
 */
import {
  NC_TYPE_BY_CODE,
  NC_TYPE_CODE,
  NC_TYPE_SIZE,
  TAG_ATTRIBUTE,
  TAG_DIMENSION,
  TAG_VARIABLE,
  pad4,
  type NcAttr,
  type NcDim,
  type NcHeader,
  type NcType,
  type NcVar,
  type NcVersion,
} from './format.ts';

class ByteWriter {
  private buf = Buffer.alloc(4096);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.length);
    this.length += 4;
  }
  u64(v: number): void {
    this.room(8);
    this.buf.writeBigUInt64BE(BigInt(v), this.length);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.room(pad4(b.length));
    this.buf.set(b, this.length);
    this.length += pad4(b.length);
  }
  name(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u32(b.length);
    this.bytes(b);
  }
  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function encodeAttrValues(a: NcAttr): { n: number; bytes: Uint8Array } {
  if (a.type === 'char') {
    const b = Buffer.from(a.value as string, 'utf8');
    return { n: b.length, bytes: b };
  }
  const vals = a.value as number[];
  const size = NC_TYPE_SIZE[a.type];
  const b = Buffer.alloc(vals.length * size);
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  vals.forEach((v, i) => {
    const o = i * size;
    switch (a.type) {
      case 'byte':
        dv.setInt8(o, v);
        break;
      case 'short':
        dv.setInt16(o, v);
        break;
      case 'int':
        dv.setInt32(o, v);
        break;
      case 'float':
        dv.setFloat32(o, v);
        break;
      default:
        dv.setFloat64(o, v);
    }
  });
  return { n: vals.length, bytes: b };
}

function encodeAttrList(w: ByteWriter, attrs: readonly NcAttr[]): void {
  if (attrs.length === 0) {
    w.u32(0);
    w.u32(0);
    return;
  }
  w.u32(TAG_ATTRIBUTE);
  w.u32(attrs.length);
  for (const a of attrs) {
    w.name(a.name);
    w.u32(NC_TYPE_CODE[a.type]);
    const { n, bytes } = encodeAttrValues(a);
    w.u32(n);
    w.bytes(bytes);
  }
}

export function encodeHeader(h: NcHeader): Buffer {
  const w = new ByteWriter();
  w.bytes(Buffer.from([0x43, 0x44, 0x46, h.version]));
  w.u32(h.numrecs);
  if (h.dims.length === 0) {
    w.u32(0);
    w.u32(0);
  } else {
    w.u32(TAG_DIMENSION);
    w.u32(h.dims.length);
    for (const d of h.dims) {
      w.name(d.name);
      w.u32(d.size);
    }
  }
  encodeAttrList(w, h.attrs);
  if (h.vars.length === 0) {
    w.u32(0);
    w.u32(0);
  } else {
    w.u32(TAG_VARIABLE);
    w.u32(h.vars.length);
    for (const v of h.vars) {
      w.name(v.name);
      w.u32(v.dimIds.length);
      for (const id of v.dimIds) w.u32(id);
      encodeAttrList(w, v.attrs);
      w.u32(NC_TYPE_CODE[v.type]);
      w.u32(Math.min(v.vsize, 0xffffffff));
      if (h.version === 1) w.u32(v.begin);
      else w.u64(v.begin);
    }
  }
  return w.result();
}

/** Thrown when the buffer ends inside the header: read more of the file and retry. */
export class HeaderTruncatedError extends Error {}

class ByteReader {
  off = 0;
  constructor(private readonly b: Buffer) {}
  private need(n: number): void {
    if (this.off + n > this.b.length) throw new HeaderTruncatedError(`netCDF header ends past byte ${this.b.length}`);
  }
  u32(): number {
    this.need(4);
    const v = this.b.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = Number(this.b.readBigUInt64BE(this.off));
    this.off += 8;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(pad4(n));
    const v = this.b.subarray(this.off, this.off + n);
    this.off += pad4(n);
    return v;
  }
  name(): string {
    return this.bytes(this.u32()).toString('utf8');
  }
}

function parseType(code: number, where: string): NcType {
  const t = NC_TYPE_BY_CODE[code];
  if (!t) throw new Error(`netCDF header: unknown type ${code} at ${where}`);
  return t;
}

function parseAttrList(r: ByteReader, where: string): NcAttr[] {
  const tag = r.u32();
  const n = r.u32();
  if (tag === 0 && n === 0) return [];
  if (tag !== TAG_ATTRIBUTE) throw new Error(`netCDF header: expected an attribute list at ${where} (tag ${tag})`);
  const out: NcAttr[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.name();
    const type = parseType(r.u32(), `${where} attribute ${name}`);
    const count = r.u32();
    const raw = r.bytes(count * NC_TYPE_SIZE[type]);
    if (type === 'char') {
      out.push({ name, type, value: raw.toString('utf8') });
      continue;
    }
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.length);
    const size = NC_TYPE_SIZE[type];
    const value: number[] = [];
    for (let k = 0; k < count; k++) {
      const o = k * size;
      value.push(
        type === 'byte'
          ? dv.getInt8(o)
          : type === 'short'
            ? dv.getInt16(o)
            : type === 'int'
              ? dv.getInt32(o)
              : type === 'float'
                ? dv.getFloat32(o)
                : dv.getFloat64(o),
      );
    }
    out.push({ name, type, value });
  }
  return out;
}

/** Parses any classic or 64-bit offset header; returns it with its encoded size. */
export function parseHeader(b: Buffer): { header: NcHeader; size: number } {
  const r = new ByteReader(b);
  const magic = r.bytes(4);
  if (magic[0] !== 0x43 || magic[1] !== 0x44 || magic[2] !== 0x46)
    throw new Error('not a netCDF classic file (no CDF magic)');
  const version = magic[3];
  if (version !== 1 && version !== 2)
    throw new Error(`unsupported netCDF format version ${version} (only CDF-1 and CDF-2)`);
  const numrecs = r.u32();
  const dims: NcDim[] = [];
  {
    const tag = r.u32();
    const n = r.u32();
    if (!(tag === 0 && n === 0)) {
      if (tag !== TAG_DIMENSION) throw new Error(`netCDF header: expected the dimension list (tag ${tag})`);
      for (let i = 0; i < n; i++) dims.push({ name: r.name(), size: r.u32() });
    }
  }
  const attrs = parseAttrList(r, 'global');
  const vars: NcVar[] = [];
  {
    const tag = r.u32();
    const n = r.u32();
    if (!(tag === 0 && n === 0)) {
      if (tag !== TAG_VARIABLE) throw new Error(`netCDF header: expected the variable list (tag ${tag})`);
      for (let i = 0; i < n; i++) {
        const name = r.name();
        const nd = r.u32();
        const dimIds: number[] = [];
        for (let k = 0; k < nd; k++) dimIds.push(r.u32());
        const vattrs = parseAttrList(r, `variable ${name}`);
        const type = parseType(r.u32(), `variable ${name}`);
        const vsize = r.u32();
        const begin = version === 1 ? r.u32() : r.u64();
        vars.push({ name, dimIds, attrs: vattrs, type, vsize, begin });
      }
    }
  }
  return { header: { version: version as NcVersion, numrecs, dims, attrs, vars }, size: r.off };
}

export interface Layout {
  /** Offset of record 0 (0 when there are no record variables). */
  recStart: number;
  /** Bytes per record. */
  recsize: number;
  /** End of the fixed (non-record) data. */
  fixedEnd: number;
}

export const recordDimId = (h: Pick<NcHeader, 'dims'>): number => h.dims.findIndex((d) => d.size === 0);
export const isRecordVar = (h: Pick<NcHeader, 'dims'>, v: Pick<NcVar, 'dimIds'>): boolean =>
  v.dimIds.length > 0 && v.dimIds[0] === recordDimId(h);

/** Elements of a variable (of one record, for a record variable). */
export function varElements(h: Pick<NcHeader, 'dims'>, v: Pick<NcVar, 'dimIds'>): number {
  const rec = recordDimId(h);
  return v.dimIds.reduce((n, id, i) => (i === 0 && id === rec ? n : n * h.dims[id]!.size), 1);
}

/** Sets vsize and begin of every variable, data starting at `dataStart`. */
export function computeLayout(h: NcHeader, dataStart: number): Layout {
  let off = pad4(dataStart);
  const recVars: NcVar[] = [];
  for (const v of h.vars) {
    v.vsize = pad4(varElements(h, v) * NC_TYPE_SIZE[v.type]);
    if (isRecordVar(h, v)) {
      recVars.push(v);
      continue;
    }
    v.begin = off;
    off += v.vsize;
  }
  const fixedEnd = off;
  for (const v of recVars) {
    v.begin = off;
    off += v.vsize;
  }
  return { recStart: fixedEnd, recsize: recordSize(h), fixedEnd };
}

/** Bytes per record, with netCDF-C's rule: a lone record variable is not padded. */
export function recordSize(h: NcHeader): number {
  const recVars = h.vars.filter((v) => isRecordVar(h, v));
  if (recVars.length === 1) return varElements(h, recVars[0]!) * NC_TYPE_SIZE[recVars[0]!.type];
  return recVars.reduce((s, v) => s + v.vsize, 0);
}

/** Layout as recorded in a parsed header (begins are trusted, not recomputed). */
export function layoutOf(h: NcHeader): Layout {
  const recVars = h.vars.filter((v) => isRecordVar(h, v));
  const fixed = h.vars.filter((v) => !isRecordVar(h, v));
  const fixedEnd = fixed.reduce((m, v) => Math.max(m, v.begin + v.vsize), 0);
  const recStart = recVars.length ? Math.min(...recVars.map((v) => v.begin)) : fixedEnd;
  return { recStart, recsize: recordSize(h), fixedEnd };
}

/** Where the first variable's data begins: the room the header may grow into. */
export function dataStartOf(h: NcHeader): number {
  return h.vars.length ? Math.min(...h.vars.map((v) => v.begin)) : Infinity;
}
