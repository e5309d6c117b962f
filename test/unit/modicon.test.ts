/**
 * Modicon references ("40001", "4x0001", 400001) as datasheets print them: written as
 * `modicon:` they become the right area and zero-based address; written by mistake as a
 * raw `address` they are refused with the conversion (see test/fixtures/bad for messages).
 */
import { describe, expect, it } from 'vitest';
import { ModbusProfile, parseModicon } from '../../src/config/profile-schema.ts';
import { lintProfile } from '../../src/config/profile-lint.ts';

describe('Modicon references', () => {
  it.each([
    [40001, { area: 'holding', address: 0 }],
    ['40001', { area: 'holding', address: 0 }],
    ['4x0001', { area: 'holding', address: 0 }],
    [400001, { area: 'holding', address: 0 }],
    [465536, { area: 'holding', address: 65535 }],
    [30011, { area: 'input', address: 10 }],
    ['3x0011', { area: 'input', address: 10 }],
    [10001, { area: 'discrete', address: 0 }],
    ['00001', { area: 'coil', address: 0 }],
    [1, { area: 'coil', address: 0 }],
    [9999, { area: 'coil', address: 9998 }],
  ] as const)('%s is %o', (ref, expected) => {
    expect(parseModicon(ref)).toEqual(expected);
  });

  it.each([
    [20001, 'table 2xxxx does not exist'],
    [40000, 'count from 1'],
    ['holding 1', 'looks like 40001'],
    [1.5, 'looks like 40001'],
  ] as const)('refuses %s', (ref, fragment) => {
    const r = parseModicon(ref as number | string);
    expect('error' in r && r.error).toContain(fragment);
  });

  const profile = (tags: unknown[], defaults?: unknown) =>
    ModbusProfile.safeParse({
      kind: 'modbus',
      vendor: 'acme',
      model: 'm',
      description: 'd',
      addressing: 'zero-based',
      ...(defaults ? { defaults } : {}),
      tags,
    });

  it('resolves modicon: to area and address, which the driver and lint then use', () => {
    const p = profile([
      { name: 'co2', description: 'CO2', modicon: 30005, type: 'uint16' },
      { name: 'setpoint', description: 'SP', modicon: '4x0010', type: 'float32', writable: true },
      { name: 'running', description: 'run', modicon: '00001', type: 'bool', writable: true },
    ]);
    expect(p.success).toBe(true);
    const tags = p.data!.tags.map((t) => [t.name, t.area, t.address]);
    expect(tags).toEqual([
      ['co2', 'input', 4],
      ['setpoint', 'holding', 9],
      ['running', 'coil', 0],
    ]);
    expect(lintProfile('acme-m.yaml', p.data!)).toEqual([]);
    // Parsing the parsed profile again (as tests and tools do) is stable.
    expect(ModbusProfile.parse(p.data).tags.map((t) => [t.name, t.area, t.address])).toEqual(tags);
  });

  it('refuses look-alike raw addresses unless the map declares high zero-based addresses', () => {
    const bad = profile([{ name: 't', description: 't', address: 40001, type: 'int16' }]);
    expect(lintProfile('acme-m.yaml', bad.data!).map((i) => i.message)).toEqual([
      'looks like a Modicon reference: holding register 40001 in a datasheet is zero-based address 0; write "address: 0" or "modicon: 40001" (if the map really uses zero-based 40001, set defaults.allow_high_addresses: true)',
    ]);
    const sunspec = profile([{ name: 't', description: 't', address: 40002, type: 'int16' }], {
      allow_high_addresses: true,
    });
    expect(lintProfile('acme-m.yaml', sunspec.data!)).toEqual([]);
    // 40000 is no Modicon reference (they count from 40001): SunSpec's base register passes.
    expect(
      lintProfile('acme-m.yaml', profile([{ name: 't', description: 't', address: 40000, type: 'int16' }]).data!),
    ).toEqual([]);
  });
});
