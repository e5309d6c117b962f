/**
 * The netCDF classic format (CDF-1) and its 64-bit offset variant (CDF-2): types, tags
 * and sizes, after Unidata's "NetCDF Classic Format Specification". Everything on disk
 * is big-endian; every header item and every variable slab is padded to 4 bytes.
 */

export type NcType = 'byte' | 'char' | 'short' | 'int' | 'float' | 'double';
export type NcVersion = 1 | 2;

export const NC_TYPE_CODE: Record<NcType, number> = { byte: 1, char: 2, short: 3, int: 4, float: 5, double: 6 };
export const NC_TYPE_SIZE: Record<NcType, number> = { byte: 1, char: 1, short: 2, int: 4, float: 4, double: 8 };
export const NC_TYPE_BY_CODE: Record<number, NcType> = {
  1: 'byte',
  2: 'char',
  3: 'short',
  4: 'int',
  5: 'float',
  6: 'double',
};

/** netCDF-C's default fill values (used when a variable has no _FillValue). */
export const NC_DEFAULT_FILL: Record<NcType, number> = {
  byte: -127,
  char: 0,
  short: -32767,
  int: -2147483647,
  float: 9.969209968386869e36,
  double: 9.969209968386869e36,
};

export const TAG_DIMENSION = 0x0a;
export const TAG_VARIABLE = 0x0b;
export const TAG_ATTRIBUTE = 0x0c;

/** Largest begin offset CDF-1 can express (signed 32-bit). */
export const CDF1_MAX_OFFSET = 2 ** 31 - 1;

/** Rounds up to a multiple of 4; arithmetic, not bitwise, so offsets beyond 2^31 stay exact. */
export const pad4 = (n: number): number => Math.ceil(n / 4) * 4;

/** A normalised attribute: text for char, numbers for the numeric types. */
export interface NcAttr {
  name: string;
  type: NcType;
  value: string | number[];
}

export interface NcDim {
  name: string;
  /** 0 for the unlimited (record) dimension. */
  size: number;
}

export interface NcVar {
  name: string;
  dimIds: number[];
  attrs: NcAttr[];
  type: NcType;
  /** Bytes of the variable (of one record, for a record variable), padded to 4. */
  vsize: number;
  /** File offset of the data (of record 0, for a record variable). */
  begin: number;
}

export interface NcHeader {
  version: NcVersion;
  numrecs: number;
  dims: NcDim[];
  attrs: NcAttr[];
  vars: NcVar[];
}

/** What a caller may give as an attribute value. Plain numbers are doubles, except on
 * the attributes listed in TYPED_AS_VARIABLE, which take the variable's own type. */
export type AttrInput =
  string | number | readonly number[] | { type: NcType; value: number | readonly number[] | string };

const TYPED_AS_VARIABLE = new Set([
  '_FillValue',
  'missing_value',
  'valid_min',
  'valid_max',
  'valid_range',
  'flag_values',
  'actual_range',
]);

export function normaliseAttr(name: string, input: AttrInput, varType?: NcType): NcAttr {
  if (typeof input === 'string') return { name, type: 'char', value: input };
  if (typeof input === 'number' || Array.isArray(input)) {
    const value = typeof input === 'number' ? [input] : [...(input as readonly number[])];
    const type: NcType = varType && varType !== 'char' && TYPED_AS_VARIABLE.has(name) ? varType : 'double';
    return { name, type, value };
  }
  const t = input as { type: NcType; value: number | readonly number[] | string };
  if (t.type === 'char') return { name, type: 'char', value: String(t.value) };
  if (typeof t.value === 'string')
    throw new Error(`attribute ${name}: a ${t.type} attribute needs numbers (got "${t.value}")`);
  return { name, type: t.type, value: typeof t.value === 'number' ? [t.value] : [...t.value] };
}

export function normaliseAttrs(attrs: Record<string, AttrInput> | undefined, varType?: NcType): NcAttr[] {
  return Object.entries(attrs ?? {}).map(([k, v]) => normaliseAttr(k, v, varType));
}

/** Value of a (normalised) attribute by name, as given. */
export function attrValue(attrs: readonly NcAttr[], name: string): string | number[] | undefined {
  return attrs.find((a) => a.name === name)?.value;
}

/** Writes one value of a type at `off` (big-endian). */
export function setValue(dv: DataView, off: number, type: NcType, v: number): void {
  switch (type) {
    case 'byte':
      dv.setInt8(off, v);
      break;
    case 'char':
      dv.setUint8(off, v);
      break;
    case 'short':
      dv.setInt16(off, v, false);
      break;
    case 'int':
      dv.setInt32(off, v, false);
      break;
    case 'float':
      dv.setFloat32(off, v, false);
      break;
    case 'double':
      dv.setFloat64(off, v, false);
      break;
  }
}

export function getValue(dv: DataView, off: number, type: NcType): number {
  switch (type) {
    case 'byte':
      return dv.getInt8(off);
    case 'char':
      return dv.getUint8(off);
    case 'short':
      return dv.getInt16(off, false);
    case 'int':
      return dv.getInt32(off, false);
    case 'float':
      return dv.getFloat32(off, false);
    case 'double':
      return dv.getFloat64(off, false);
  }
}

/** Reads one big-endian value of a numeric type from a Buffer (undefined for char). */
export type BufferRead = (b: Buffer, o: number) => number;
export const BUFFER_READERS: Record<NcType, BufferRead | undefined> = {
  byte: (b, o) => b.readInt8(o),
  char: undefined,
  short: (b, o) => b.readInt16BE(o),
  int: (b, o) => b.readInt32BE(o),
  float: (b, o) => b.readFloatBE(o),
  double: (b, o) => b.readDoubleBE(o),
};

/** A time coordinate value (seconds since 1970-01-01) as ISO 8601 UTC, whole seconds without ".000". */
export const isoSeconds = (sec: number): string => new Date(Math.round(sec * 1000)).toISOString().replace('.000Z', 'Z');
