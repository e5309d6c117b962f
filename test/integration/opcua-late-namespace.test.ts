/**
 * A PLC after a program download: the namespace (and then a node) the profile names
 * appear while Octopus is already connected. The driver reports the missing tags (status
 * reason, health `missingTags`, one bad sample each) and picks them up by looking them up
 * again every `resolve_interval_ms` on the same session — no reconnect. (The server
 * adds its namespace 15 s after accepting connections; here it does so once the driver has
 * reported the tags missing, which proves the same without depending on timing.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, freePort } from '../support/ports.ts';
import { makeDriver, TEST_NS, testProfile } from '../support/opcua-fixtures.ts';
import { startOpcuaServer, type RunningOpcuaServer, type SimVariable } from '../../src/sim/opcua-server.ts';
import { OpcuaProfile } from '../../src/config/profile-schema.ts';
import { composeHealth } from '../../src/gateway/health.ts';
import type { Driver } from '../../src/drivers/types.ts';

const RUNTIME_NS = 'urn:octopus:plc-runtime';
const profile = OpcuaProfile.parse({
  ...testProfile,
  tags: [
    ...testProfile.tags,
    {
      name: 'cycle_counter',
      node: `nsu=${RUNTIME_NS};s=Runtime.Cycles`,
      type: 'UInt32',
      description: 'PLC runtime cycle counter',
    },
  ],
});
/** The test profile's four variables, as the downloaded program serves them. */
const program: SimVariable[] = [
  {
    id: 'Chamber.AirTemperature',
    browseName: 'AirTemperature',
    type: 'Double',
    writable: false,
    initial: 21.5,
    namespaceUri: TEST_NS,
  },
  { id: 'Chamber.Co2Raw', browseName: 'Co2Raw', type: 'Int16', writable: false, initial: 780, namespaceUri: TEST_NS },
  {
    id: 'Chamber.DoorOpen',
    browseName: 'DoorOpen',
    type: 'Boolean',
    writable: false,
    initial: true,
    namespaceUri: TEST_NS,
  },
  {
    id: 'Chamber.AirTemperatureSetpoint',
    browseName: 'AirTemperatureSetpoint',
    type: 'Float',
    writable: true,
    initial: 22,
    namespaceUri: TEST_NS,
  },
];
const MISSING = ['air_temperature', 'co2_raw', 'temperature_setpoint', 'door_open'];

let server: RunningOpcuaServer | undefined;
let driver: Driver | undefined;
afterEach(async () => {
  await driver?.stop();
  await server?.stop();
  driver = server = undefined;
});

const healthOf = (d: Driver) =>
  composeHealth({
    gateway: 'gw',
    version: 'test',
    startedAt: Date.now(),
    drivers: [d.health()],
    broker: { url: 'mqtt://x', embedded: true, connected: true, reconnects: 0 },
    spool: { messages: 0, bytes: 0, samples: 0, droppedSamples: 0, publishedMessages: 0, publishedSamples: 0 },
  });

describe.each(['subscription', 'poll'] as const)(
  'OPC UA %s mode: a namespace and a node that appear after connect',
  (mode) => {
    it('are reported missing, then delivered on the same session', { timeout: 120_000 }, async () => {
      server = await startOpcuaServer({
        port: await freePort(),
        namespaceUri: RUNTIME_NS,
        variables: [{ id: 'Runtime.Cycles', browseName: 'Cycles', type: 'UInt32', writable: false, initial: 1 }],
      });
      const made = makeDriver(server.endpoint, { mode, resolve_interval_ms: 1000 }, profile);
      driver = made.driver;
      const sink = made.sink;
      await driver.start();

      // Connected, one tag readable, the program's four reported missing (not silently dropped).
      expect(sink.state).toBe('online');
      expect(sink.states.at(-1)?.reason).toMatch(
        /^4 of 5 tags unavailable: air_temperature: node nsu=urn:octopus:test;s=Chamber\.AirTemperature: namespace URI "urn:octopus:test" is not served/,
      );
      expect(driver.health().missingTags).toEqual(MISSING);
      expect(healthOf(driver).problems).toEqual([
        `chamber c1 (opcua ${server.endpoint}): 4 tags missing on the server: ${MISSING.join(', ')}`,
      ]);
      for (const tag of MISSING) expect(sink.latest(tag)).toMatchObject({ q: 'bad', value: null });
      await eventually(
        () => sink.all().some((s) => s.tag === 'cycle_counter' && s.value === 1 && s.q === 'good'),
        'the runtime tag meanwhile',
      );
      const sessions = server.sessions();
      expect(sessions).toEqual({ current: 1, created: 1 });

      // The program download: its namespace appears with three variables; the fourth later.
      server.addVariables(program.filter((v) => v.id !== 'Chamber.DoorOpen'));
      await eventually(
        () => sink.all().some((s) => s.tag === 'air_temperature' && s.value === 21.5 && s.q === 'good'),
        'air_temperature from the new namespace',
        30_000,
      );
      expect(sink.latest('co2_raw')).toMatchObject({ value: 780 * 0.5 + 10, q: 'good' });
      await eventually(() => driver!.health().missingTags?.join() === 'door_open', 'only door_open missing');
      expect(sink.states.at(-1)?.reason).toMatch(/^1 of 5 tags unavailable: door_open: /);

      server.addVariables(program.filter((v) => v.id === 'Chamber.DoorOpen'));
      await eventually(
        () => sink.all().some((s) => s.tag === 'door_open' && s.value === true && s.q === 'good'),
        'door_open once its node exists',
        30_000,
      );
      await eventually(() => sink.states.at(-1)?.reason === undefined, 'status without missing tags');
      expect(sink.states.at(-1)).toEqual({ state: 'online', reason: undefined });
      expect(driver.health().missingTags).toBeUndefined();
      expect(healthOf(driver).status).toBe('ok');

      // Delivered without reconnecting: same session, no new one on the server.
      expect(driver.health().reconnects).toBe(0);
      expect(server.sessions()).toEqual(sessions);
      expect(sink.states.map((s) => s.state)).not.toContain('offline');
      server.setValue('Chamber.AirTemperature', 23.25);
      await eventually(
        () => sink.all().some((s) => s.tag === 'air_temperature' && s.value === 23.25),
        'later changes too',
      );
      if (mode === 'subscription') expect(driver.health().monitoredItems).toBe(5);
      else expect(driver.health().requestsPerCycle).toBe(1);
      // Writes reach the late node by its resolved id.
      await driver.write('temperature_setpoint', 24.5);
      await eventually(
        () => sink.all().some((s) => s.tag === 'temperature_setpoint' && s.value === 24.5),
        'the written setpoint read back',
      );
    });
  },
);
