import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, freePort } from '../support/ports.ts';
import { makeDriver, TEST_NS, testProfile, type RecordingSink } from '../support/opcua-fixtures.ts';
import { startOpcuaServer, type RunningOpcuaServer } from '../../src/sim/opcua-server.ts';
import { OpcuaProfile } from '../../src/config/profile-schema.ts';
import type { Driver } from '../../src/drivers/types.ts';
import { defaultClientPkiDir } from '../../src/drivers/opcua/client.ts';
import { join } from 'node:path';

const EXTRA = ['urn:dummy:first', 'urn:dummy:second', 'urn:dummy:third'];
let plain: RunningOpcuaServer;
let shifted: RunningOpcuaServer;
const drivers: Driver[] = [];

function track(d: { driver: Driver; sink: RecordingSink }) {
  drivers.push(d.driver);
  return d;
}

beforeAll(async () => {
  const profile = { profile: testProfile, folder: 'Chamber' };
  plain = await startOpcuaServer({ port: await freePort(), namespaceUri: TEST_NS, profile });
  shifted = await startOpcuaServer({
    port: await freePort(),
    namespaceUri: TEST_NS,
    profile,
    extraNamespacesFirst: EXTRA,
  });
});
afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.stop()));
});
afterAll(async () => {
  await plain?.stop();
  await shifted?.stop();
});

describe('OPC UA driver, subscription mode', () => {
  it('delivers values with their SourceTimestamp, scaled, in batches, and reports online', async () => {
    const { driver, sink } = track(makeDriver(plain.endpoint));
    await driver.start();
    expect(sink.state).toBe('online');
    // The initial values of all four tags arrive together in one sink call, not one by one,
    // each exactly as the server holds it (co2_raw 0 raw → 0 * 0.5 + 10).
    const initial = await eventually(() => sink.batches.find((b) => b.length > 0), 'the initial values');
    expect(initial.map(({ tag, value, q }) => ({ tag, value, q })).sort((a, b) => a.tag.localeCompare(b.tag))).toEqual([
      { tag: 'air_temperature', value: 0, q: 'good' },
      { tag: 'co2_raw', value: 10, q: 'good' },
      { tag: 'door_open', value: false, q: 'good' },
      { tag: 'temperature_setpoint', value: 5, q: 'good' },
    ]);
    const ts = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    plain.setValue('Chamber.AirTemperature', 21.25, { sourceTimestamp: ts });
    plain.setValue('Chamber.Co2Raw', 800, { sourceTimestamp: ts });
    const t = await eventually(
      () => sink.all().find((s) => s.tag === 'air_temperature' && s.value === 21.25),
      'air_temperature = 21.25',
    );
    expect(t).toEqual({ chamber: 'c1', tag: 'air_temperature', ts, value: 21.25, q: 'good' });
    const co2 = await eventually(() => sink.all().find((s) => s.tag === 'co2_raw' && s.ts === ts), 'co2_raw at ts');
    expect(co2.value).toBe(800 * 0.5 + 10);
    expect(driver.health()).toMatchObject({ state: 'online', monitoredItems: 4, reconnects: 0 });
  });

  it('maps Bad and Uncertain status codes to quality, with the status name as reason', async () => {
    const { driver, sink } = track(makeDriver(plain.endpoint));
    await driver.start();
    plain.setValue('Chamber.AirTemperature', 99, { statusCode: 'BadSensorFailure' });
    const bad = await eventually(
      () => sink.all().find((s) => s.tag === 'air_temperature' && s.q === 'bad'),
      'a bad sample',
    );
    expect(bad.value).toBeNull();
    expect(bad.reason).toContain('BadSensorFailure');
    plain.setValue('Chamber.AirTemperature', 19.5, { statusCode: 'UncertainLastUsableValue' });
    const unc = await eventually(
      () => sink.all().find((s) => s.tag === 'air_temperature' && s.q === 'uncertain'),
      'an uncertain sample',
    );
    expect(unc).toMatchObject({ value: 19.5, reason: 'UncertainLastUsableValue' });
    expect(driver.health().badSamples).toBeGreaterThanOrEqual(1);
  });

  it('resolves nsu= node ids on a server whose namespace index differs', async () => {
    expect(shifted.namespaceIndex).toBe(plain.namespaceIndex + EXTRA.length);
    const { driver, sink } = track(makeDriver(shifted.endpoint));
    await driver.start();
    shifted.setValue('Chamber.AirTemperature', 23.5);
    await eventually(
      () => sink.all().find((s) => s.tag === 'air_temperature' && s.value === 23.5 && s.q === 'good'),
      'value from the shifted namespace',
    );
    expect(sink.all().filter((s) => s.q === 'bad')).toEqual([]);
  });

  it('gives a bad sample naming the node for an unknown namespace URI or node id', async () => {
    const profile = OpcuaProfile.parse({
      ...testProfile,
      tags: [
        testProfile.tags[0],
        {
          name: 'ghost_ns',
          node: 'nsu=urn:nowhere;s=Chamber.AirTemperature',
          type: 'Double',
          description: 'unknown namespace',
        },
        { name: 'ghost_node', node: `nsu=${TEST_NS};s=Chamber.Missing`, type: 'Double', description: 'unknown node' },
      ],
    });
    const { driver, sink } = track(makeDriver(plain.endpoint, {}, profile));
    await driver.start();
    const ns = await eventually(() => sink.latest('ghost_ns'), 'ghost_ns sample');
    expect(ns).toMatchObject({ q: 'bad', value: null });
    expect(ns.reason).toContain('namespace URI "urn:nowhere" is not served');
    const node = await eventually(() => sink.latest('ghost_node'), 'ghost_node sample');
    expect(node.q).toBe('bad');
    expect(node.reason).toContain('Chamber.Missing');
    expect(node.reason).toContain('BadNodeIdUnknown');
    expect(sink.state).toBe('online');
    expect(sink.states.at(-1)?.reason).toContain('2 of 3 tags unavailable');
    expect(driver.health().monitoredItems).toBe(1);
  });
});

describe('OPC UA driver, poll mode', () => {
  it('reads every tag each interval', async () => {
    const { driver, sink } = track(makeDriver(shifted.endpoint, { mode: 'poll' }));
    await driver.start();
    shifted.setValue('Chamber.Co2Raw', 1000);
    const s = await eventually(
      () => sink.all().find((x) => x.tag === 'co2_raw' && x.value === 510),
      'polled co2_raw = 510',
    );
    expect(s.q).toBe('good');
    const before = sink.batches.length;
    await eventually(() => sink.batches.length >= before + 2, 'two more poll cycles');
    expect(
      sink.batches
        .at(-1)
        ?.map((x) => x.tag)
        .sort(),
    ).toEqual(['air_temperature', 'co2_raw', 'door_open', 'temperature_setpoint']);
    expect(driver.health()).toMatchObject({ monitoredItems: 0, requestsPerCycle: 1 });
  });
});

describe('OPC UA driver, writes', () => {
  it('writes a writable tag to the server, and refuses read-only, out-of-range and mistyped values', async () => {
    const writes: Array<{ id: string; value: unknown }> = [];
    plain.onWrite((e) => writes.push(e));
    const { driver, sink } = track(makeDriver(plain.endpoint));
    await driver.start();
    await driver.write('temperature_setpoint', 24.5);
    expect(writes).toContainEqual({ id: 'Chamber.AirTemperatureSetpoint', value: 24.5 });
    await eventually(
      () => sink.all().find((s) => s.tag === 'temperature_setpoint' && s.value === 24.5),
      'written setpoint read back',
    );
    await expect(driver.write('air_temperature', 20)).rejects.toThrow(/tag "air_temperature" .* is not writable/);
    await expect(driver.write('temperature_setpoint', 80)).rejects.toThrow('80 is above max 40');
    await expect(driver.write('temperature_setpoint', true)).rejects.toThrow('takes a finite number, got true');
    await expect(driver.write('nope', 1)).rejects.toThrow('no tag "nope"');
    expect(writes).toHaveLength(1);
  });

  it('reports the server status when the server refuses a write', async () => {
    const profile = OpcuaProfile.parse({
      ...testProfile,
      tags: testProfile.tags.map((t) => (t.name === 'door_open' ? { ...t, writable: true } : t)),
    });
    const { driver } = track(makeDriver(plain.endpoint, {}, profile));
    await driver.start();
    await expect(driver.write('door_open', true)).rejects.toThrow(/refused by the server: BadNotWritable/);
  });
});

describe('OPC UA driver, connection and security', () => {
  it('signs and encrypts, logs in with a username and password read from the environment', async () => {
    const secure = await startOpcuaServer({
      port: await freePort(),
      namespaceUri: TEST_NS,
      profile: { profile: testProfile, folder: 'Chamber' },
      users: [{ username: 'operator', password: 's3cret' }],
    });
    try {
      process.env.TEST_OPCUA_USER = 'operator';
      process.env.TEST_OPCUA_PASSWORD = 's3cret';
      const auth = { type: 'username', username_env: 'TEST_OPCUA_USER', password_env: 'TEST_OPCUA_PASSWORD' };
      const { driver, sink } = track(
        makeDriver(secure.endpoint, {
          security_mode: 'SignAndEncrypt',
          security_policy: 'Basic256Sha256',
          server_trust: 'tofu',
          auth,
        }),
      );
      await driver.start();
      expect(sink.state).toBe('online');
      secure.setValue('Chamber.AirTemperature', 17.25);
      await eventually(
        () => sink.all().find((s) => s.tag === 'air_temperature' && s.value === 17.25),
        'value over the encrypted channel',
      );

      process.env.TEST_OPCUA_PASSWORD = 'wrong';
      const refused = track(makeDriver(secure.endpoint, { auth }));
      await refused.driver.start();
      expect(refused.sink.state).toBe('offline');
      expect(refused.sink.states.at(-1)?.reason).toMatch(
        /BadUserAccessDenied|BadIdentityTokenRejected|BadIdentityTokenInvalid/,
      );
    } finally {
      await Promise.all(drivers.splice(0).map((d) => d.stop()));
      await secure.stop();
    }
  });

  it('logs in with an X.509 user certificate', async () => {
    const secure = await startOpcuaServer({
      port: await freePort(),
      namespaceUri: TEST_NS,
      profile: { profile: testProfile, folder: 'Chamber' },
      users: [],
    });
    try {
      // Any connection made the client's own certificate; it serves as the user certificate here.
      const own = join(defaultClientPkiDir(), 'own');
      const auth = {
        type: 'certificate',
        cert_file: join(own, 'certs/client_certificate.pem'),
        key_file: join(own, 'private/private_key.pem'),
      };
      const anonymous = track(makeDriver(secure.endpoint));
      await anonymous.driver.start();
      expect(anonymous.sink.states.at(-1)?.reason).toContain('Cannot find ANONYMOUS user token policy');
      const { driver, sink } = track(
        makeDriver(secure.endpoint, {
          security_mode: 'Sign',
          security_policy: 'Basic256Sha256',
          server_trust: 'tofu',
          auth,
        }),
      );
      await driver.start();
      expect(sink.state).toBe('online');
      secure.setValue('Chamber.AirTemperature', 12.5);
      await eventually(
        () => sink.all().find((s) => s.tag === 'air_temperature' && s.value === 12.5),
        'value with an X.509 user',
      );

      const broken = track(
        makeDriver(secure.endpoint, { auth: { ...auth, key_file: join(own, 'certs/client_certificate.pem') } }),
      );
      await broken.driver.start();
      expect(broken.sink.states.at(-1)).toMatchObject({ state: 'error' });
      expect(broken.sink.states.at(-1)?.reason).toContain('client_certificate.pem is not a usable PEM private key');
    } finally {
      await Promise.all(drivers.splice(0).map((d) => d.stop()));
      await secure.stop();
    }
  });

  it('reports error, naming the variable, when a credential variable is not set', async () => {
    delete process.env.TEST_OPCUA_MISSING;
    const { driver, sink } = track(
      makeDriver(plain.endpoint, {
        auth: { type: 'username', username_env: 'TEST_OPCUA_MISSING', password_env: 'TEST_OPCUA_MISSING' },
      }),
    );
    await driver.start();
    expect(sink.states.at(-1)).toEqual({
      state: 'error',
      reason: 'OPC UA auth: environment variable TEST_OPCUA_MISSING (username) is not set',
    });
  });

  it('starts against an endpoint where nothing listens: offline with the reason, no throw', async () => {
    const port = await freePort();
    const { driver, sink } = track(makeDriver(`opc.tcp://127.0.0.1:${port}`));
    await driver.start();
    expect(sink.state).toBe('offline');
    expect(sink.states.at(-1)?.reason).toContain(`OPC UA connect to opc.tcp://127.0.0.1:${port} failed`);
    expect(driver.health()).toMatchObject({ state: 'offline', samples: 0, monitoredItems: 0 });
    await expect(driver.write('temperature_setpoint', 20)).rejects.toThrow(
      `chamber c1: cannot write "temperature_setpoint": not connected to opc.tcp://127.0.0.1:${port}`,
    );
  });
});
