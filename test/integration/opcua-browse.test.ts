import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseDocument } from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../support/ports.ts';
import { OpcuaProfile } from '../../src/config/profile-schema.ts';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { lintProfile } from '../../src/config/profile-lint.ts';
import { startOpcuaServer, type RunningOpcuaServer } from '../../src/sim/opcua-server.ts';
import { browseProfile } from '../../src/drivers/opcua/browse.ts';

const ecotron = OpcuaProfile.parse(parse(readFileSync(join(PROJECT_ROOT, 'drivers/opcua/ecotron-chamberctl.yaml'), 'utf8')));
let server: RunningOpcuaServer;
beforeAll(async () => {
  server = await startOpcuaServer({
    port: await freePort(),
    namespaceUri: 'urn:ecotron:chamberctl',
    extraNamespacesFirst: ['urn:dummy:first'],
    profile: { profile: ecotron, folder: 'Chamber' },
    variables: [{ id: 'Extra.Counter', browseName: 'Counter', type: 'UInt32', writable: false, initial: 7, description: 'a variable outside the profile', namespaceUri: 'urn:other:vendor' }],
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
  expect(byNode.get('nsu=urn:ecotron:chamberctl;s=Chamber.Setpoints.CO2')).toMatchObject({ name: 'setpoints_co2', unit: 'umol mol-1', writable: true });
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
  await expect(browseProfile(`opc.tcp://127.0.0.1:${port}`)).rejects.toThrow(`OPC UA connect to opc.tcp://127.0.0.1:${port} failed`);
});
