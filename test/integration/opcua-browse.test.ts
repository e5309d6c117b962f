import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseDocument } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.ts';
import { OpcuaProfile } from '../../src/config/profile-schema.ts';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { lintProfile } from '../../src/config/profile-lint.ts';
import { startOpcuaServer, type RunningOpcuaServer } from '../../src/sim/opcua-server.ts';
import { browseProfile } from '../../src/drivers/opcua/browse.ts';

const ecotron = OpcuaProfile.parse(
  parse(readFileSync(join(PROJECT_ROOT, 'drivers/opcua/ecotron-chamberctl.yaml'), 'utf8')),
);
let server: RunningOpcuaServer;
beforeAll(async () => {
  server = await startOpcuaServer({
    port: await freePort(),
    namespaceUri: 'urn:ecotron:chamberctl',
    extraNamespacesFirst: ['urn:dummy:first'],
    profile: { profile: ecotron, folder: 'Chamber' },
    variables: [
      {
        id: 'Extra.Counter',
        browseName: 'Counter',
        type: 'UInt32',
        writable: false,
        initial: 7,
        description: 'a variable outside the profile',
        namespaceUri: 'urn:other:vendor',
      },
    ],
  });
});
afterAll(async () => {
  await server?.stop();
});

it('drafts a profile that parses, validates and lists every variable of the server', async () => {
  const yaml = await browseProfile(server.endpoint, { depth: 5 });
  const doc = parseDocument(yaml);
  expect(doc.errors).toEqual([]);
  const profile = OpcuaProfile.parse(doc.toJS());
  expect(lintProfile('draft.yaml', profile)).toEqual([]);
  expect(profile.kind).toBe('opcua');

  // Every variable the server serves (all profile tags + the extra one), none from namespace 0.
  const nodes = profile.tags.map((t) => t.node).sort();
  expect(nodes).toEqual([...ecotron.tags.map((t) => t.node), 'nsu=urn:other:vendor;s=Extra.Counter'].sort());

  const byNode = new Map(profile.tags.map((t) => [t.node, t]));
  for (const t of ecotron.tags) {
    const d = byNode.get(t.node)!;
    expect(d.type, t.name).toBe(t.type);
    expect(d.writable, t.name).toBe(t.writable);
    expect(d.description, t.name).toBe(t.description);
  }
  const at = byNode.get('nsu=urn:ecotron:chamberctl;s=Chamber.AirTemperature')!;
  expect(at).toMatchObject({ name: 'air_temperature', unit: 'degree_Celsius' });
  expect(byNode.get('nsu=urn:ecotron:chamberctl;s=Chamber.Setpoints.CO2')).toMatchObject({
    name: 'setpoints_co2',
    unit: 'umol mol-1',
    writable: true,
  });
  // A unit without a UNECE code is left to a human, with a TODO comment saying what the server said.
  expect(byNode.get('nsu=urn:ecotron:chamberctl;s=Chamber.PAR')?.unit).toBeUndefined();
  expect(yaml).toContain('# TODO unit: server says "umol m-2 s-1"');
  expect(yaml).toMatch(/^# Draft OPC UA profile from opc\.tcp:/);
});

it('respects the depth limit', async () => {
  const yaml = await browseProfile(server.endpoint, { depth: 2 });
  const profile = OpcuaProfile.parse(parse(yaml));
  // Depth 2 reaches Objects/Chamber/<variable> but not Objects/Chamber/Setpoints/<variable>.
  expect(profile.tags.some((t) => t.node.endsWith(';s=Chamber.AirTemperature'))).toBe(true);
  expect(profile.tags.some((t) => t.node.includes('Setpoints'))).toBe(false);
});

it('fails clearly when nothing listens', async () => {
  const port = await freePort();
  await expect(browseProfile(`opc.tcp://127.0.0.1:${port}`)).rejects.toThrow(
    `OPC UA connect to opc.tcp://127.0.0.1:${port} failed`,
  );
});

describe('--root: tag names from the path below a chosen node', () => {
  const REAL = 'urn:ecotron:chamberctl';
  const DECOY = 'urn:decoy:vendor';
  let rooted: RunningOpcuaServer;
  beforeAll(async () => {
    rooted = await startOpcuaServer({
      port: await freePort(),
      namespaceUri: REAL,
      variables: [
        // Look-alikes in another namespace, served first (so first in browse order), inside the chosen root…
        {
          id: 'D.Inner.AirTemperature',
          browseName: 'AirTemperature',
          type: 'Double',
          writable: false,
          initial: 0,
          namespaceUri: DECOY,
          folder: { path: 'Chamber7', namespaceUri: REAL },
        },
        {
          id: 'D.Inner.CO2',
          browseName: 'CO2',
          type: 'Double',
          writable: true,
          initial: 0,
          namespaceUri: DECOY,
          folder: { path: 'Chamber7.Setpoints', namespaceUri: REAL },
        },
        // … and a whole Objects/Chamber7 of their own.
        {
          id: 'D.AirTemperature',
          browseName: 'AirTemperature',
          type: 'Double',
          writable: false,
          initial: 0,
          namespaceUri: DECOY,
          folder: { path: 'Chamber7' },
        },
        {
          id: 'C7.AirTemperature',
          browseName: 'AirTemperature',
          type: 'Double',
          writable: false,
          initial: 20,
          description: 'air temperature',
          unit: 'degree_Celsius',
          folder: { path: 'Chamber7' },
        },
        {
          id: 'C7.Setpoints.CO2',
          browseName: 'CO2',
          type: 'Double',
          writable: true,
          initial: 420,
          description: 'CO2 setpoint',
          folder: { path: 'Chamber7.Setpoints' },
        },
        {
          id: 'C7.Status.Running',
          browseName: 'Running',
          type: 'Boolean',
          writable: false,
          initial: true,
          description: 'programme running',
          folder: { path: 'Chamber7.Status' },
        },
      ],
    });
  });
  afterAll(async () => {
    await rooted?.stop();
  });

  it('names tags from their browse path below the root; look-alikes in other namespaces never take the clean names', async () => {
    const yaml = await browseProfile(rooted.endpoint, { root: `nsu=${REAL};s=Chamber7` });
    const doc = parseDocument(yaml);
    expect(doc.errors).toEqual([]);
    const profile = OpcuaProfile.parse(doc.toJS());
    expect(lintProfile('draft.yaml', profile)).toEqual([]);
    const names = Object.fromEntries(profile.tags.map((t) => [t.node, t.name]));
    expect(names).toEqual({
      [`nsu=${REAL};s=C7.AirTemperature`]: 'air_temperature',
      [`nsu=${REAL};s=C7.Setpoints.CO2`]: 'setpoints_co2',
      [`nsu=${REAL};s=C7.Status.Running`]: 'status_running',
      [`nsu=${DECOY};s=D.Inner.AirTemperature`]: 'air_temperature_2',
      [`nsu=${DECOY};s=D.Inner.CO2`]: 'setpoints_co2_2',
    });
    // Objects/Chamber7 of the other namespace is outside the root: not drafted at all.
    expect(yaml).not.toContain('s=D.AirTemperature');
    // The node's browse path stays in a comment above each tag.
    expect(yaml).toMatch(
      /# Chamber7\/Setpoints\/CO2\n\s*- name: setpoints_co2\n\s*node: nsu=urn:ecotron:chamberctl;s=C7\.Setpoints\.CO2/,
    );
    expect(yaml).toMatch(/# Chamber7\/AirTemperature\n\s*- name: air_temperature\n/);
    expect(yaml).toContain(`(root nsu=${REAL};s=Chamber7)`);
    expect(profile.tags.find((t) => t.name === 'air_temperature')).toMatchObject({
      unit: 'degree_Celsius',
      description: 'air temperature',
      type: 'Double',
    });
    expect(profile.tags.find((t) => t.name === 'setpoints_co2')?.writable).toBe(true);
  });

  it('refuses a root whose namespace the server does not serve, or that has nothing below it', async () => {
    await expect(browseProfile(rooted.endpoint, { root: 'nsu=urn:nowhere;s=Chamber7' })).rejects.toThrow(
      '--root node nsu=urn:nowhere;s=Chamber7: namespace URI "urn:nowhere" is not served',
    );
    await expect(browseProfile(rooted.endpoint, { root: `nsu=${REAL};s=Chamber9` })).rejects.toThrow(
      `--root nsu=${REAL};s=Chamber9`,
    );
  });
});
