import type { ModbusTag, ModbusType, WordOrder } from '../../config/profile-schema.ts';
import { registerCount } from '../../config/profile-schema.ts';

/**
 * Pure conversion between Modbus register words and values. Multi-register values are
 * laid out as big-endian bytes A B C D (…H) and then permuted by the order:
 * ABCD as is, CDAB word order reversed (for 64-bit values word 3 comes first, as
 * pymodbus's Endian.Little word order), BADC bytes swapped within each word, DCBA
 * fully reversed.
 * 64-bit integers beyond ±2^53 lose precision (JavaScript numbers).
 */

/** Big-endian bytes of the value → the words on the wire for an order. */
export function bytesToWords(be: Buffer, order: WordOrder): number[] {
  const n = be.length / 2;
  const words: number[] = [];
  for (let i = 0; i < n; i++) words.push(be.readUInt16BE(i * 2));
  return permute(words, order);
}

/** Words from the wire → big-endian bytes of the value. */
export function wordsToBytes(words: readonly number[], order: WordOrder): Buffer {
  const w = unpermute([...words], order);
  const buf = Buffer.alloc(w.length * 2);
  w.forEach((x, i) => buf.writeUInt16BE(x & 0xffff, i * 2));
  return buf;
}

const swapBytes = (w: number) => ((w & 0xff) << 8) | ((w >> 8) & 0xff);

function permute(words: number[], order: WordOrder): number[] {
  switch (order) {
    case 'ABCD':
      return words;
    case 'BADC':
      return words.map(swapBytes);
    case 'CDAB':
      return [...words].reverse();
    case 'DCBA':
      return [...words].reverse().map(swapBytes);
  }
}
// Every permutation above is its own inverse.
const unpermute = permute;

const BYTES: Partial<Record<ModbusType, number>> = { int32: 4, uint32: 4, float32: 4, int64: 8, uint64: 8, float64: 8 };

/** Raw value (before scale/offset) of a numeric or string tag from its registers. */
export function decodeRaw(
  tag: Pick<ModbusTag, 'type' | 'count' | 'bit'>,
  words: readonly number[],
  order: WordOrder,
): number | boolean | string {
  const need = registerCount(tag);
  if (words.length < need) throw new Error(`${tag.type} needs ${need} registers, got ${words.length}`);
  switch (tag.type) {
    case 'bool':
      return ((words[0]! >> (tag.bit ?? 0)) & 1) === 1;
    case 'uint16':
      return words[0]! & 0xffff;
    case 'int16':
      return (words[0]! << 16) >> 16;
    case 'string': {
      const buf = wordsToBytes(words.slice(0, need), order === 'BADC' || order === 'DCBA' ? 'BADC' : 'ABCD');
      return buf.toString('latin1').replace(/[\0 ]+$/, '');
    }
    default: {
      const buf = wordsToBytes(words.slice(0, need), order);
      switch (tag.type) {
        case 'int32':
          return buf.readInt32BE(0);
        case 'uint32':
          return buf.readUInt32BE(0);
        case 'float32':
          return buf.readFloatBE(0);
        case 'int64':
          return Number(buf.readBigInt64BE(0));
        case 'uint64':
          return Number(buf.readBigUInt64BE(0));
        case 'float64':
          return buf.readDoubleBE(0);
      }
    }
  }
  throw new Error(`unknown type ${String(tag.type)}`);
}

/** Registers for a raw value; throws with the reason when it does not fit the type. */
export function encodeRaw(
  tag: Pick<ModbusTag, 'type' | 'count' | 'bit'>,
  value: number | boolean | string,
  order: WordOrder,
): number[] {
  if (tag.type === 'string') {
    const need = registerCount(tag);
    const text = String(value);
    if (text.length > need * 2) throw new Error(`string of ${text.length} characters does not fit ${need} registers`);
    const buf = Buffer.alloc(need * 2);
    buf.write(text, 'latin1');
    return bytesToWords(buf, order === 'BADC' || order === 'DCBA' ? 'BADC' : 'ABCD');
  }
  if (tag.type === 'bool')
    throw new Error('bools are written as single bits (coil, or read-modify-write of a register)');
  const n = typeof value === 'boolean' ? (value ? 1 : 0) : Number(value);
  if (!Number.isFinite(n)) throw new Error(`not a finite number: ${JSON.stringify(value)}`);
  const integer = !tag.type.startsWith('float');
  const v = integer ? Math.round(n) : n;
  const ranges: Partial<Record<ModbusType, [number, number]>> = {
    int16: [-32768, 32767],
    uint16: [0, 65535],
    int32: [-2147483648, 2147483647],
    uint32: [0, 4294967295],
    int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    uint64: [0, Number.MAX_SAFE_INTEGER],
  };
  const range = ranges[tag.type];
  if (range && (v < range[0] || v > range[1]))
    throw new Error(`${v} is out of range for ${tag.type} (${range[0]}..${range[1]})`);
  if (tag.type === 'int16' || tag.type === 'uint16') return [v & 0xffff];
  const buf = Buffer.alloc(BYTES[tag.type]!);
  switch (tag.type) {
    case 'int32':
      buf.writeInt32BE(v);
      break;
    case 'uint32':
      buf.writeUInt32BE(v);
      break;
    case 'float32':
      buf.writeFloatBE(v);
      break;
    case 'int64':
      buf.writeBigInt64BE(BigInt(v));
      break;
    case 'uint64':
      buf.writeBigUInt64BE(BigInt(v));
      break;
    case 'float64':
      buf.writeDoubleBE(v);
      break;
  }
  return bytesToWords(buf, order);
}

/** Engineering value = raw * scale + offset, rounded to 12 significant digits (0.1 * 215 is 21.5). */
export function toEngineering(
  tag: Pick<ModbusTag, 'scale' | 'offset'>,
  raw: number | boolean | string,
): number | boolean | string {
  if (typeof raw !== 'number' || (tag.scale === 1 && tag.offset === 0)) return raw;
  return Number((raw * tag.scale + tag.offset).toPrecision(12));
}

/** The inverse, for writes and the simulator. */
export function toRaw(tag: Pick<ModbusTag, 'scale' | 'offset'>, eng: number): number {
  return tag.scale === 1 && tag.offset === 0 ? eng : (eng - tag.offset) / tag.scale;
}

/** Float32 values shown as the shortest decimal that round-trips (21.1, not 21.100000381…). */
export function tidyFloat32(v: number): number {
  return Number.isFinite(v) ? Number(Math.fround(v).toPrecision(7)) : v;
}
