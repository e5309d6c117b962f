/**
 * The collector when things go wrong: InfluxDB refusing batches (400), throttling (429
 * with Retry-After), answering slowly, the collector itself restarted in the middle of
 * an outage, malformed payloads on the data topics, and several collectors sharing the
 * load. Real Mosquitto and VictoriaMetrics; faults injected by a proxy in between.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMqtt } from '../../src/bus/mqtt-client.ts';
import { cleanScratch, collector, scratch, syntheticGateway } from '../support/collector-fixtures.ts';
import { FaultProxy } from '../support/fault-proxy.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { eventually } from '../support/ports.ts';
import { Victoria } from '../support/victoria.ts';

let mq: Mosquitto;
let vm: Victoria;
let proxy: FaultProxy;

beforeAll(async () => {
  [mq, vm] = await Promise.all([Mosquitto.start({ persistence: true }), Victoria.start()]);
  proxy = await FaultProxy.start(vm.url);
});
afterAll(async () => {
  await Promise.all([mq?.close(), vm?.close(), proxy?.close()]);
  cleanScratch();
});

const influx = (url: string, measurement: string, extra: Record<string, unknown> = {}) => ({
  url,
  bucket: 'octopus',
  measurement,
  flush_interval_ms: 100,
  retry_min_ms: 100,
  retry_max_ms: 1000,
  ...extra,
});

async function pair(measurement: string, extra: Record<string, unknown> = {}, gwId = `gw-${measurement}`) {
  const { c, dataDir } = collector({ mqtt: { url: mq.url }, influx: influx(proxy.url, measurement, extra) }, mq.url);
  const gw = syntheticGateway(mq.url, gwId);
  await c.subscribed;
  await eventually(() => gw.pub.stats().connected, 'gateway connected');
  return { c, gw, dataDir };
}

describe('collector faults', () => {
  it('moves a batch refused with 400 to the dead-letter file with the reason, and carries on', async () => {
    const { c, gw, dataDir } = await pair('refused');
    proxy.script.push({ status: 400, body: '{"code":"invalid","message":"unable to parse line 1: bad timestamp"}' });
    gw.cycle(['a'], 10);
    await eventually(() => c.health().influx!.dead_lettered === 10, 'first batch dead-lettered');
    gw.cycle(['a'], 10);
    await eventually(async () => (await vm.count('refused_value')) === 10, 'the next batch written');
    const dead = readFileSync(join(dataDir, 'influx-dead-letter.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { status: number; reason: string; lines: number; body: string });
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ status: 400, lines: 10 });
    expect(dead[0]!.reason).toContain('HTTP 400');
    expect(dead[0]!.reason).toContain('bad timestamp');
    expect(dead[0]!.body.split('\n').filter(Boolean)).toHaveLength(10);
    expect(c.health().influx).toMatchObject({ state: 'ok', buffered: 0, written: 10, dead_lettered: 10 });
    await Promise.all([c.stop(), gw.pub.close()]);
  });

  it('waits as long as Retry-After says after a 429, then writes everything', async () => {
    const { c, gw } = await pair('throttled');
    proxy.seen.length = 0;
    proxy.script.push({ status: 429, headers: { 'retry-after': '2' }, body: '{"code":"too many requests"}' });
    gw.cycle(['a', 'b'], 10);
    await eventually(async () => (await vm.count('throttled_value')) === 20, 'written after the throttle', 20_000);
    const [refused, next] = proxy.seen.filter((s) => s.path.includes('/api/v2/write'));
    expect(refused!.status).toBe(429);
    expect(next!.at - refused!.at).toBeGreaterThanOrEqual(1900);
    expect(c.health().influx).toMatchObject({ dead_lettered: 0, retries: 1 });
    await Promise.all([c.stop(), gw.pub.close()]);
  });

  it('buffers on disk behind a slow server, keeping memory bounded, and catches up', async () => {
    const { c, gw } = await pair('slow', { batch_lines: 2000 });
    proxy.delayMs = 1500;
    const rss0 = process.memoryUsage().rss;
    for (let i = 0; i < 60; i++) gw.cycle(['a', 'b', 'c', 'd'], 250); // 60,000 samples in one burst
    await eventually(() => c.health().influx!.received === gw.sent, 'everything accepted', 30_000);
    const h = c.health().influx!;
    expect(h.buffered).toBeGreaterThan(gw.sent / 2);
    expect(h.buffered_bytes).toBeGreaterThan(2_000_000);
    // Two batches of 2000 lines in flight at most: memory does not follow the backlog.
    expect(process.memoryUsage().rss - rss0).toBeLessThan(150 * 1024 * 1024);
    proxy.delayMs = 0;
    await eventually(async () => (await vm.count('slow_value')) === gw.sent, `all ${gw.sent} samples written`, 40_000);
    await Promise.all([c.stop(), gw.pub.close()]);
  }, 90_000);

  it('keeps its disk buffer across a restart in the middle of an outage', async () => {
    const dataDir = scratch('octopus-collector-restart-');
    const id = { collector: { client_id: 'restart-test' } };
    const first = collector(
      { ...id, mqtt: { url: mq.url }, influx: influx(proxy.url, 'restarted') },
      mq.url,
      dataDir,
    ).c;
    const gw = syntheticGateway(mq.url, 'gw-restart');
    await first.subscribed;
    await eventually(() => gw.pub.stats().connected, 'gateway connected');
    for (let i = 0; i < 5; i++) proxy.script.push({ status: 503, body: 'down for maintenance' });
    proxy.delayMs = 0;
    for (let i = 0; i < 5; i++) gw.cycle(['a'], 20);
    await eventually(
      () => first.health().influx!.received === 100 && first.health().influx!.state === 'retrying',
      'buffered while InfluxDB answers 503',
    );
    await first.stop();
    proxy.script.length = 0;
    const second = collector(
      { ...id, mqtt: { url: mq.url }, influx: influx(proxy.url, 'restarted') },
      mq.url,
      dataDir,
    ).c;
    for (let i = 0; i < 5; i++) gw.cycle(['a'], 20);
    await eventually(
      async () => (await vm.count('restarted_value')) === 200,
      'what the first collector buffered, and the rest',
    );
    await Promise.all([second.stop(), gw.pub.close()]);
  });

  it('counts and logs malformed payloads without stopping', async () => {
    const { c, gw } = await pair('malformed');
    const raw = connectMqtt({ url: mq.url, clientId: 'malformed-sender' });
    await eventually(() => raw.connected, 'sender connected');
    await raw.publish('octopus/a/data', 'not json {', { qos: 1 });
    await raw.publish(
      'octopus/a/data',
      JSON.stringify({ v: 1, gw: 'x', seq: 1, chamber: 'a', samples: [{ tag: 't', ts: -5, value: 1, q: 'good' }] }),
      { qos: 1 },
    );
    await raw.publish('octopus/a/data', JSON.stringify({ v: 1, gw: 'x', seq: 2, chamber: 'zzz', samples: [] }), {
      qos: 1,
    });
    gw.cycle(['a'], 10);
    await eventually(async () => (await vm.count('malformed_value')) === 10, 'the valid message written');
    expect(c.health().subscriber).toMatchObject({ invalid: 3, messages: 1 });
    await Promise.all([c.stop(), gw.pub.close(), raw.end()]);
  });

  it('splits the load between two collectors of one shared-subscription group, and InfluxDB gets everything', async () => {
    const doc = { mqtt: { url: mq.url }, collector: { group: 'ingest' }, influx: influx(vm.url, 'shared') };
    const one = collector(doc, mq.url).c;
    const two = collector(doc, mq.url).c;
    await Promise.all([one.subscribed, two.subscribed]);
    const gw = syntheticGateway(mq.url, 'gw-shared');
    await eventually(() => gw.pub.stats().connected, 'gateway connected');
    for (let i = 0; i < 40; i++) gw.cycle(['a', 'b'], 10);
    await eventually(async () => (await vm.count('shared_value')) === gw.sent, `all ${gw.sent} samples written`);
    const [m1, m2] = [one.health().subscriber.messages, two.health().subscriber.messages];
    expect(m1 + m2).toBe(80);
    expect(m1).toBeGreaterThan(0);
    expect(m2).toBeGreaterThan(0);
    expect(one.health().subscriber.subscription).toBe('$share/ingest/octopus/+/data');
    await Promise.all([one.stop(), two.stop(), gw.pub.close()]);
  });
});
