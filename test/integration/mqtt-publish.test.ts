import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttConfig, SpoolConfig } from '../../src/config/instance-schema.ts';
import { createLogger } from '../../src/core/log.ts';
import type { Sample } from '../../src/core/sample.ts';
import { startEmbeddedBroker } from '../../src/bus/broker.ts';
import { connectMqtt, type MqttConnection } from '../../src/bus/mqtt-client.ts';
import { DataMessage, StatusMessage } from '../../src/bus/payload.ts';
import { Publisher, type SetTopic } from '../../src/bus/publisher.ts';
import { BrokerConfig } from '../../src/config/instance-schema.ts';
import { gatewayPrincipal, webPrincipal } from '../../src/bus/acl.ts';
import { PrincipalDirectory } from '../../src/bus/principals.ts';
import { Spool } from '../../src/bus/spool.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { eventually, freePort } from '../support/ports.ts';

const log = createLogger('test');
const dirs: string[] = [];
let broker: Mosquitto;

beforeAll(async () => {
  broker = await Mosquitto.start();
});
afterAll(async () => {
  await broker.close();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function gateway(
  url: string,
  opts: {
    id?: string;
    onSetRequest?: (where: SetTopic, payload: Buffer) => void;
    spool?: Partial<SpoolConfig>;
    env?: NodeJS.ProcessEnv;
    mqtt?: Partial<MqttConfig>;
  } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'octopus-pub-'));
  dirs.push(dir);
  const spool = Spool.open(dir, SpoolConfig.parse({ fsync: 'never', ...opts.spool }));
  return new Publisher({
    url,
    mqtt: MqttConfig.parse(opts.mqtt ?? {}),
    gatewayId: opts.id ?? 'gw-test',
    spool,
    log,
    env: opts.env,
    chambers: ['c1', 'c2'],
    onSetRequest: opts.onSetRequest,
  });
}

/** A separate MQTT client that records what it receives, as any consumer would. */
async function subscriber(url: string, filter: string, creds: { username?: string; password?: string } = {}) {
  const conn: MqttConnection = connectMqtt({ url, clientId: `sub-${Math.random().toString(16).slice(2)}`, ...creds });
  const got: Array<{ topic: string; body: unknown }> = [];
  conn.on('message', (topic, payload) => got.push({ topic, body: JSON.parse(payload.toString()) }));
  await eventually(() => conn.connected, 'subscriber connected');
  await conn.subscribe(filter, 1);
  return { conn, got };
}

const samples = (n: number, t0: number, tag = 'air_temperature'): Sample[] =>
  Array.from({ length: n }, (_, i) => ({ chamber: 'c1', tag, ts: t0 + i, value: 20 + i / 10, q: 'good' as const }));

describe('MQTT publishing (real Mosquitto)', () => {
  it('publishes samples on <prefix>/<chamber>/data in the contract format', async () => {
    const sub = await subscriber(broker.url, 'octopus/+/data');
    const pub = gateway(broker.url);
    await eventually(() => pub.stats().connected, 'publisher connected');
    pub.publishSamples('c1', [
      ...samples(3, 1_700_000_000_000),
      { chamber: 'c1', tag: 'co2', ts: 1_700_000_000_005, value: null, q: 'bad', reason: 'modbus timeout' },
    ]);
    const msg = await eventually(() => sub.got.find((m) => m.topic === 'octopus/c1/data'), 'data message');
    const parsed = DataMessage.parse(msg.body);
    expect(parsed).toEqual({
      v: 1,
      gw: 'gw-test',
      ep: pub.epoch,
      seq: 0,
      chamber: 'c1',
      samples: [
        { tag: 'air_temperature', ts: 1_700_000_000_000, value: 20, q: 'good' },
        { tag: 'air_temperature', ts: 1_700_000_000_001, value: 20.1, q: 'good' },
        { tag: 'air_temperature', ts: 1_700_000_000_002, value: 20.2, q: 'good' },
        { tag: 'co2', ts: 1_700_000_000_005, value: null, q: 'bad', reason: 'modbus timeout' },
      ],
    });
    await eventually(() => pub.spoolDepth().messages === 0, 'spool trimmed after PUBACK');
    expect(pub.stats().publishedSamples).toBe(4);
    await pub.close();
    await sub.conn.end();
  });

  it('retains chamber and gateway status so a late subscriber sees them', async () => {
    const pub = gateway(broker.url, { id: 'gw-retain' });
    await eventually(() => pub.stats().connected, 'publisher connected');
    const early = await subscriber(broker.url, 'octopus/c7/status');
    pub.setChamberStatus('c7', 'error', 'BadSessionIdInvalid');
    // the broker forwarded it, so it holds it as the topic's retained message
    await eventually(
      () => early.got.some((m) => (m.body as { state: string }).state === 'error'),
      'status reached the broker',
    );
    await early.conn.end();
    const late = await subscriber(broker.url, 'octopus/#');
    const chamber = await eventually(
      () => late.got.find((m) => m.topic === 'octopus/c7/status'),
      'retained chamber status',
    );
    expect(StatusMessage.parse(chamber.body)).toMatchObject({ state: 'error', reason: 'BadSessionIdInvalid' });
    const gw = await eventually(
      () => late.got.find((m) => m.topic === 'octopus/gateway/gw-retain/status'),
      'retained gateway status',
    );
    expect(StatusMessage.parse(gw.body).state).toBe('online');
    await pub.close();
    const last = () => late.got.filter((m) => m.topic === 'octopus/gateway/gw-retain/status').at(-1)!.body;
    await eventually(() => StatusMessage.parse(last()).state === 'offline', 'clean shutdown announces offline');
    expect(StatusMessage.parse(last())).toMatchObject({ state: 'offline', reason: 'shutdown' });
    await late.conn.end();
  });

  it('delivers the Last Will "offline" when the gateway connection dies without DISCONNECT', async () => {
    const watcher = await subscriber(broker.url, 'octopus/gateway/gw-will/status');
    const pub = gateway(broker.url, { id: 'gw-will' });
    await eventually(() => watcher.got.some((m) => (m.body as { state: string }).state === 'online'), 'online status');
    pub.crash();
    const will = await eventually(
      () => watcher.got.find((m) => (m.body as { state: string }).state === 'offline'),
      'Last Will',
      10_000,
    );
    expect(StatusMessage.parse(will.body)).toMatchObject({ state: 'offline', reason: 'connection lost' });
    await watcher.conn.end();
  });

  it("hands every message on its chambers' set topics to the gateway, with the sender from the topic", async () => {
    const requests: Array<{ where: SetTopic; body: string }> = [];
    const pub = gateway(broker.url, {
      id: 'gw-set',
      onSetRequest: (where, payload) => requests.push({ where, body: payload.toString() }),
    });
    await eventually(() => pub.stats().connected, 'publisher connected');
    const op = connectMqtt({ url: broker.url, clientId: 'operator' });
    await eventually(() => op.connected, 'operator connected');
    // the gateway subscribes to the set topics once connected: a probe request that comes
    // through shows the subscription is in place
    let probe = 0;
    await eventually(async () => {
      await op.publish('octopus/c1/set/probe/olga', JSON.stringify({ value: ++probe }), { qos: 1 });
      return requests.some((r) => r.where.tag === 'probe');
    }, 'setpoint subscription in place');
    await op.publish('octopus/c1/set/air_temperature_setpoint/olga', '{"value": 24.5, "id": "r1"}', { qos: 1 });
    await op.publish('octopus/c1/set/air_temperature_setpoint', '{"value": 1}', { qos: 1 }); // no sender level: not a request
    await op.publish('octopus/c9/set/air_temperature_setpoint/olga', '{"value": 1}', { qos: 1 }); // not this gateway's chamber
    await op.publish('octopus/c2/set/run/olga', 'not json', { qos: 1 });
    // one client's messages reach the gateway in the order published: once the last one
    // (c2 run) is handled, the ones before it have been handled (or ignored) too
    await eventually(() => requests.some((r) => r.where.chamber === 'c2'), 'the last set request');
    expect(requests.filter((r) => r.where.tag !== 'probe')).toEqual([
      {
        where: { chamber: 'c1', tag: 'air_temperature_setpoint', principal: 'olga' },
        body: '{"value": 24.5, "id": "r1"}',
      },
      { where: { chamber: 'c2', tag: 'run', principal: 'olga' }, body: 'not json' },
    ]);
    await op.end();
    await pub.close();
  });

  it('works the same with the embedded broker (authenticated principals)', async () => {
    const directory = new PrincipalDirectory('octopus');
    const gw = directory.addService(gatewayPrincipal('octopus', 'gw-test', ['c9']));
    const embedded = await startEmbeddedBroker({
      port: await freePort(),
      prefix: 'octopus',
      limits: BrokerConfig.parse({}),
      directory,
    });
    const reader = directory.addService(webPrincipal('octopus', 'reader', ['c9']));
    const sub = await subscriber(embedded.url, 'octopus/+/data', reader);
    const pub = gateway(embedded.url, {
      env: { U: gw.username, P: gw.password },
      mqtt: { username_env: 'U', password_env: 'P' },
    });
    await eventually(() => pub.stats().connected, 'publisher connected');
    pub.publishSamples(
      'c9',
      samples(10, 1_700_000_000_000).map((s) => ({ ...s, chamber: 'c9' })),
    );
    const msg = await eventually(() => sub.got.find((m) => m.topic === 'octopus/c9/data'), 'data via embedded broker');
    expect(DataMessage.parse(msg.body).samples).toHaveLength(10);
    await pub.close();
    await sub.conn.end();
    await embedded.close();
  });
});
