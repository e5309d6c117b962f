/**
 * Alarm webhooks against a real local HTTP receiver on a free loopback port: what a
 * receiver gets (body, headers, HMAC signature), retries on 5xx / 429 / timeouts, the
 * dead-letter log, order and one request at a time per webhook, pending deliveries kept
 * across a restart, and a data folder that cannot be written.
 */
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from '../../src/core/metrics.ts';
import { WriteFaults } from '../../src/core/write-faults.ts';
import { Webhook } from '../../src/alarms/webhook-config.ts';
import { backoffDelay, startWebhookNotifier, WebhookNotifier, type NotifierOptions } from '../../src/alarms/webhook.ts';
import { webhookMetrics } from '../../src/alarms/webhook-metrics.ts';
import type { AlarmEvent } from '../../src/alarms/model.ts';
import { eventually, freePort } from '../support/ports.ts';
import { WebhookReceiver } from '../support/webhook-receiver.ts';
import { alarmEvent, TestAlarmSource } from '../support/alarm-events.ts';
import { createLogger } from '../../src/core/log.ts';

const log = createLogger('test:webhooks');
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'octopus-webhooks-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function receiver(port?: number): Promise<WebhookReceiver> {
  const r = await WebhookReceiver.start(port);
  cleanup.push(() => r.close());
  return r;
}

function notifier(
  source: TestAlarmSource,
  hooks: Array<Partial<Webhook> & { name: string; url: string }>,
  o: Partial<NotifierOptions> & { dataDir: string },
): WebhookNotifier {
  const n = startWebhookNotifier(source, {
    webhooks: hooks.map((h) => Webhook.parse({ backoff_ms: 10, timeout_ms: 5000, ...h })),
    log,
    writeFaults: new WriteFaults(3_600_000),
    ...o,
  });
  cleanup.push(() => n.close(0));
  return n;
}

interface Body extends AlarmEvent {
  webhook: string;
  delivery_id: string;
}
const deadLetters = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(
      (l) =>
        JSON.parse(l) as {
          webhook: string;
          delivery_id: string;
          attempts: number;
          status?: number;
          error: string;
          event: AlarmEvent;
        },
    );

describe('alarm webhooks (local HTTP receiver)', () => {
  it('POSTs the event as JSON with the webhook name, a delivery id and a valid HMAC-SHA256 signature', async () => {
    const rx = await receiver();
    const source = new TestAlarmSource();
    const n = notifier(source, [{ name: 'ops', url: `${rx.url}/hook?k=1`, secret_env: 'OPS_HOOK_SECRET' }], {
      dataDir: dataDir(),
      env: { OPS_HOOK_SECRET: 's3cr3t' },
    });
    const e = alarmEvent(1);
    source.emit(e);
    await eventually(() => n.health().delivered === 1, 'one delivery');
    const [req] = rx.received;
    expect(req!.path).toBe('/hook?k=1');
    expect(req!.headers['content-type']).toBe('application/json');
    const body = JSON.parse(req!.body) as Body;
    expect(body).toEqual({ webhook: 'ops', delivery_id: expect.stringMatching(/^[0-9a-f-]{36}$/), ...e });
    expect(req!.headers['x-octopus-delivery']).toBe(body.delivery_id);
    expect(req!.headers['x-octopus-event']).toBe('raised');
    // The receiver's check: HMAC-SHA256 of the raw body with the shared secret.
    expect(req!.headers['x-octopus-signature']).toBe(
      `sha256=${createHmac('sha256', 's3cr3t').update(req!.body).digest('hex')}`,
    );
    expect(n.health()).toMatchObject({
      state: 'ok',
      pending: 0,
      delivered: 1,
      retried: 0,
      dead_lettered: 0,
      webhooks: [{ name: 'ops', target: rx.url, last_status: 204 }],
    });
  });

  it('no signature header without a secret; a secret_env that is not set, a name used twice or a bad URL is refused at start', async () => {
    const rx = await receiver();
    const source = new TestAlarmSource();
    const n = notifier(source, [{ name: 'plain', url: rx.url }], { dataDir: dataDir() });
    source.emit(alarmEvent(1));
    await eventually(() => n.health().delivered === 1, 'delivery');
    expect(rx.received[0]!.headers['x-octopus-signature']).toBeUndefined();
    expect(
      () =>
        new WebhookNotifier({
          webhooks: [Webhook.parse({ name: 'ops', url: rx.url, secret_env: 'NOT_SET_HERE' })],
          dataDir: dataDir(),
          env: {},
        }),
    ).toThrow('alarms.webhooks[0] ("ops"): secret_env NOT_SET_HERE is not set in the environment');
    expect(
      () =>
        new WebhookNotifier({
          webhooks: [Webhook.parse({ name: 'a', url: rx.url }), Webhook.parse({ name: 'a', url: rx.url })],
          dataDir: dataDir(),
        }),
    ).toThrow('alarms.webhooks[1].name: "a" is used twice');
    expect(
      () =>
        new WebhookNotifier({ webhooks: [Webhook.parse({ name: 'bad', url: 'http://[::1/x' })], dataDir: dataDir() }),
    ).toThrow('alarms.webhooks[0] ("bad").url: not a valid URL');
  });

  it('credentials in the URL go into a Basic Authorization header and never into health', async () => {
    const rx = await receiver();
    const source = new TestAlarmSource();
    const n = notifier(source, [{ name: 'ops', url: `http://octo:p%40ss@127.0.0.1:${rx.port}/in` }], {
      dataDir: dataDir(),
    });
    source.emit(alarmEvent(1));
    await eventually(() => n.health().delivered === 1, 'delivery');
    expect(rx.received[0]!.headers.authorization).toBe(`Basic ${Buffer.from('octo:p@ss').toString('base64')}`);
    expect(JSON.stringify(n.health())).not.toMatch(/octo|p%40ss/);
  });

  it('answers 500 twice, then 200: delivered on the third attempt, same delivery id, nothing dead-lettered', async () => {
    const rx = await receiver();
    rx.script.push({ status: 500, body: 'database locked' }, { status: 503 });
    rx.fallback = { status: 200 };
    const source = new TestAlarmSource();
    const dir = dataDir();
    const n = notifier(source, [{ name: 'ops', url: rx.url }], { dataDir: dir });
    source.emit(alarmEvent(1));
    await eventually(() => n.health().delivered === 1, 'delivered after retries');
    expect(rx.received.map((r) => r.status)).toEqual([500, 503, 200]);
    expect(rx.received.map((r) => r.headers['x-octopus-attempt'])).toEqual(['1', '2', '3']);
    expect(new Set(rx.bodies<Body>().map((b) => b.delivery_id)).size).toBe(1);
    expect(n.health()).toMatchObject({ delivered: 1, retried: 2, dead_lettered: 0, pending: 0 });
    expect(existsSync(join(dir, 'alarms', 'dead-letter.jsonl'))).toBe(false);
  });

  it('always 500: dead-lettered after max_attempts, with webhook, attempts, status and error in the dead-letter log; counted in /metrics', async () => {
    const rx = await receiver();
    rx.fallback = { status: 500, body: 'boom' };
    const source = new TestAlarmSource();
    const dir = dataDir();
    const n = notifier(source, [{ name: 'chat', url: `${rx.url}/services/T0/B0/SECRETPATH`, max_attempts: 4 }], {
      dataDir: dir,
    });
    const e = alarmEvent(7);
    source.emit(e);
    await eventually(() => n.health().dead_lettered === 1, 'dead-lettered');
    expect(rx.received).toHaveLength(4);
    const [dl] = deadLetters(join(dir, 'alarms', 'dead-letter.jsonl'));
    expect(dl).toMatchObject({
      webhook: 'chat',
      attempts: 4,
      status: 500,
      event: e,
      delivery_id: rx.bodies<Body>()[0]!.delivery_id,
    });
    expect(dl!.error).toBe(`HTTP 500 from ${rx.url}: boom`);
    // The path of a chat webhook is its secret: never in logs, health or the dead-letter log.
    expect(JSON.stringify(n.health()) + JSON.stringify(dl)).not.toContain('SECRETPATH');
    expect(n.health()).toMatchObject({ pending: 0, retried: 3, dead_lettered: 1, delivered: 0 });

    const registry = new Registry();
    for (const m of webhookMetrics(() => n.health())) registry.registerMetric(m);
    const text = await registry.metrics();
    expect(text).toContain('octopus_alarm_webhook_dead_lettered_total{webhook="chat"} 1');
    expect(text).toContain('octopus_alarm_webhook_retried_total{webhook="chat"} 3');
    expect(text).toContain('octopus_alarm_webhook_delivered_total{webhook="chat"} 0');
    expect(text).toContain('octopus_alarm_webhook_pending{webhook="chat"} 0');
  });

  it('400: dead-lettered at once, without a retry; the next event is still delivered', async () => {
    const rx = await receiver();
    rx.script.push({ status: 400, body: '{"error":"unknown field"}' });
    const source = new TestAlarmSource();
    const dir = dataDir();
    const n = notifier(source, [{ name: 'ops', url: rx.url, max_attempts: 5 }], { dataDir: dir });
    source.emit(alarmEvent(1));
    source.emit(alarmEvent(2));
    await eventually(() => n.health().delivered === 1 && n.health().dead_lettered === 1, 'one refused, one delivered');
    expect(rx.received.map((r) => r.status)).toEqual([400, 204]);
    expect(n.health().retried).toBe(0);
    const [dl] = deadLetters(join(dir, 'alarms', 'dead-letter.jsonl'));
    expect(dl).toMatchObject({
      webhook: 'ops',
      attempts: 1,
      status: 400,
      error: `HTTP 400 from ${rx.url}: {"error":"unknown field"}`,
    });
    expect(dl!.event.alarm.id).toBe(alarmEvent(1).alarm.id);
  });

  it('429 with Retry-After waits what the receiver asks, not the backoff; 408 is retried too', async () => {
    const rx = await receiver();
    rx.script.push({ status: 408 }, { status: 429, headers: { 'retry-after': '1' } });
    const source = new TestAlarmSource();
    // backoff_ms 10 ms: the 408 is retried at once; without Retry-After the 429 would be too.
    const n = notifier(source, [{ name: 'ops', url: rx.url }], { dataDir: dataDir() });
    source.emit(alarmEvent(1));
    await eventually(() => rx.received.length === 2, 'the 429');
    const at429 = Date.now();
    await eventually(() => n.health().delivered === 1, 'delivered after Retry-After', 20_000, 20);
    // A lower bound only: the third attempt cannot come before the second plus 1 s.
    expect(Date.now() - at429).toBeGreaterThanOrEqual(900);
    expect(rx.received.map((r) => r.status)).toEqual([408, 429, 204]);
  });

  it('doubling backoff from backoff_ms, capped at 5 minutes', () => {
    expect([1, 2, 3, 4].map((k) => backoffDelay(1000, k))).toEqual([1000, 2000, 4000, 8000]);
    expect(backoffDelay(1000, 20)).toBe(300_000);
    expect(backoffDelay(1000, 1000)).toBe(300_000);
  });

  it('with an injected clock: retry delays double from backoff_ms up to the 5-minute cap; Retry-After replaces them', async () => {
    const rx = await receiver();
    for (let i = 0; i < 10; i++) rx.script.push({ status: 503 });
    rx.script.push({ status: 429, headers: { 'retry-after': '42' } });
    rx.fallback = { status: 200 };
    // Timers are recorded and fired by the test: no waiting for 10 minutes of backoff.
    const waits: number[] = [];
    let due: (() => void) | undefined;
    let now = 1_764_072_000_000;
    const clock = {
      now: () => now,
      setTimeout: (fn: () => void, ms: number) => {
        waits.push(ms);
        due = fn;
        return waits.length;
      },
      clearTimeout: () => (due = undefined),
    };
    const source = new TestAlarmSource();
    const n = notifier(source, [{ name: 'ops', url: rx.url, backoff_ms: 1000, max_attempts: 20 }], {
      dataDir: dataDir(),
      clock,
    });
    source.emit(alarmEvent(1));
    for (let k = 1; k <= 11; k++) {
      await eventually(() => waits.length === k, `retry ${k} scheduled`);
      now += waits[k - 1]!;
      const fire = due!;
      due = undefined;
      fire();
    }
    await eventually(() => n.health().delivered === 1, 'delivered');
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 42_000]);
    expect(rx.received).toHaveLength(12);
    expect(n.health().webhooks[0]!.last_delivered).toBe(new Date(now).toISOString());
  });

  it('in order and one request at a time per webhook, a timeout is retried, and queuing never waits for the receiver', async () => {
    const rx = await receiver();
    rx.script.push({ status: 0, hang: true }); // the first request gets no answer
    const source = new TestAlarmSource();
    const n = notifier(source, [{ name: 'ops', url: rx.url, timeout_ms: 1500 }], { dataDir: dataDir() });
    const events = Array.from({ length: 20 }, (_, i) =>
      alarmEvent(i + 1, { event: (['raised', 'acknowledged', 'cleared'] as const)[i % 3] }),
    );
    for (const e of events) source.emit(e);
    // emit returned for all 20 while the receiver holds the first request: all are queued.
    expect(n.health().pending).toBe(20);
    await eventually(() => n.health().delivered === 20, '20 deliveries', 30_000);
    // First arrival of each delivery (on a loaded machine a slow answer may time out and be sent again: at least once).
    const seen = new Set<string>();
    const delivered = rx.received
      .filter((r) => r.status === 204)
      .map((r) => JSON.parse(r.body) as Body)
      .filter((b) => !seen.has(b.delivery_id) && seen.add(b.delivery_id));
    expect(delivered.map((b) => `${b.alarm.id}/${b.event}`)).toEqual(events.map((e) => `${e.alarm.id}/${e.event}`));
    expect(rx.maxConcurrent).toBe(1);
    expect(n.health().retried).toBeGreaterThanOrEqual(1);
    expect(n.health().dead_lettered).toBe(0);
    expect(rx.received[1]!.headers['x-octopus-delivery']).toBe(rx.received[0]!.headers['x-octopus-delivery']);
    expect(n.health().webhooks[0]!.last_error).toBe(`${rx.url}: no answer within 1500 ms`);
  });

  it('each webhook gets only its classes and events, and a dead receiver does not hold up another webhook', async () => {
    const [good, dead] = [await receiver(), await receiver()];
    dead.fallback = { status: 503 };
    const source = new TestAlarmSource();
    const n = notifier(
      source,
      [
        { name: 'oncall', url: good.url, classes: ['offline', 'plc_alarm'], events: ['raised'] },
        { name: 'archive', url: dead.url, backoff_ms: 60_000 },
      ],
      { dataDir: dataDir() },
    );
    source.emit(alarmEvent(1));
    source.emit(alarmEvent(2, { class: 'offline', tag: undefined }));
    source.emit(alarmEvent(3, { class: 'offline', tag: undefined, event: 'cleared' }));
    source.emit(alarmEvent(4, { class: 'plc_alarm', tag: 'alarm_active' }));
    await eventually(() => n.health().webhooks[0]!.delivered === 2, 'oncall got its two');
    expect(good.bodies<Body>().map((b) => `${b.alarm.class}/${b.event}`)).toEqual([
      'offline/raised',
      'plc_alarm/raised',
    ]);
    await eventually(() => n.health().webhooks[1]!.state === 'retrying', 'archive retrying');
    expect(n.health().webhooks[1]).toMatchObject({ name: 'archive', pending: 4, delivered: 0, last_status: 503 });
    expect(n.problems()).toEqual([
      `alarm webhook archive (${dead.url}): 4 notification(s) pending, retrying after: HTTP 503 from ${dead.url}`,
    ]);
  });

  it('pending deliveries survive a restart: sent after it in order, with the same delivery ids, attempts counted on', async () => {
    const port = await freePort(); // nothing listens there yet
    const dir = dataDir();
    const hooks = [{ name: 'ops', url: `http://127.0.0.1:${port}/in`, backoff_ms: 60_000, max_attempts: 5 }];
    const source = new TestAlarmSource();
    const first = notifier(source, hooks, { dataDir: dir });
    for (let i = 1; i <= 3; i++) source.emit(alarmEvent(i));
    await eventually(() => first.health().retried === 1, 'first attempt failed');
    expect(first.health()).toMatchObject({ state: 'retrying', pending: 3, delivered: 0 });
    expect(first.health().last_error).toContain('ECONNREFUSED');
    await first.close();
    const queued = readFileSync(join(dir, 'alarms', 'webhooks', 'ops.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { op: string; d?: { id: string } })
      .filter((r) => r.op === 'add')
      .map((r) => r.d!.id);
    expect(queued).toHaveLength(3);

    const rx = await receiver(port);
    const second = notifier(new TestAlarmSource(), hooks, { dataDir: dir });
    await eventually(() => second.health().delivered === 3, 'delivered after the restart');
    const bodies = rx.bodies<Body>();
    expect(bodies.map((b) => b.delivery_id)).toEqual(queued);
    expect(bodies.map((b) => b.alarm.id)).toEqual([1, 2, 3].map((i) => alarmEvent(i).alarm.id));
    expect(rx.received.map((r) => r.headers['x-octopus-attempt'])).toEqual(['2', '1', '1']);
    await second.close();
    // Nothing is pending any more: a third start sends nothing.
    const third = notifier(new TestAlarmSource(), hooks, { dataDir: dir });
    expect(third.health().pending).toBe(0);
  });

  it('a data folder that cannot be written degrades and reports (write faults), keeps delivering, and recovers', async () => {
    const rx = await receiver();
    rx.script.push({ status: 400 });
    const dir = dataDir();
    writeFileSync(join(dir, 'alarms'), 'not a folder'); // every write under <dir>/alarms fails
    const faults = new WriteFaults(3_600_000);
    const source = new TestAlarmSource();
    const n = notifier(source, [{ name: 'ops', url: rx.url }], { dataDir: dir, writeFaults: faults });
    source.emit(alarmEvent(1));
    source.emit(alarmEvent(2));
    await eventually(() => n.health().delivered === 1 && n.health().dead_lettered === 1, 'one refused, one delivered');
    expect(
      faults
        .list()
        .map((f) => f.target)
        .sort(),
    ).toEqual(['alarms:dead-letter', 'alarms:webhook:ops']);
    expect(faults.get('alarms:dead-letter')!.effect).toBe(
      '1 dead-lettered alarm notification(s) held in memory until the file can be written',
    );
    expect(faults.get('alarms:webhook:ops')!.errno).toMatch(/^E[A-Z]+$/);

    rmSync(join(dir, 'alarms'));
    faults.retryNow();
    expect(faults.list()).toEqual([]);
    const [dl] = deadLetters(join(dir, 'alarms', 'dead-letter.jsonl'));
    expect(dl).toMatchObject({ webhook: 'ops', status: 400, attempts: 1 });
    expect(existsSync(join(dir, 'alarms', 'webhooks', 'ops.jsonl'))).toBe(true);
  });
});

describe('startAlarmNotifications (the one-call wiring)', () => {
  it('webhooks and the InfluxDB lines from one source; health gets sinks.alarm_webhooks and degrades while a webhook retries', async () => {
    const { startAlarmNotifications } = await import('../../src/alarms/notifications.ts');
    const port = await freePort(); // nothing listens: every attempt is refused
    const source = new TestAlarmSource();
    const lines: string[] = [];
    const n = startAlarmNotifications(source, {
      webhooks: [Webhook.parse({ name: 'ops', url: `http://127.0.0.1:${port}/`, backoff_ms: 60_000 })],
      dataDir: dataDir(),
      influx: { acceptLines: (_key, text) => lines.push(text) },
      log,
      writeFaults: new WriteFaults(3_600_000),
    });
    cleanup.push(() => n.close());
    const base = {
      status: 'ok' as const,
      gateway: 'gw',
      version: '0',
      uptime_s: 1,
      drivers: [],
      broker: { url: 'mqtt://x', embedded: true, connected: true, reconnects: 0 },
      spool: { messages: 0, bytes: 0, samples: 0, dropped_samples: 0 },
      published: { messages: 0, samples: 0 },
      sinks: {},
      problems: [],
    };
    expect(n.withHealth(base).status).toBe('ok');
    source.emit(alarmEvent(1));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^alarm,chamber=ch01,class=deviation,event=raised,/);
    await eventually(() => n.notifier.health().state === 'retrying', 'retrying');
    const h = n.withHealth(base);
    expect(h.status).toBe('degraded');
    expect(h.sinks.alarm_webhooks).toMatchObject({ state: 'retrying', buffered: 1, pending: 1, delivered: 0 });
    expect(h.sinks.alarm_influx).toMatchObject({ state: 'ok', written: 1, held: 0 });
    expect(h.problems[0]).toMatch(
      /^alarm webhook ops \(http:\/\/127\.0\.0\.1:\d+\): 1 notification\(s\) pending, retrying after: http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED$/,
    );
    expect(n.metrics.map((m) => (m as unknown as { name: string }).name)).toContain('octopus_alarm_webhook_pending');
  });
});
