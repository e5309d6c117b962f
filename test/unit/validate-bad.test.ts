/**
 * The integrator's mistakes `octopus validate` must catch before `npm test` or a PLC
 * does: one fixture per mistake under test/fixtures/bad (profiles, configurations,
 * testcase files), each with the exact messages it must produce — file, line, tag name
 * (or chamber id, case name), field and value.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { runCli, type CliResult } from '../support/cli.ts';

const BAD = join(PROJECT_ROOT, 'test', 'fixtures', 'bad');

/** fixture (relative to test/fixtures/bad) → what is wrong → every line validate prints for it. */
const CASES: Array<[string, string, Array<string | ReturnType<typeof expect.stringMatching>>]> = [
  [
    'lab-misspelt.yaml',
    'a misspelt chamber key (profle)',
    [
      'lab-misspelt.yaml:3: chambers[0] (c1).profile: required field is missing',
      'lab-misspelt.yaml:5: chambers[0] (c1).profle: unknown field (did you mean "profile"?)',
    ],
  ],
  [
    'lab-mqtt.yaml',
    'a misspelt broker option (prot)',
    ['lab-mqtt.yaml:3: mqtt.prot: unknown field (did you mean "port"?)'],
  ],
  [
    'lab-override-unit.yaml',
    'tag overrides with a unit udunits2 does not know and one that does not fit the standard name',
    [
      'lab-override-unit.yaml:9: chambers[0] (c1).overrides.co2.unit: unit "kWh_total" is not a udunits2 unit: unknown unit "kWh_total" (did you mean "kW h"?)',
      'lab-override-unit.yaml:10: chambers[0] (c1).overrides.par.unit: unit "percent" (0.01 1) does not convert to "mol m-2 s-1" (m-2 s-1 mol), the canonical units of standard_name "surface_downwelling_photosynthetic_photon_flux_in_air"',
    ],
  ],
  [
    'lab-override.yaml',
    'a misspelt key in a tag override (wrtable)',
    ['lab-override.yaml:8: chambers[0] (c1).overrides.co2_setpoint.wrtable: unknown field (did you mean "writable"?)'],
  ],
  [
    'modbus/bad-alias.yaml',
    'a retired CF standard name (alias)',
    [
      'modbus/bad-alias.yaml:13: tags[0] (soil_moisture).standard_name: standard_name "soil_moisture_content" is an alias: CF Standard Name Table v83 now calls it "mass_content_of_water_in_soil"; use that name',
    ],
  ],
  [
    'modbus/bad-conflict.yaml',
    'a Modicon reference contradicting area',
    [
      'modbus/bad-conflict.yaml:10: tags[0] (co2).area: modicon 40005 is in the holding table; drop area or make it holding (got "input")',
    ],
  ],
  [
    'modbus/bad-degree.yaml',
    'a datasheet unit spelling (deg)',
    [
      'modbus/bad-degree.yaml:12: tags[0] (vent_angle).unit: unit "deg" is not a udunits2 unit: unknown unit "deg" (did you mean "degree"?)',
    ],
  ],
  [
    'modbus/bad-incompatible.yaml',
    'a unit incompatible with the standard name',
    [
      'modbus/bad-incompatible.yaml:18: tags[1] (air_pressure).unit: unit "hPa" (100 m-1 kg s-2) does not convert to "K" (K), the canonical units of standard_name "air_temperature"',
    ],
  ],
  [
    'modbus/bad-input.yaml',
    'a Modicon input register written as an address',
    [
      'modbus/bad-input.yaml:11: tags[0] (co2).address: looks like a Modicon reference: input register 30011 in a datasheet is zero-based address 10; write "address: 10" or "modicon: 30011" (if the map really uses zero-based 30011, set defaults.allow_high_addresses: true) (got 30011)',
    ],
  ],
  [
    'modbus/bad-misspelt.yaml',
    'a misspelt key that made a setpoint read-only (wrtable)',
    [
      'modbus/bad-misspelt.yaml:18: tags[1] (air_temperature_setpoint).wrtable: unknown field (did you mean "writable"?)',
    ],
  ],
  [
    'modbus/bad-modicon.yaml',
    'a Modicon holding register written as an address',
    [
      'modbus/bad-modicon.yaml:10: tags[0] (air_temperature).address: looks like a Modicon reference: holding register 40001 in a datasheet is zero-based address 0; write "address: 0" or "modicon: 40001" (if the map really uses zero-based 40001, set defaults.allow_high_addresses: true) (got 40001)',
    ],
  ],
  [
    'modbus/bad-nounit.yaml',
    'a standard name without a unit',
    [
      'modbus/bad-nounit.yaml:8: tags[0] (relative_humidity).unit: standard_name "relative_humidity" needs a unit that converts to its canonical units "1"',
    ],
  ],
  [
    'modbus/bad-setpoint.yaml',
    'a setpoint of a missing tag',
    [
      'modbus/bad-setpoint.yaml:13: tags[0] (co2_setpoint).setpoint_of: no tag of that name in this profile (got "co2")',
    ],
  ],
  [
    'modbus/bad-stdname.yaml',
    'a misspelt CF standard name',
    [
      'modbus/bad-stdname.yaml:14: tags[0] (air_temperature).standard_name: standard_name "air_temperatur" is not in the CF Standard Name Table v83 (did you mean "air_temperature", "fire_temperature", "soil_temperature"?)',
    ],
  ],
  [
    'modbus/bad-superscript.yaml',
    'a superscript in a unit (m³/m³)',
    [
      'modbus/bad-superscript.yaml:13: tags[0] (soil_moisture).unit: unit "m³/m³": write units in ASCII ("m3/m3"); udunits2 reads non-ASCII symbols only in its UTF-8 mode, NetCDF tools using its ASCII or Latin-1 mode do not',
    ],
  ],
  [
    'modbus/bad-table.yaml',
    'a Modicon reference to a table that does not exist',
    [
      'modbus/bad-table.yaml:10: tags[0] (co2).modicon: Modicon table 2xxxx does not exist (0 coil, 1 discrete input, 3 input register, 4 holding register) (got 20001)',
    ],
  ],
  [
    'modbus/bad-toplevel.yaml',
    'misspelt top-level and defaults keys',
    [
      'modbus/bad-toplevel.yaml:2: addressing: required field is missing',
      'modbus/bad-toplevel.yaml:8: defaults.ordr: unknown field (did you mean "order"?)',
      'modbus/bad-toplevel.yaml:6: adressing: unknown field (did you mean "addressing"?)',
    ],
  ],
  [
    'modbus/bad-trigger.yaml',
    'a run trigger on a number',
    [
      'modbus/bad-trigger.yaml:12: tags[0] (programme_step).run_trigger: a run trigger must be a bool tag (got "uint16")',
    ],
  ],
  [
    'modbus/bad-unit.yaml',
    'a unit udunits2 does not know (kWh_total)',
    [
      'modbus/bad-unit.yaml:17: tags[1] (energy).unit: unit "kWh_total" is not a udunits2 unit: unknown unit "kWh_total" (did you mean "kW h"?)',
    ],
  ],
  [
    'modbus/testcases/climatec-ch400.yaml',
    'testcase mismatches: value, unknown tag, write, untested tags',
    [
      'modbus/testcases/climatec-ch400.yaml:3: cases: no expected value for tags relative_humidity, co2, par, soil_moisture, alarm_active, door_open, runtime, air_temperature_setpoint, relative_humidity_setpoint, co2_setpoint, par_setpoint, running (every tag needs at least one)',
      'modbus/testcases/climatec-ch400.yaml:8: cases[0] (wrong temperature).expect.air_temperature: holding [0x00d7] decodes to 21.5, expected 12.5',
      'modbus/testcases/climatec-ch400.yaml:9: cases[0] (wrong temperature).expect.nonsense: no tag named "nonsense" in the profile',
      'modbus/testcases/climatec-ch400.yaml:11: cases[0] (wrong temperature).writes[0] (co2_setpoint): write 500 gives registers [0x01f4] at 22, expected registers [0x01f5]',
    ],
  ],
  [
    'modbus/testcases/phytolab-gc2.yaml',
    'a misspelt testcase key (regsters)',
    [
      'modbus/testcases/phytolab-gc2.yaml:5: cases[0] (misspelt registers).regsters: unknown field (did you mean "registers"?)',
    ],
  ],
  [
    'opcua/bad-nodeid.yaml',
    'a misspelt OPC UA key (nodeid)',
    [
      'opcua/bad-nodeid.yaml:7: tags[0] (air_temperature).node: required field is missing',
      'opcua/bad-nodeid.yaml:9: tags[0] (air_temperature).nodeid: unknown field (did you mean "node"?)',
    ],
  ],
  [
    'opcua/bad-syntax.yaml',
    'a unit that is not udunits2 syntax',
    [
      'opcua/bad-syntax.yaml:11: tags[0] (par).unit: unit "umol m-2/" is not a udunits2 unit: syntax error: the unit ends too early',
    ],
  ],
  [
    'opcua/testcases/ecotron-chamberctl.yaml',
    'a testcase file for a profile that does not exist',
    [
      expect.stringMatching(
        /^opcua\/testcases\/ecotron-chamberctl\.yaml:2: profile: no profile "ecotron-chamberctl2" \(looked for .*known: .*ecotron-chamberctl.*\)/,
      ),
    ],
  ],
  [
    'opcua/testcases/wrong-scale.yaml',
    'a testcase expecting the raw value (scale forgotten)',
    [
      'opcua/testcases/wrong-scale.yaml:3: cases: no value case for tags air_temperature, relative_humidity, co2, par, air_temperature_setpoint, relative_humidity_setpoint, co2_setpoint, par_setpoint, alarm_active, alarm_word, door_open, running, runtime, heater_output (every tag needs at least one)',
      'opcua/testcases/wrong-scale.yaml:6: cases[0] (soil moisture in tenths).values[0] (soil_moisture): raw 325 decodes to 32.5, expected 325',
    ],
  ],
];

const files = (readdirSync(BAD, { recursive: true, encoding: 'utf8' }) as string[])
  .filter((f) => f.endsWith('.yaml'))
  .sort();

let result: CliResult | undefined;
/** One `octopus validate` run over every fixture (as an integrator runs it over a folder). */
function validateAll(): CliResult {
  result ??= runCli(['validate', ...files], { cwd: BAD });
  return result;
}

describe('octopus validate on the bad-fixture corpus', () => {
  it('has a fixture for every mistake and an expectation for every fixture', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20);
    expect(CASES.map(([f]) => f).sort()).toEqual(files);
  });

  it.each(CASES)(
    '%s (%s): prints exactly the expected located messages',
    (file, _what, expected) => {
      const r = validateAll();
      expect(r.code).toBe(2);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith(`${file}:`));
      expect(lines).toEqual(expected);
    },
    120_000,
  );

  it('prints each testcase as pass or FAIL with expected and actual values', () => {
    const r = validateAll();
    expect(r.stdout).toContain('  FAIL  cases[0] "wrong temperature": 3 of 3 checks failed');
    expect(r.stdout).toContain('        FAIL  expect.air_temperature: holding [0x00d7] decodes to 21.5, expected 12.5');
    expect(r.stdout).toContain('        FAIL  values[0] (soil_moisture): raw 325 decodes to 32.5, expected 325');
    const total = r.stderr.trim().split('\n').at(-1);
    expect(total).toBe(`${CASES.reduce((n, [, , e]) => n + e.length, 0)} problems found`);
  }, 120_000);
});
