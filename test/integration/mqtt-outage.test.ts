import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MqttConfig, SpoolConfig } from '../../src/config/instance-schema.ts';
import { createLogger } from '../../src/core/log.ts';
import type { Sample } from '../../src/core/sample.ts';
import { connectMqtt } from '../../src/bus/mqtt-client.ts';
import { DataMessage } from '../../src/bus/payload.ts';
import { Publisher } from '../../src/bus/publisher.ts';
import { Spool } from '../../src/bus/spool.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { eventually } from '../support/ports.ts';

const OUTAGE_MS = Number(process.env.OCTOPUS_TEST_OUTAGE_MS ?? 60_000);
const CHAMBERS = ['c1', 'c2'];
const TAGS = Array.from({ length: 50 }, (_, i) => `tag_${i}`);
const cleanup: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

describe('broker outage', () => {
  it(`broker stopped for ${OUTAGE_MS / 1000} s while chambers publish: every sample arrives exactly once, in order; memory stays bounded`, async () => {
    const broker = await Mosquitto.start({ persistence: true });
    cleanup.push(() => broker.close());
    const dir = mkdtempSync(join(tmpdir(), 'octopus-outage-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));

    // The consumer has a persistent session and drops redelivered messages by (gw, seq),
    // as docs/mqtt.md tells consumers to (QoS 1 is at-least-once across a broker crash).
    const received = new Map<string, Sample[]>(CHAMBERS.map((c) => [c, []]));
    const seen = new Set<string>();
    let redelivered = 0;
    const sub = connectMqtt({ url: broker.url, clientId: 'outage-consumer', clean: false });
    cleanup.push(() => sub.end());
    sub.on('message', (_topic, payload) => {
      const m = DataMessage.parse(JSON.parse(payload.toString()));
      if (seen.has(`${m.gw}/${m.seq}`)) return void redelivered++;
      seen.add(`${m.gw}/${m.seq}`);
      received.get(m.chamber)!.push(...m.samples.map((s) => ({ ...s, chamber: m.chamber })));
    });
    await eventually(() => sub.connected, 'consumer connected');
    await sub.subscribe('octopus/+/data', 1);

    const spool = Spool.open(dir, SpoolConfig.parse({ fsync: 'interval' }));
    const pub = new Publisher({
      url: broker.url,
      mqtt: MqttConfig.parse({}),
      gatewayId: 'gw-outage',
      spool,
      log: createLogger('outage'),
    });
    cleanup.push(() => pub.close(1000));
    await eventually(() => pub.stats().connected, 'gateway connected');

    // 2 chambers × 50 tags at 10 Hz = 1000 samples/s, with strictly increasing ts per tag.
    let sent = 0;
    let tick = 0;
    const t0 = Date.now();
    const timer = setInterval(() => {
      tick++;
      for (const chamber of CHAMBERS) {
        pub.publishSamples(
          chamber,
          TAGS.map((tag) => ({ chamber, tag, ts: t0 + tick, value: tick, q: 'good' as const })),
        );
        sent += TAGS.length;
      }
    }, 100);

    await new Promise((r) => setTimeout(r, 3000));
    const rssBefore = process.memoryUsage().rss;
    await broker.stop();
    let maxRss = rssBefore;
    const sampler = setInterval(() => (maxRss = Math.max(maxRss, process.memoryUsage().rss)), 1000);
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    const spooledDuringOutage = pub.spoolDepth().samples;
    await broker.restart();
    await new Promise((r) => setTimeout(r, 3000));
    clearInterval(timer);
    await eventually(() => pub.spoolDepth().messages === 0, 'spool drained', 60_000);
    await eventually(
      () => CHAMBERS.every((c) => received.get(c)!.length >= sent / CHAMBERS.length),
      `all ${sent} samples received`,
      30_000,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; got ${CHAMBERS.map((c) => received.get(c)!.length).join(' + ')}`);
    });
    await new Promise((r) => setTimeout(r, 1000));
    clearInterval(sampler);

    // During the outage the samples waited on disk, not in memory.
    expect(spooledDuringOutage).toBeGreaterThan(0.9 * (OUTAGE_MS / 1000) * 1000);
    expect(maxRss - rssBefore).toBeLessThan(100 * 1024 * 1024);
    for (const chamber of CHAMBERS) {
      const got = received.get(chamber)!;
      expect(got.length).toBe(sent / CHAMBERS.length);
      const keys = new Set(got.map((s) => `${s.tag}@${s.ts}`));
      expect(keys.size).toBe(got.length); // no duplicates
      // In order: per tag, timestamps strictly increase and have no holes.
      for (const tag of TAGS) {
        const ts = got.filter((s) => s.tag === tag).map((s) => s.ts - t0);
        expect(ts).toEqual(Array.from({ length: tick }, (_, i) => i + 1));
      }
    }
    expect(pub.spoolDepth().droppedSamples).toBe(0);
    // Redelivery is the exception (a message in flight at the crash), not the rule.
    expect(redelivered).toBeLessThanOrEqual(5);
  }, 180_000);
});
