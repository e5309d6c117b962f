/**
 * The whole acquisition path as deployed: `octopus start` (simulated OPC UA and Modbus
 * chambers, gateway, collector) → real Mosquitto → VictoriaMetrics. Every numeric sample
 * the gateway published is queried back with the same chamber, tag, time and value, also
 * across an InfluxDB outage of OCTOPUS_TEST_INFLUX_OUTAGE_MS (default 5 minutes).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthReport } from '../../src/core/health.ts';
import { connectMqtt, type MqttConnection } from '../../src/bus/mqtt-client.ts';
import { DataMessage } from '../../src/bus/payload.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { simulatedChambers, startOctopus, type RunningOctopus } from '../support/cli.ts';
import { eventually, freePort } from '../support/ports.ts';
import { Victoria } from '../support/victoria.ts';

const OUTAGE_MS = Number(process.env.OCTOPUS_TEST_INFLUX_OUTAGE_MS ?? 300_000);
let mq: Mosquitto;
let vm: Victoria;
let octopus: RunningOctopus;
let observer: MqttConnection;
let httpPort: number;
/** chamber/tag/ts → value, for every numeric or boolean sample published. */
const published = new Map<string, number>();

beforeAll(async () => {
  [mq, vm] = await Promise.all([Mosquitto.start({ persistence: true }), Victoria.start()]);
  // The observer subscribes before the gateway starts, so it sees every message.
  observer = connectMqtt({ url: mq.url, clientId: 'pipeline-observer' });
  observer.on('message', (_t, payload) => {
    const m = DataMessage.parse(JSON.parse(payload.toString()));
    for (const s of m.samples) {
      if (typeof s.value === 'number' && Number.isFinite(s.value))
        published.set(`${m.chamber}/${s.tag}/${s.ts}`, s.value);
      else if (typeof s.value === 'boolean') published.set(`${m.chamber}/${s.tag}/${s.ts}`, s.value ? 1 : 0);
    }
  });
  await eventually(() => observer.connected, 'observer connected');
  await observer.subscribe('octopus/+/data', 1);
  const dir = scratch('octopus-pipeline-');
  const [opcua, modbus] = [await freePort(), await freePort()];
  httpPort = await freePort();
  writeFileSync(
    join(dir, 'lab.yaml'),
    `
gateway: { id: pipeline }
data_dir: ${JSON.stringify(join(dir, 'data'))}
simulator: { enabled: true, seed: 3 }
mqtt: { url: "${mq.url}" }
http: { port: ${httpPort}, host: 127.0.0.1 }
influx: { url: "${vm.url}", bucket: octopus, flush_interval_ms: 200, retry_max_ms: 2000 }
${simulatedChambers({ opcua, modbus }, { count: 3, intervalMs: 1000 })}`,
  );
  octopus = await startOctopus(join(dir, 'lab.yaml'));
}, 60_000);

afterAll(async () => {
  await octopus?.stop('SIGKILL');
  await observer?.end();
  await Promise.all([mq?.close(), vm?.close()]);
  cleanScratch();
});

const health = async () => HealthReport.parse(await (await fetch(`http://127.0.0.1:${httpPort}/api/health`)).json());

/** Every published numeric sample is in VictoriaMetrics with its value; nothing else is. */
async function expectAllStored(): Promise<void> {
  const want = new Map(published);
  const stored = async () => {
    const got = new Map<string, number>();
    for (const s of await vm.export('climate_value'))
      s.timestamps.forEach((ts, i) => got.set(`${s.metric.chamber}/${s.metric.tag}/${ts}`, s.values[i]!));
    return got;
  };
  let got = new Map<string, number>();
  // The backlog drains in order but newer samples interleave: wait for these keys, not a count.
  await eventually(
    async () => {
      got = await stored();
      return [...want.keys()].every((k) => got.has(k));
    },
    `${want.size} published samples in VictoriaMetrics`,
    90_000,
    500,
  ).catch(() => undefined);
  const missing = [...want.keys()].filter((k) => !got.has(k));
  expect(missing.slice(0, 5), `${missing.length} of ${want.size} published samples missing`).toEqual([]);
  for (const [k, v] of want) expect(got.get(k), k).toBeCloseTo(v, 9);
}

describe('simulator → gateway → Mosquitto → collector → VictoriaMetrics', () => {
  it('stores what the simulated PLCs served, per chamber and tag, with source times', async () => {
    await eventually(
      () => new Set([...published.keys()].map((k) => k.split('/')[0])).size === 3 && published.size > 150,
      'data from all three chambers',
    );
    await expectAllStored();
    const h = await health();
    expect(h.sinks.influx).toMatchObject({ state: 'ok', dead_lettered: 0, dropped: 0 });
    expect(h.sinks.collector).toMatchObject({ state: 'subscribed', invalid: 0 });
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^octopus_influx_written_total \d+/m);
    expect(metrics).toMatch(/^octopus_influx_write_seconds_count \d+/m);
  });

  it(
    `loses nothing while VictoriaMetrics is down for ${OUTAGE_MS / 1000} s, and reports it meanwhile`,
    async () => {
      // VictoriaMetrics may hold rows it acknowledged in memory for a while; a clean restart
      // first puts what it stored so far on its disk, so a loss below can only be ours.
      await vm.restart();
      vm.signal('SIGSTOP');
      await new Promise((r) => setTimeout(r, Math.min(OUTAGE_MS / 2, 30_000)));
      // Then killed (SIGTERM: VictoriaMetrics keeps rows it acknowledged only in memory for
      // a moment, and a SIGKILL would lose those on its side, not ours).
      await vm.stop('SIGTERM');
      await eventually(async () => (await health()).status === 'degraded', 'health degraded');
      const during = await health();
      expect(during.problems.join('\n')).toMatch(/InfluxDB .* not writable .* samples buffered on disk/);
      expect((during.sinks.influx as { buffered: number }).buffered).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - Math.min(OUTAGE_MS / 2, 30_000))));
      await vm.restart();
      await eventually(async () => (await health()).status === 'ok', 'health ok again', 60_000);
      await expectAllStored();
    },
    OUTAGE_MS + 180_000,
  );

  it('stops on SIGINT with exit code 0 after flushing to the database', { timeout: 120_000 }, async () => {
    expect(await octopus.stop('SIGINT')).toBe(0);
    await expectAllStored();
  });
});
