import { describe, expect, it } from 'vitest';
import { decodeRaw, encodeRaw, toEngineering, toRaw } from '../../src/drivers/modbus/codec.ts';
import type { ModbusType, WordOrder } from '../../src/config/profile-schema.ts';

const ORDERS: WordOrder[] = ['ABCD', 'CDAB', 'BADC', 'DCBA'];

describe('Modbus codec', () => {
  it('decodes known float32 vectors in every order', () => {
    expect(decodeRaw({ type: 'float32' }, [0x41cc, 0x0000], 'ABCD')).toBe(25.5);
    expect(decodeRaw({ type: 'float32' }, [0x0000, 0x41cc], 'CDAB')).toBe(25.5);
    expect(decodeRaw({ type: 'float32' }, [0xcc41, 0x0000], 'BADC')).toBe(25.5);
    expect(decodeRaw({ type: 'float32' }, [0x0000, 0xcc41], 'DCBA')).toBe(25.5);
  });

  it('decodes known integer vectors', () => {
    expect(decodeRaw({ type: 'int16' }, [0xff38], 'ABCD')).toBe(-200);
    expect(decodeRaw({ type: 'uint32' }, [0x5678, 0x1234], 'CDAB')).toBe(0x12345678);
    expect(decodeRaw({ type: 'int64' }, [0xffff, 0xffff, 0xffff, 0xfffe], 'ABCD')).toBe(-2);
    expect(decodeRaw({ type: 'bool', bit: 3 }, [0b1000], 'ABCD')).toBe(true);
    expect(decodeRaw({ type: 'bool', bit: 2 }, [0b1000], 'ABCD')).toBe(false);
    expect(decodeRaw({ type: 'string', count: 3 }, [0x4743, 0x2d32, 0x0000], 'ABCD')).toBe('GC-2');
  });

  const values: Record<Exclude<ModbusType, 'bool' | 'string'>, number[]> = {
    int16: [-32768, -1, 0, 12345, 32767],
    uint16: [0, 1, 65535],
    int32: [-2147483648, -70000, 0, 2147483647],
    uint32: [0, 70000, 4294967295],
    float32: [-40.25, 0, 25.5, 1013.25],
    int64: [-(2 ** 53) + 1, -5, 0, 2 ** 40 + 7],
    uint64: [0, 2 ** 53 - 1],
    float64: [-1e-9, 0, 3.141592653589793, 86400.125],
  };
  for (const [type, list] of Object.entries(values)) {
    for (const order of ORDERS) {
      it(`round-trips ${type} in ${order}`, () => {
        for (const v of list)
          expect(
            decodeRaw({ type: type as ModbusType }, encodeRaw({ type: type as ModbusType }, v, order), order),
          ).toBe(v);
      });
    }
  }

  it('round-trips strings', () => {
    for (const order of ORDERS)
      expect(
        decodeRaw({ type: 'string', count: 8 }, encodeRaw({ type: 'string', count: 8 }, 'PL-2026-0042', order), order),
      ).toBe('PL-2026-0042');
  });

  it('refuses values that do not fit the type, saying why', () => {
    expect(() => encodeRaw({ type: 'uint16' }, 70000, 'ABCD')).toThrow('70000 is out of range for uint16 (0..65535)');
    expect(() => encodeRaw({ type: 'int16' }, Number.NaN, 'ABCD')).toThrow('not a finite number');
    expect(() => encodeRaw({ type: 'string', count: 2 }, 'too long', 'ABCD')).toThrow('does not fit 2 registers');
  });

  it('applies scale and offset both ways', () => {
    expect(toEngineering({ scale: 0.1, offset: 0 }, 215)).toBe(21.5);
    expect(toEngineering({ scale: 0.1, offset: -40 }, 650)).toBe(25);
    expect(toRaw({ scale: 0.1, offset: -40 }, 25)).toBeCloseTo(650);
  });
});
