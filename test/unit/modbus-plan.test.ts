import { describe, expect, it } from 'vitest';
import { ModbusTag } from '../../src/config/profile-schema.ts';
import { planReads } from '../../src/drivers/modbus/plan.ts';

const tag = (name: string, address: number, type: string, area = 'holding') =>
  ModbusTag.parse({
    name,
    description: name,
    address,
    type,
    area,
    ...(type === 'bool' && area !== 'coil' ? { bit: 0 } : {}),
  });
const defaults = { defaults: { area: 'holding' as const, order: 'ABCD' as const } };
const opts = { max_gap: 4, max_registers: 125, max_bits: 2000 };

describe('Modbus read planning', () => {
  it('merges adjacent and nearby tags into one request and splits at a large hole', () => {
    const plan = planReads(
      defaults,
      [tag('a', 0, 'float32'), tag('b', 2, 'int16'), tag('c', 6, 'uint32'), tag('far', 100, 'int16')],
      opts,
    );
    expect(plan.map((r) => [r.area, r.address, r.count, r.tags.map((t) => `${t.tag.name}@${t.offset}`)])).toEqual([
      ['holding', 0, 8, ['a@0', 'b@2', 'c@6']],
      ['holding', 100, 1, ['far@0']],
    ]);
  });

  it('keeps areas apart and respects the register limit', () => {
    const many = Array.from({ length: 200 }, (_, i) => tag(`t${i}`, i, 'int16'));
    const plan = planReads(defaults, [...many, tag('door', 3, 'bool', 'coil'), tag('rh', 3, 'float32', 'input')], opts);
    expect(plan.map((r) => [r.area, r.address, r.count])).toEqual([
      ['coil', 3, 1],
      ['input', 3, 2],
      ['holding', 0, 125],
      ['holding', 125, 75],
    ]);
  });

  it('with max_gap 0 only strictly adjacent tags merge', () => {
    const plan = planReads(defaults, [tag('a', 0, 'int16'), tag('b', 1, 'int16'), tag('c', 3, 'int16')], {
      ...opts,
      max_gap: 0,
    });
    expect(plan.map((r) => r.tags.length)).toEqual([2, 1]);
  });
});
