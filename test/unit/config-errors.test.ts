import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { scratchWorkspaces } from '../support/workspace.ts';

/** A scratch folder with a profile folder and a config that uses it. */
const workspace = scratchWorkspaces('octopus-config-');

const goodModbusProfile = `kind: modbus
vendor: test
model: m1
description: a test controller
addressing: zero-based
tags:
  - { name: air_temperature, description: air, unit: degree_Celsius, standard_name: air_temperature, address: 0, type: float32 }
  - { name: door, description: door, area: coil, address: 0, type: bool }
`;

describe('octopus validate', () => {
  it('accepts a valid configuration and names its chambers', () => {
    const dir = workspace({
      'profiles/modbus/test-m1.yaml': goodModbusProfile,
      'lab.yaml': `profile_dirs: [profiles]\nchambers:\n  - { id: c1, driver: modbus, profile: test-m1, endpoint: "tcp://127.0.0.1:502" }\n`,
    });
    const r = runCli(['validate', 'lab.yaml'], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ok  lab.yaml: 1 chamber (c1)');
  });

  it('reports every configuration problem at once, located by line and chamber id, with the value, exit code 2', () => {
    const dir = workspace({
      'profiles/modbus/test-m1.yaml': goodModbusProfile,
      'lab.yaml': `profile_dirs: [profiles]
mqtt:
  url: "http://broker:1883"
chambers:
  - { id: c1, driver: modbus, profile: test-m1, endpoint: "tcp://127.0.0.1:502" }
  - { id: c2, driver: modbus, profile: foo-x, endpoint: "tcp://127.0.0.1:502", modbus: { unit_id: 2 } }
  - { id: c3, driver: opcua, profile: test-m1, endpoint: "opc.tcp://plc:4840",
      opcua: { auth: { type: username, username_env: OCTO_TEST_USER, password_env: OCTO_TEST_PASSWORD } } }
  - { id: c1, driver: modbus, profile: test-m1, endpoint: "tcp://10.0.0.9:99999", modbus: { unit_id: 3 } }
  - { id: c5, driver: opcua, profile: test-m1, endpoint: "opc.tpc://plc" }
`,
    });
    const r = runCli(['validate', 'lab.yaml'], { cwd: dir, env: { OCTO_TEST_USER: 'operator' } });
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toContain(
      'lab.yaml:3: mqtt.url: broker URLs look like mqtt://host:1883, mqtts://, ws:// or wss:// (got "http://broker:1883")',
    );
    expect(lines).toContain(
      'lab.yaml:10: chambers[4] (c5).endpoint: OPC UA endpoints look like opc.tcp://host:4840[/path] (got "opc.tpc://plc")',
    );
    // Alongside the shape problems, the well-formed chambers are cross-checked too.
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^lab\.yaml:6: chambers\[1\] \(c2\)\.profile: unknown profile "foo-x" \(known: .*test-m1.*\)$/,
        ),
        'lab.yaml:9: chambers[3] (c1).id: duplicate chamber id (first at chambers[0]) (got "c1")',
      ]),
    );
    expect(lines.at(-1)).toBe('7 problems found');

    const fixed = join(dir, 'lab2.yaml');
    writeFileSync(
      fixed,
      `profile_dirs: [profiles]
chambers:
  - { id: c1, driver: modbus, profile: test-m1, endpoint: "tcp://127.0.0.1:502" }
  - { id: c2, driver: modbus, profile: foo-x, endpoint: "tcp://127.0.0.1:502", modbus: { unit_id: 2 } }
  - { id: c3, driver: opcua, profile: test-m1, endpoint: "opc.tcp://plc:4840",
      opcua: { auth: { type: username, username_env: OCTO_TEST_USER, password_env: OCTO_TEST_PASSWORD } } }
  - { id: c1, driver: modbus, profile: test-m1, endpoint: "tcp://10.0.0.9:99999", modbus: { unit_id: 3 } }
  - { id: c6, driver: modbus, profile: test-m1, endpoint: "tcp://127.0.0.1:502", overrides: { air_temp: { scale: 2 } } }
`,
    );
    const r2 = runCli(['validate', 'lab2.yaml'], { cwd: dir, env: { OCTO_TEST_USER: 'operator' } });
    expect(r2.code).toBe(2);
    const lines2 = r2.stderr.trim().split('\n');
    expect(lines2).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^lab2\.yaml:4: chambers\[1\] \(c2\)\.profile: unknown profile "foo-x" \(known: .*test-m1.*\)$/,
        ),
        'lab2.yaml:6: chambers[2] (c3).opcua.auth.password_env: credential variable OCTO_TEST_PASSWORD is not set in the environment',
        'lab2.yaml:5: chambers[2] (c3).profile: profile "test-m1" is for modbus but the chamber\'s driver is opcua (got "test-m1")',
        'lab2.yaml:7: chambers[3] (c1).id: duplicate chamber id (first at chambers[0]) (got "c1")',
        'lab2.yaml:7: chambers[3] (c1).endpoint: port out of range (1-65535) (got "tcp://10.0.0.9:99999")',
        'lab2.yaml:8: chambers[4] (c6).modbus.unit_id: unit id already used on tcp://127.0.0.1:502 by chambers[0] (got 1)',
        'lab2.yaml:8: chambers[4] (c6).overrides.air_temp: profile "test-m1" has no tag of that name (got "air_temp")',
      ]),
    );
    expect(lines2.at(-1)).toBe('7 problems found');
  });

  it('reports every profile problem by line and tag name: duplicate tag, overlap, out of range, type vs register count', () => {
    const dir = workspace({
      'bad/test-m2.yaml': `kind: modbus
vendor: test
model: m2
description: a broken profile
addressing: zero-based
tags:
  - { name: t1, description: a, address: 0, type: float32 }
  - { name: t1, description: b, address: 10, type: int16 }
  - { name: t3, description: c, address: 1, type: uint16 }
  - { name: t4, description: d, address: 65534, type: float64 }
  - { name: t5, description: e, address: 20, type: int32, count: 1 }
  - { name: t6, description: f, area: coil, address: 0, type: float32 }
  - { name: t7, description: g, address: 30, type: bool }
  - { name: t8, description: h, area: input, address: 0, type: int16, writable: true }
  - { name: t9, description: i, address: 40, type: bool, bit: 3 }
  - { name: t10, description: j, address: 40, type: bool, bit: 4, setpoint_of: nothing }
`,
    });
    const r = runCli(['validate', 'bad/test-m2.yaml'], { cwd: dir });
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toEqual([
      'bad/test-m2.yaml:8: tags[1] (t1).name: duplicate tag name (first at tags[0]) (got "t1")',
      'bad/test-m2.yaml:16: tags[9] (t10).setpoint_of: no tag of that name in this profile (got "nothing")',
      'bad/test-m2.yaml:10: tags[3] (t4).address: address out of range: float64 spans 65534..65537, Modbus addresses are 0..65535 (got 65534)',
      'bad/test-m2.yaml:11: tags[4] (t5).count: type int32 occupies 2 registers (got 1)',
      'bad/test-m2.yaml:12: tags[5] (t6).type: coil holds single bits; only type bool fits (got "float32")',
      'bad/test-m2.yaml:13: tags[6] (t7).bit: a bool in holding registers needs bit (0-15)',
      'bad/test-m2.yaml:14: tags[7] (t8).writable: input registers are read-only in Modbus (got true)',
      'bad/test-m2.yaml:9: tags[2] (t3).address: overlaps tags[0] "t1" (holding 0..1) (got 1)',
      '8 problems found',
    ]);
  });

  it("test-profile runs a profile's testcases and prints every check with expected and actual values", () => {
    const ok = runCli(['test-profile', 'climatec-ch400']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('testcases drivers/modbus/testcases/climatec-ch400.yaml (profile climatec-ch400):');
    expect(ok.stdout).toContain('  pass  cases[0] "nominal daytime values": 13 checks');
    expect(ok.stdout).toContain(
      '        ok    expect.air_temperature: holding [0x00d7] decodes to 21.5, expected 21.5',
    );
    expect(ok.stdout).toMatch(/ok {4}writes\[\d+\] \(air_temperature_setpoint\): write 45 refused: .*outside 5\.\.40/);

    const dir = workspace({ 'modbus/test-m1.yaml': goodModbusProfile });
    const missing = runCli(['test-profile', 'modbus/test-m1.yaml'], { cwd: dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(
      'modbus/test-m1.yaml: (file): no testcases: write modbus/testcases/test-m1.yaml (see drivers/modbus/README.md)',
    );
  });

  it('reports YAML syntax errors with their line', () => {
    const dir = workspace({ 'broken.yaml': 'chambers:\n  - id: c1\n   driver: [modbus\n' });
    const r = runCli(['validate', 'broken.yaml'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^broken\.yaml: line \d+:\d+: YAML syntax: /m);
  });

  it('start with a bad configuration exits 2 before starting anything', () => {
    const dir = workspace({
      'lab.yaml': 'chambers:\n  - { id: c1, driver: modbus, profile: nope-x, endpoint: "tcp://127.0.0.1:502" }\n',
    });
    const r = runCli(['start', '--config', 'lab.yaml'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^lab\.yaml:2: chambers\[0\] \(c1\)\.profile: unknown profile "nope-x" \(known: /m);
  });
});
