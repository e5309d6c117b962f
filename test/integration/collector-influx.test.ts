/**
 * The collector against real servers: Mosquitto in front, VictoriaMetrics (InfluxDB line
 * protocol on /api/v2/write) behind. Counts are exact: every sample published arrives
 * once, through outages of the database and restarts of the collector.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanScratch, collector, syntheticGateway } from '../support/collector-fixtures.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { eventually } from '../support/ports.ts';
import { Victoria } from '../support/victoria.ts';

let mq: Mosquitto;
let vm: Victoria;

beforeAll(async () => {
  [mq, vm] = await Promise.all([Mosquitto.start({ persistence: true }), Victoria.start()]);
});
afterAll(async () => {
  await Promise.all([mq?.close(), vm?.close()]);
  cleanScratch();
});

const influx = (measurement: string, extra: Record<string, unknown> = {}) => ({
  url: vm.url,
  bucket: 'octopus',
  measurement,
  flush_interval_ms: 100,
  retry_min_ms: 100,
  retry_max_ms: 1000,
  ...extra,
});

describe('collector → VictoriaMetrics', () => {
  it('writes every sample with chamber, tag and quality as labels, values and times unchanged', async () => {
    const { c } = collector({ mqtt: { url: mq.url }, influx: influx('basic') }, mq.url);
    const gw = syntheticGateway(mq.url, 'gw-basic');
    await c.subscribed;
    await eventually(() => gw.pub.stats().connected, 'gateway connected');
    const sent = [...gw.cycle(['a', 'b'], 5), ...gw.cycle(['a', 'b'], 5)];
    await eventually(
      async () => (await vm.count('basic_value')) === sent.length,
      `${sent.length} samples in VictoriaMetrics`,
    );
    const series = await vm.export('basic_value');
    const got = new Map(
      series.flatMap((s) =>
        s.timestamps.map(
          (ts, i) => [`${s.metric.chamber}/${s.metric.tag}/${ts}`, { v: s.values[i], q: s.metric.q }] as const,
        ),
      ),
    );
    for (const s of sent) expect(got.get(`${s.chamber}/${s.tag}/${s.ts}`)).toEqual({ v: s.value, q: 'good' });
    expect(c.health().influx).toMatchObject({
      state: 'ok',
      received: sent.length,
      written: sent.length,
      buffered: 0,
      dead_lettered: 0,
    });
    await Promise.all([c.stop(), gw.pub.close()]);
  });

  it('loses nothing while VictoriaMetrics is frozen and then killed, and sends the backlog after it returns', async () => {
    const { c } = collector({ mqtt: { url: mq.url }, influx: influx('outage', { timeout_ms: 500 }) }, mq.url);
    const gw = syntheticGateway(mq.url, 'gw-outage');
    await c.subscribed;
    await eventually(() => gw.pub.stats().connected, 'gateway connected');
    gw.cycle(['a'], 20);
    await eventually(async () => (await vm.count('outage_value')) === 20, 'first cycle written');
    // VictoriaMetrics itself keeps acknowledged rows in memory for a moment and a SIGKILL
    // loses them; a clean restart makes the first cycle durable on its side.
    await vm.restart();
    vm.signal('SIGSTOP');
    for (let i = 0; i < 10; i++) {
      gw.cycle(['a', 'b'], 20);
      await new Promise((r) => setTimeout(r, 100));
    }
    await eventually(() => c.health().influx?.state === 'retrying', 'sink retrying while the server is frozen');
    await vm.stop('SIGKILL');
    for (let i = 0; i < 10; i++) {
      gw.cycle(['a', 'b'], 20);
      await new Promise((r) => setTimeout(r, 50));
    }
    await eventually(() => c.health().influx!.received === gw.sent, 'every sample buffered');
    expect(c.health().influx!.buffered).toBeGreaterThan(0);
    await vm.restart();
    await eventually(
      async () => (await vm.count('outage_value')) === gw.sent,
      `all ${gw.sent} samples after the restart`,
      30_000,
    );
    await eventually(() => c.health().influx!.buffered === 0, 'buffer drained');
    await Promise.all([c.stop(), gw.pub.close()]);
  });
});
