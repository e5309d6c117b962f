import { describe, expect, it } from 'vitest';
import { effectiveTolerance, judgedVariables } from '../../src/fidelity/tolerance.ts';
import { runCli } from '../support/cli.ts';
import { scratchWorkspaces } from '../support/workspace.ts';

/** A scratch folder with a profile folder and a config that uses it. */
const workspace = scratchWorkspaces('octopus-tolerance-');

const profile = (tolerances: string) => `kind: modbus
vendor: test
model: m1
description: a test controller
addressing: zero-based
tags:
  - { name: air_temperature, description: air, unit: degree_Celsius, standard_name: air_temperature, address: 0, type: float32 }
  - { name: air_temperature_setpoint, description: target, unit: degree_Celsius, role: setpoint, setpoint_of: air_temperature, address: 2, type: float32 }
  - { name: co2, description: co2, unit: umol mol-1, address: 4, type: float32 }
${tolerances}`;

describe('tolerances', () => {
  it('merge profile < chamber < treatment per field, naming the tier of each field, hysteresis defaulting to 10 % of the band', () => {
    expect(effectiveTolerance({ band: 0.5, min_duration_s: 600 })).toEqual({
      band: 0.5,
      min_duration_s: 600,
      hysteresis: 0.05,
      source: { band: 'profile', min_duration_s: 'profile', hysteresis: 'default' },
    });
    expect(
      effectiveTolerance({ band: 0.5, min_duration_s: 600 }, { min_duration_s: 60 }, { band: 1, hysteresis: 0.2 }),
    ).toEqual({
      band: 1,
      min_duration_s: 60,
      hysteresis: 0.2,
      source: { band: 'treatment', min_duration_s: 'chamber', hysteresis: 'treatment' },
    });
    expect(effectiveTolerance(undefined, { min_duration_s: 60 })).toBeUndefined();
  });

  it('judge only variables with a setpoint partner and a band', () => {
    const tags = [
      { name: 'air_temperature' },
      { name: 'air_temperature_setpoint', role: 'setpoint', setpoint_of: 'air_temperature' },
      { name: 'co2' },
      { name: 'co2_setpoint', role: 'setpoint', setpoint_of: 'co2' },
    ];
    const judged = judgedVariables(
      tags,
      { air_temperature: { band: 0.5, min_duration_s: 600 } },
      {},
      { co2: { band: 50 } },
    );
    expect(judged.map((j) => [j.measured, j.setpoint, j.tolerance.band, j.tolerance.min_duration_s])).toEqual([
      ['air_temperature', 'air_temperature_setpoint', 0.5, 600],
      ['co2', 'co2_setpoint', 50, 300],
    ]);
  });

  it('validate refuses a profile tolerance on a variable no setpoint controls, naming the controlled ones', () => {
    const dir = workspace({ 'p/modbus/test-m1.yaml': profile('tolerances:\n  co2: { band: 50 }\n') });
    const r = runCli(['validate', 'p/modbus/test-m1.yaml'], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/tolerances\.co2: not a controlled variable.*controlled: air_temperature/);
  });

  it('validate refuses a hysteresis not below the band and a chamber override without any band', () => {
    const bad = workspace({
      'p/modbus/test-m1.yaml': profile('tolerances:\n  air_temperature: { band: 0.5, hysteresis: 0.5 }\n'),
    });
    const r1 = runCli(['validate', 'p/modbus/test-m1.yaml'], { cwd: bad });
    expect(r1.code).not.toBe(0);
    expect(r1.stderr + r1.stdout).toContain('hysteresis 0.5 must be smaller than the band 0.5');
    const dir = workspace({
      'profiles/modbus/test-m1.yaml': profile(''),
      'lab.yaml':
        'profile_dirs: [profiles]\nchambers:\n  - { id: c1, driver: modbus, profile: test-m1, endpoint: "tcp://127.0.0.1:502", tolerances: { air_temperature: { min_duration_s: 60 }, co2: { band: 9 } } }\n',
    });
    const r2 = runCli(['validate', 'lab.yaml'], { cwd: dir });
    expect(r2.code).not.toBe(0);
    const out = r2.stderr + r2.stdout;
    expect(out).toContain(
      'lab.yaml:3: chambers[0] (c1).tolerances.air_temperature: profile "test-m1" gives no band for air_temperature: give band here',
    );
    expect(out).toContain(
      'chambers[0] (c1).tolerances.co2: not a controlled variable of profile "test-m1" (controlled: air_temperature)',
    );
  });
});
