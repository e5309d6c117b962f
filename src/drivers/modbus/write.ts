import type { ModbusTag, WordOrder } from '../../config/profile-schema.ts';
import { encodeRaw, toRaw } from './codec.ts';

/** What a write of one tag puts on the wire. */
export type ModbusWrite =
  | { kind: 'coil'; address: number; on: boolean }
  /** A bit in a holding register: read-modify-write. */
  | { kind: 'bit'; address: number; bit: number; on: boolean }
  | { kind: 'registers'; address: number; words: number[] };

const TRUE = new Set<unknown>([true, 1, 'true', '1']);
const FALSE = new Set<unknown>([false, 0, 'false', '0']);

/**
 * Turns an engineering value for a tag into the Modbus write that sets it, or throws
 * saying why the value is refused: read-only tag, not a bool/number, outside the tag's
 * min..max, or a raw value that does not fit the register type. Pure: the driver and the
 * profile testcases share it.
 */
export function encodeModbusWrite(tag: ModbusTag, value: unknown, order: WordOrder): ModbusWrite {
  if (!tag.writable) throw new Error(`tag "${tag.name}" is read-only`);
  const area = tag.area ?? 'holding';
  if (area === 'input' || area === 'discrete')
    throw new Error(`tag "${tag.name}" is in the ${area} area, which Modbus cannot write`);
  if (tag.type === 'bool') {
    const on = TRUE.has(value);
    if (!on && !FALSE.has(value)) throw new Error(`tag "${tag.name}" is a bool; got ${JSON.stringify(value)}`);
    return area === 'coil'
      ? { kind: 'coil', address: tag.address, on }
      : { kind: 'bit', address: tag.address, bit: tag.bit ?? 0, on };
  }
  if (tag.type === 'string') {
    if (typeof value !== 'string') throw new Error(`tag "${tag.name}" is a string; got ${JSON.stringify(value)}`);
    return { kind: 'registers', address: tag.address, words: encodeRaw(tag, value, order) };
  }
  const n = typeof value === 'number' ? value : Number.NaN;
  if (!Number.isFinite(n)) throw new Error(`tag "${tag.name}" needs a number; got ${JSON.stringify(value)}`);
  if ((tag.min !== undefined && n < tag.min) || (tag.max !== undefined && n > tag.max)) {
    throw new Error(`${tag.name} = ${n} is outside ${tag.min ?? '-∞'}..${tag.max ?? '∞'} ${tag.unit ?? ''}`.trim());
  }
  return { kind: 'registers', address: tag.address, words: encodeRaw(tag, toRaw(tag, n), order) };
}
