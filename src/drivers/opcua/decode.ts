/**
 * Pure conversions between OPC UA data values and samples, shared by the driver and the
 * profile testcases: status code → quality, raw → engineering value (scale/offset),
 * timestamp choice, and the reverse for writes (validation, unscaling, type ranges).
 */
import type { OpcuaTag, OpcuaType } from '../../config/profile-schema.ts';
import type { Quality, Sample, SampleValue } from '../../core/sample.ts';

export type PlainValue = number | boolean | string | null;

/** A data value as the client adapter hands it over: no node-opcua types. */
export interface PlainDataValue {
  value: PlainValue;
  /** Numeric status code (severity in bits 30–31). */
  statusCode: number;
  /** Its name, e.g. `Good`, `BadSensorFailure`. */
  statusName: string;
  sourceTimestamp?: number;
  serverTimestamp?: number;
}

/** OPC UA Part 4 §7.34: bits 31..30 = 00 Good, 01 Uncertain, 10/11 Bad. */
export function qualityOfStatus(statusCode: number): Quality {
  const severity = (statusCode >>> 30) & 0b11;
  return severity === 0 ? 'good' : severity === 1 ? 'uncertain' : 'bad';
}

/**
 * A status code number from its name, for testcases written by hand: OPC UA names start
 * with their severity (Good…, Uncertain…, Bad…), which is all the quality mapping needs.
 */
export function statusCodeFromName(name: string): number {
  if (/^Good/.test(name)) return 0;
  if (/^Uncertain/.test(name)) return 0x40000000;
  if (/^Bad/.test(name)) return 0x80000000;
  throw new Error(`status code name ${JSON.stringify(name)} must start with Good, Uncertain or Bad`);
}

/** Engineering value = raw * scale + offset, for numbers; rounded to 12 significant digits so 215 * 0.1 is 21.5. */
export function toEngineering(tag: Pick<OpcuaTag, 'scale' | 'offset'>, raw: PlainValue): PlainValue {
  if (typeof raw !== 'number' || (tag.scale === 1 && tag.offset === 0)) return raw;
  const v = raw * tag.scale + tag.offset;
  return Number.isFinite(v) ? Number(v.toPrecision(12)) : v;
}

/**
 * A Float (32-bit) arrives as the double nearest to it, e.g. 21.1 → 21.100000381469727.
 * Returns the shortest decimal that is the same float32, so samples read 21.1.
 */
export function shortestFloat32(v: number): number {
  if (!Number.isFinite(v) || Math.fround(v) !== v) return v;
  for (let p = 1; p <= 9; p++) {
    const d = Number(v.toPrecision(p));
    if (Math.fround(d) === v) return d;
  }
  return v;
}

/** The sample's time: SourceTimestamp, else ServerTimestamp, else when it was received. */
export function sampleTime(
  dv: Pick<PlainDataValue, 'sourceTimestamp' | 'serverTimestamp'>,
  receivedAt: number,
): number {
  const ts = dv.sourceTimestamp ?? dv.serverTimestamp ?? receivedAt;
  return Math.max(0, Math.round(ts));
}

/** One data value of one tag → a sample. Bad values carry no value and the status name as reason. */
export function decodeDataValue(chamber: string, tag: OpcuaTag, dv: PlainDataValue, receivedAt: number): Sample {
  const ts = sampleTime(dv, receivedAt);
  const q = qualityOfStatus(dv.statusCode);
  if (q === 'bad') return { chamber, tag: tag.name, ts, value: null, q, reason: `${dv.statusName} (node ${tag.node})` };
  const raw = tag.type === 'Float' && typeof dv.value === 'number' ? shortestFloat32(dv.value) : dv.value;
  const value: SampleValue = toEngineering(tag, raw);
  if (typeof value === 'number' && !Number.isFinite(value)) {
    return {
      chamber,
      tag: tag.name,
      ts,
      value: null,
      q: 'bad',
      reason: `non-finite value ${String(value)} (node ${tag.node})`,
    };
  }
  const sample: Sample = { chamber, tag: tag.name, ts, value, q };
  if (q === 'uncertain') sample.reason = dv.statusName;
  return sample;
}

const INTEGER_RANGES: Partial<Record<OpcuaType, [number, number]>> = {
  SByte: [-128, 127],
  Byte: [0, 255],
  Int16: [-32768, 32767],
  UInt16: [0, 65535],
  Int32: [-2147483648, 2147483647],
  UInt32: [0, 4294967295],
  Int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  UInt64: [0, Number.MAX_SAFE_INTEGER],
};

/**
 * Validates an engineering value for a write and returns the raw value to send.
 * Throws naming the tag, the value and the rule it breaks.
 */
export function encodeWrite(tag: OpcuaTag, value: number | boolean | string): number | boolean | string {
  const where = `tag "${tag.name}" (${tag.node}, ${tag.type})`;
  if (!tag.writable) throw new Error(`${where} is not writable (profile or instance override says writable: false)`);
  if (tag.type === 'Boolean') {
    if (typeof value !== 'boolean') throw new Error(`${where} takes true/false, got ${JSON.stringify(value)}`);
    return value;
  }
  if (tag.type === 'String') {
    if (typeof value !== 'string') throw new Error(`${where} takes a string, got ${JSON.stringify(value)}`);
    return value;
  }
  if (tag.type === 'DateTime') {
    const ms = typeof value === 'string' ? Date.parse(value) : typeof value === 'number' ? value : NaN;
    if (!Number.isFinite(ms))
      throw new Error(`${where} takes an ISO date or ms since epoch, got ${JSON.stringify(value)}`);
    return new Date(ms).toISOString();
  }
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new Error(`${where} takes a finite number, got ${JSON.stringify(value)}`);
  if (tag.min !== undefined && value < tag.min) throw new Error(`${where}: ${value} is below min ${tag.min}`);
  if (tag.max !== undefined && value > tag.max) throw new Error(`${where}: ${value} is above max ${tag.max}`);
  let raw = (value - tag.offset) / tag.scale;
  const range = INTEGER_RANGES[tag.type];
  if (range) {
    raw = Math.round(raw);
    if (raw < range[0] || raw > range[1])
      throw new Error(
        `${where}: raw value ${raw} (from ${value}) is outside ${tag.type} range ${range[0]}..${range[1]}`,
      );
  } else if (tag.type === 'Float' && Math.abs(raw) > 3.4028234663852886e38) {
    throw new Error(`${where}: raw value ${raw} (from ${value}) is outside the Float range`);
  }
  return raw;
}
