/**
 * The InfluxDB schema the collector writes serves the dashboards' InfluxQL: written
 * through the collector's own sink (v1 write API) into a real influxd 1.x, then queried
 * with the statements docs/influxdb.md gives, with Grafana's macros expanded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanScratch, collector, syntheticGateway } from '../support/collector-fixtures.ts';
import { Influxd } from '../support/influxd.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { eventually } from '../support/ports.ts';
import { connectMqtt } from '../../src/bus/mqtt-client.ts';

let mq: Mosquitto;
let influxd: Influxd;
const DB = 'chambers';

beforeAll(async () => {
  [mq, influxd] = await Promise.all([Mosquitto.start(), Influxd.start()]);
  await influxd.query('', `CREATE DATABASE ${DB}`);
});
afterAll(async () => {
  await Promise.all([mq?.close(), influxd?.close()]);
  cleanScratch();
});

describe('InfluxQL on the collector schema (influxd 1.x)', () => {
  it('answers the dashboard queries: per chamber, across chambers, latest value, bad periods', async () => {
    const { c } = collector(
      { mqtt: { url: mq.url }, influx: { url: influxd.url, api: 'v1', database: DB, flush_interval_ms: 100 } },
      mq.url,
    );
    await c.subscribed;
    const gw = syntheticGateway(mq.url, 'gw-ql');
    await eventually(() => gw.pub.stats().connected, 'gateway connected');
    for (let i = 0; i < 120; i++) gw.cycle(['ch01', 'ch02'], 3); // two minutes of 1 Hz data, an hour ago
    const raw = connectMqtt({ url: mq.url, clientId: 'ql-raw' });
    await eventually(() => raw.connected, 'raw sender');
    const ts = Date.now() - 60_000;
    const samples = [
      { tag: 'co2', ts, value: null, q: 'bad', reason: 'BadSensorFailure' },
      { tag: 'door_open', ts, value: true, q: 'good' },
      { tag: 'serial_number', ts, value: 'PL-GC2, "A"', q: 'good' },
    ];
    await raw.publish('octopus/ch01/data', JSON.stringify({ v: 1, gw: 'raw', seq: 1, chamber: 'ch01', samples }), {
      qos: 1,
    });
    await eventually(() => c.health().influx!.written === gw.sent + 3, 'everything written', 20_000);

    const from = `time >= ${Date.now() - 3 * 3_600_000}ms`; // $timeFilter
    const [perChamber] = await influxd.query(
      DB,
      `SELECT mean("value") FROM "climate" WHERE "chamber" = 'ch01' AND "tag" = 't1' AND "q" != 'bad' AND ${from} GROUP BY time(1m) fill(none)`,
    );
    expect(perChamber).toHaveLength(1);
    const means = perChamber![0]!.values.map((v) => v[1] as number);
    expect(means.length).toBeGreaterThanOrEqual(2);
    // value = cycle + 0.01, one cycle per second: each minute's mean is above the last
    for (let i = 1; i < means.length; i++) expect(means[i]!).toBeGreaterThan(means[i - 1]!);
    const [count] = await influxd.query(
      DB,
      `SELECT count("value") FROM "climate" WHERE "chamber" = 'ch01' AND "tag" = 't1' AND ${from}`,
    );
    expect(count![0]!.values[0]![1]).toBe(120);

    const [across] = await influxd.query(
      DB,
      `SELECT mean("value") FROM "climate" WHERE "tag" = 't2' AND "chamber" =~ /^(ch01|ch02)$/ AND ${from} GROUP BY time(10m), "chamber" fill(none)`,
    );
    expect(across!.map((s) => s.tags?.chamber).sort()).toEqual(['ch01', 'ch02']);

    const [latest] = await influxd.query(
      DB,
      `SELECT last("value") FROM "climate" WHERE "tag" = 'door_open' AND time > now() - 5m GROUP BY "chamber"`,
    );
    expect(latest![0]).toMatchObject({ tags: { chamber: 'ch01' } });
    expect(latest![0]!.values[0]![1]).toBe(1);

    const [bad] = await influxd.query(
      DB,
      `SELECT count("reason") FROM "climate" WHERE "q" = 'bad' AND time > now() - 5m GROUP BY "chamber", "tag"`,
    );
    expect(bad![0]).toMatchObject({ tags: { chamber: 'ch01', tag: 'co2' } });
    expect(bad![0]!.values[0]![1]).toBe(1);

    const [text] = await influxd.query(DB, `SELECT last("text") FROM "climate" WHERE "tag" = 'serial_number'`);
    expect(text![0]!.values[0]![1]).toBe('PL-GC2, "A"');

    const [series] = await influxd.query(DB, 'SHOW SERIES CARDINALITY FROM "climate"');
    expect(series![0]!.values[0]![0]).toBe(2 * 3 + 3); // chambers × tags, plus the three raw tags of ch01
    await Promise.all([c.stop(), gw.pub.close(), raw.end()]);
  });
});
