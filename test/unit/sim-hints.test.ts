/**
 * `sim:` hints are optional: a profile written from a real controller's datasheet, with
 * no hints and no run state, is still served plausibly by the simulator — quantities
 * recognised by their CF standard name, setpoints by setpoint_of, the run state by
 * run_trigger, alarms by role — and anything else holds a constant inside min..max that
 * a client may overwrite.
 */
import { describe, expect, it } from 'vitest';
import { ModbusProfile } from '../../src/config/profile-schema.ts';
import { ChamberModel } from '../../src/sim/dynamics.ts';
import { bindTags, simHintFor } from '../../src/sim/tag-model.ts';

const profile = ModbusProfile.parse({
  kind: 'modbus',
  vendor: 'acme',
  model: 'plain',
  description: 'a controller profile without sim hints or run state',
  addressing: 'zero-based',
  tags: [
    {
      name: 'temp',
      description: 'air',
      address: 0,
      type: 'int16',
      scale: 0.1,
      unit: 'degree_Celsius',
      standard_name: 'air_temperature',
    },
    {
      name: 'temp_sp',
      description: 'setpoint',
      address: 1,
      type: 'int16',
      scale: 0.1,
      unit: 'degree_Celsius',
      role: 'setpoint',
      setpoint_of: 'temp',
      writable: true,
    },
    {
      name: 'co2',
      description: 'CO2',
      address: 2,
      type: 'uint16',
      unit: 'umol mol-1',
      standard_name: 'mole_fraction_of_carbon_dioxide_in_air',
    },
    { name: 'fault', description: 'fault', area: 'coil', address: 0, type: 'bool', role: 'alarm' },
    {
      name: 'fan_speed',
      description: 'fan',
      address: 3,
      type: 'uint16',
      unit: 'percent',
      min: 20,
      max: 80,
      writable: true,
    },
    { name: 'valve', description: 'valve', address: 4, type: 'uint16' },
  ],
});

describe('simulator without sim: hints', () => {
  it('infers the modelled quantity from standard_name, setpoint_of and role', () => {
    expect(profile.tags.map((t) => [t.name, simHintFor(t) ?? null])).toEqual([
      ['temp', 'air_temperature'],
      ['temp_sp', 'setpoint'],
      ['co2', 'co2'],
      ['fault', 'alarm'],
      ['fan_speed', null],
      ['valve', null],
    ]);
  });

  it('serves the model for recognised tags, a writable setpoint, and constants inside the range for the rest', () => {
    const start = Date.UTC(2026, 5, 1, 12, 0, 0);
    const model = new ChamberModel(7, undefined, start);
    model.step(start + 60_000);
    const b = new Map(bindTags(profile.tags, model).map((x) => [x.tag.name, x]));
    expect(b.get('temp')!.read()).toBe(model.value('air_temperature'));
    expect(b.get('co2')!.read()).toBe(model.value('co2'));
    expect(b.get('fault')!.read()).toBe(model.value('alarm'));
    expect(b.get('temp_sp')!.read()).toBe(model.setpoint('air_temperature'));
    expect(b.get('temp_sp')!.write(18.5)).toBe(true);
    expect(model.setpoint('air_temperature')).toBe(18.5);
    expect(b.get('fan_speed')!.read()).toBe(50);
    expect(b.get('valve')!.read()).toBe(0);
    expect(b.get('fan_speed')!.write(65)).toBe(true);
    expect(b.get('fan_speed')!.read()).toBe(65);
    // The model keeps running without a run-state tag.
    expect(model.value('run')).toBe(true);
  });
});
