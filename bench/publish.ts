/**
 * Publish path: samples/s through the on-disk spool + QoS 1 MQTT to a local Mosquitto,
 * batched as the gateway does (one message per chamber per poll cycle), against a naive
 * publisher measured in the same run: one QoS 1 message per sample, no spool.
 *
 *   node bin/run-ts.js bench/publish.ts      (OCTOPUS_BENCH_SECONDS=10 by default)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MqttConfig, SpoolConfig } from '../src/config/instance-schema.ts';
import { createLogger } from '../src/core/log.ts';
import type { Sample } from '../src/core/sample.ts';
import { connectMqtt } from '../src/bus/mqtt-client.ts';
import { Publisher } from '../src/bus/publisher.ts';
import { Spool } from '../src/bus/spool.ts';
import { Mosquitto } from '../test/support/mosquitto.ts';
import { eventually } from '../test/support/ports.ts';

const GOAL = 100_000;
const TAGS = 200;
const CHAMBERS = 16;

function batch(chamber: string, ts: number): Sample[] {
  return Array.from({ length: TAGS }, (_, i) => ({
    chamber,
    tag: `tag_${i}`,
    ts,
    value: 20 + (i % 10) / 10,
    q: 'good' as const,
  }));
}

/** Spool + publisher: pushes cycles as fast as the broker acknowledges them. */
async function spooled(url: string, seconds: number): Promise<{ perS: number; rssMb: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'octopus-bench-spool-'));
  const spool = Spool.open(dir, SpoolConfig.parse({ fsync: 'interval' }));
  const pub = new Publisher({
    url,
    mqtt: MqttConfig.parse({ inflight: 512 }),
    gatewayId: 'bench',
    spool,
    log: createLogger('bench'),
  });
  await eventually(() => pub.stats().connected, 'bench publisher connected');
  const t0 = performance.now();
  let ts = Date.now();
  let rss = 0;
  let appended = 0;
  while (performance.now() - t0 < seconds * 1000) {
    // Keep a bounded backlog so the figure is the acknowledged rate, not the append rate.
    if (spool.depth().messages > 2000) {
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    ts++;
    for (let c = 0; c < CHAMBERS; c++) pub.publishSamples(`c${c}`, batch(`c${c}`, ts));
    appended += CHAMBERS * TAGS;
    await new Promise((r) => setImmediate(r));
    rss = Math.max(rss, process.memoryUsage().rss);
  }
  // the figure counts acknowledged samples: every appended one, none dropped at the spool bound
  if (!(await pub.drain(60_000)))
    throw new Error(`spool not drained 60 s after the run: ${JSON.stringify(pub.spoolDepth())}`);
  const elapsed = (performance.now() - t0) / 1000;
  const acked = pub.stats().publishedSamples;
  const dropped = pub.spoolDepth().droppedSamples;
  if (acked !== appended || dropped !== 0)
    throw new Error(`${appended} samples appended, ${acked} acknowledged by the broker, ${dropped} dropped`);
  const perS = acked / elapsed;
  await pub.close();
  rmSync(dir, { recursive: true, force: true });
  return { perS, rssMb: rss / 2 ** 20 };
}

/** Naive: one QoS 1 message per sample, awaited in windows of 100, no spool. */
async function naive(url: string, seconds: number): Promise<{ perS: number }> {
  const conn = connectMqtt({ url, clientId: 'bench-naive' });
  await eventually(() => conn.connected, 'naive publisher connected');
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const window: Promise<void>[] = [];
    for (let i = 0; i < 100; i++) {
      const s = { tag: `tag_${i}`, ts: Date.now(), value: 20.5, q: 'good' };
      window.push(
        conn.publish(
          `octopus/c${i % CHAMBERS}/data`,
          JSON.stringify({ v: 1, chamber: `c${i % CHAMBERS}`, samples: [s] }),
          { qos: 1 },
        ),
      );
    }
    await Promise.all(window);
    n += window.length;
  }
  const perS = n / ((performance.now() - t0) / 1000);
  await conn.end();
  return { perS };
}

export async function benchPublish(): Promise<{ name: string; lines: string[] }> {
  const seconds = Number(process.env.OCTOPUS_BENCH_SECONDS ?? 10);
  const broker = await Mosquitto.start();
  try {
    const fast = await spooled(broker.url, seconds);
    const slow = await naive(broker.url, seconds);
    return {
      name: 'publish',
      lines: [
        `${CHAMBERS} chambers × ${TAGS} tags per cycle through spool (fsync interval) + QoS 1 to local Mosquitto, ${seconds} s`,
        `spool + MQTT: ${Math.round(fast.perS).toLocaleString('en')} samples/s acknowledged, peak RSS ${fast.rssMb.toFixed(0)} MB (goal ≥ ${GOAL.toLocaleString('en')}: ${fast.perS >= GOAL ? 'ok' : 'MISSED'})`,
        `naive (one message per sample, no spool): ${Math.round(slow.perS).toLocaleString('en')} samples/s`,
        `ratio: ${(fast.perS / slow.perS).toFixed(1)}x`,
      ],
    };
  } finally {
    await broker.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchPublish();
  console.log(`== ${r.name}`);
  for (const l of r.lines) console.log(l);
  process.exit(0);
}
