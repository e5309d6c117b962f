/**
 * The profile corpus: every device profile under drivers/ validates (as `octopus validate`
 * does: shape, udunits2 units, CF standard names with canonical units, address layout),
 * is named in the README beside it and has a testcase file whose every case passes
 * through the driver's own decode and write functions and covers every tag. Adding a PLC
 * model = adding a profile, its testcases and a README row; this test picks them up.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILTIN_PROFILE_DIR, loadProfiles, type LoadedProfile } from '../../src/config/profiles.ts';
import { readYamlFile } from '../../src/config/yaml-file.ts';
import { checkModbusTestcases } from '../../src/drivers/modbus/testcase.ts';
import { checkOpcuaTestcases } from '../../src/drivers/opcua/testcase.ts';
import { QUANTITIES } from '../../src/sim/dynamics.ts';

const { profiles, issues } = loadProfiles();
const corpus: LoadedProfile[] = [...profiles.values()];
const testcaseFile = (p: LoadedProfile) => join(dirname(p.file), 'testcases', basename(p.file));

describe('the profile corpus', () => {
  it('has at least one OPC UA and two Modbus profiles, and every one validates', () => {
    expect(issues).toEqual([]);
    expect(corpus.filter((p) => p.profile.kind === 'opcua').length).toBeGreaterThanOrEqual(1);
    expect(corpus.filter((p) => p.profile.kind === 'modbus').length).toBeGreaterThanOrEqual(2);
  });

  it('has a README in every driver folder that names each of its profiles', () => {
    for (const p of corpus) {
      const readme = join(dirname(p.file), 'README.md');
      expect(existsSync(readme), `${readme} is missing`).toBe(true);
      expect(readFileSync(readme, 'utf8'), `${readme} does not name ${p.id}.yaml`).toContain(`${p.id}.yaml`);
    }
  });

  it('has no testcase file without a profile', () => {
    for (const kind of readdirSync(BUILTIN_PROFILE_DIR)) {
      const dir = join(BUILTIN_PROFILE_DIR, kind, 'testcases');
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir))
        expect(profiles.has(f.replace(/\.ya?ml$/, '')), `${kind}/testcases/${f} has no profile`).toBe(true);
    }
  });
});

describe.each(corpus.map((p) => [p.id, p] as const))('profile %s', (_id, p) => {
  // What `octopus validate` checks (shape, unknown fields, udunits2 units, CF standard
  // names and canonical units, address layout) is covered by "every one validates" above;
  // test/unit/units.test.ts proves the unit checks agree with the real udunits2 on this corpus.
  // A controller need not have a run state, a writable setpoint or sim: hints.

  it('marks at most one run trigger, and only on a bool', () => {
    const triggers = p.profile.tags.filter((t) => t.run_trigger);
    expect(triggers.length).toBeLessThanOrEqual(1);
    for (const t of triggers) expect(['bool', 'Boolean'], `${t.name}: run_trigger needs a bool tag`).toContain(t.type);
  });

  it('uses only sim hints the simulator knows, and setpoint hints only on setpoints', () => {
    const known = new Set<string>([...QUANTITIES, 'setpoint']);
    for (const t of p.profile.tags.filter((t) => t.sim !== undefined)) {
      expect(known.has(t.sim!), `${t.name}: unknown sim hint "${t.sim}" (known: ${[...known].join(', ')})`).toBe(true);
      if (t.sim === 'setpoint') expect(t.setpoint_of, `${t.name}: sim: setpoint needs setpoint_of`).toBeDefined();
    }
  });

  it('passes every testcase, and the testcases cover every tag', () => {
    const file = testcaseFile(p);
    expect(existsSync(file), `${file} is missing`).toBe(true);
    const read = readYamlFile(file);
    if (!read.ok) throw new Error(read.issues.map((i) => i.message).join('\n'));
    const problems =
      p.profile.kind === 'modbus'
        ? checkModbusTestcases(p.profile, read.data)
        : checkOpcuaTestcases(p.profile, read.data);
    expect(problems).toEqual([]);
  });
});

describe('the testcase checker', () => {
  const modbus = corpus.find((p) => p.id === 'climatec-ch400')!;
  it('reports a wrong expectation with the registers and both values', () => {
    const doc = {
      profile: 'climatec-ch400',
      cases: [{ name: 'wrong', registers: { holding: { 0: 215 } }, expect: { air_temperature: 12.5 } }],
    };
    const problems = checkModbusTestcases(modbus.profile as never, doc);
    expect(problems).toContain(
      'cases[0] "wrong" expect.air_temperature: holding [0x00d7] decodes to 21.5, expected 12.5',
    );
  });
  it('reports missing registers, unknown tags, wrong writes and untested tags', () => {
    const doc = {
      profile: 'climatec-ch400',
      cases: [
        {
          name: 'gaps',
          registers: { holding: { 12: 1 } },
          expect: { runtime: 1, nonsense: 3 },
          writes: [{ tag: 'co2_setpoint', value: 500, expect_registers: [501] }],
        },
      ],
    };
    const problems = checkModbusTestcases(modbus.profile as never, doc).join('\n');
    expect(problems).toContain('expect.runtime: registers.holding has no value at 13 (uint32 at holding 12 needs 2)');
    expect(problems).toContain('expect.nonsense: no tag named "nonsense" in the profile');
    expect(problems).toContain(
      'writes[0] (co2_setpoint): write 500 gives registers [0x01f4] at 22, expected registers [0x01f5]',
    );
    expect(problems).toMatch(/no expected value for tags air_temperature, .*running/);
  });
});
