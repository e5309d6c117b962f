/**
 * Alarm webhooks: how fast alarm events reach receivers, and what queuing them costs the
 * alarm engine. A burst of alarm events (a facility-wide fault: every chamber raising at
 * once) goes to 4 webhooks on a local HTTP receiver that answers 204 after 20 ms (a
 * mail/chat gateway's processing time), through the notifier (signed, journaled on disk,
 * in order per webhook, the 4 webhooks in parallel), against a naive loop measured in the
 * same run: for each event, one `await fetch` per webhook in sequence, inside the
 * evaluation loop, as a first implementation would do.
 *
 * Figures: deliveries/s for both, the time the engine's `emit` takes (p50/p99: the
 * notifier only queues; the naive loop blocks for every round trip) and the end-to-end
 * latency event → receiver (p50/p99) with events 100 ms apart, and within the burst. Counts are checked before anything is printed:
 * every event delivered exactly once per webhook, in order, with a valid signature.
 *
 *   npm run bench -- webhooks          (OCTOPUS_BENCH_EVENTS=200, OCTOPUS_BENCH_RECEIVER_MS=20)
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from '../src/alarms/webhook-config.ts';
import { WebhookNotifier } from '../src/alarms/webhook.ts';
import { createLogger } from '../src/core/log.ts';
import { WriteFaults } from '../src/core/write-faults.ts';
import { alarmEvent, TestAlarmSource } from '../test/support/alarm-events.ts';
import { eventually } from '../test/support/ports.ts';
import { WebhookReceiver } from '../test/support/webhook-receiver.ts';
import type { BenchSummary } from './modbus.ts';

const HOOKS = 4;
const SECRET = 'bench-secret';
/** Goal: queuing an event blocks the engine at least 10× less than the naive loop (p99), and delivers at least as fast. */
const GOAL_BLOCKING_RATIO = 10;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

/** Every event once per webhook, in emit order, signed. */
function check(rx: WebhookReceiver, events: number, signed: boolean): void {
  const perHook = new Map<string, number[]>();
  for (const r of rx.received) {
    if (r.status !== 204) throw new Error(`receiver answered ${r.status}`);
    if (
      signed &&
      r.headers['x-octopus-signature'] !== `sha256=${createHmac('sha256', SECRET).update(r.body).digest('hex')}`
    )
      throw new Error('bad signature');
    const n = Number(/\[#(\d+)\]/.exec((JSON.parse(r.body) as { alarm: { message: string } }).alarm.message)![1]);
    const list = perHook.get(r.path) ?? [];
    list.push(n);
    perHook.set(r.path, list);
  }
  if (perHook.size !== HOOKS) throw new Error(`${perHook.size} webhooks reached, expected ${HOOKS}`);
  for (const [path, ns] of perHook) {
    if (ns.length !== events || ns.some((n, i) => n !== i + 1))
      throw new Error(`${path}: ${ns.length} deliveries (expected ${events}, in order)`);
  }
}

async function viaNotifier(
  events: number,
  delayMs: number,
  paceMs = 0,
): Promise<{ perS: number; emit: number[]; e2e: number[] }> {
  const rx = await WebhookReceiver.start();
  rx.delayMs = delayMs;
  const dir = mkdtempSync(join(tmpdir(), 'octopus-bench-webhooks-'));
  const emittedAt: number[] = [];
  const e2e: number[] = [];
  const notifier = new WebhookNotifier({
    webhooks: Array.from({ length: HOOKS }, (_, i) =>
      Webhook.parse({ name: `hook${i}`, url: `${rx.url}/h${i}`, secret_env: 'BENCH_SECRET' }),
    ),
    dataDir: dir,
    env: { BENCH_SECRET: SECRET },
    log: createLogger('bench:webhooks'),
    writeFaults: new WriteFaults(3_600_000),
  });
  const source = new TestAlarmSource();
  notifier.attach(source);
  const emit: number[] = [];
  const t0 = performance.now();
  for (let i = 1; i <= events; i++) {
    const e = alarmEvent(i);
    const t = performance.now();
    emittedAt[i] = Date.now();
    source.emit(e);
    emit.push(performance.now() - t);
    if (paceMs) await new Promise((r) => setTimeout(r, paceMs));
  }
  await eventually(() => notifier.health().delivered === events * HOOKS, 'every delivery', 600_000, 5);
  const elapsed = (performance.now() - t0) / 1000;
  check(rx, events, true);
  // Arrival order per webhook is emit order: the i-th arrival on a path is event i.
  const seen = new Map<string, number>();
  for (const r of rx.received) {
    const k = (seen.get(r.path) ?? 0) + 1;
    seen.set(r.path, k);
    e2e.push(r.at - emittedAt[k]!);
  }
  await notifier.close();
  await rx.close();
  rmSync(dir, { recursive: true, force: true });
  return { perS: (events * HOOKS) / elapsed, emit, e2e };
}

async function naive(events: number, delayMs: number): Promise<{ perS: number; emit: number[] }> {
  const rx = await WebhookReceiver.start();
  rx.delayMs = delayMs;
  const emit: number[] = [];
  const t0 = performance.now();
  for (let i = 1; i <= events; i++) {
    const e = alarmEvent(i);
    const t = performance.now();
    for (let h = 0; h < HOOKS; h++) {
      const body = JSON.stringify({ webhook: `hook${h}`, delivery_id: `${i}-${h}`, ...e });
      const res = await fetch(`${rx.url}/h${h}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-octopus-signature': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
        },
        body,
      });
      await res.arrayBuffer();
      if (res.status !== 204) throw new Error(`naive: HTTP ${res.status}`);
    }
    emit.push(performance.now() - t);
  }
  const elapsed = (performance.now() - t0) / 1000;
  check(rx, events, true);
  await rx.close();
  return { perS: (events * HOOKS) / elapsed, emit };
}

export async function benchWebhooks(): Promise<{ name: string; lines: string[]; summary: BenchSummary }> {
  const events = Number(process.env.OCTOPUS_BENCH_EVENTS ?? 200);
  const delayMs = Number(process.env.OCTOPUS_BENCH_RECEIVER_MS ?? 20);
  const lines: string[] = [];
  const log = (l: string) => {
    lines.push(l);
    console.log(l);
  };
  const fast = await viaNotifier(events, delayMs);
  // Steady state: events 100 ms apart (a busy alarm day is far slower), latency event → receiver.
  const paced = await viaNotifier(50, delayMs, 100);
  const slow = await naive(events, delayMs);
  const n = (x: number) => Math.round(x).toLocaleString('en');
  const ms = (x: number) => `${x < 1 ? x.toFixed(3) : x.toFixed(1)} ms`;
  log(
    `${events} alarm events × ${HOOKS} webhooks, receiver answering after ${delayMs} ms; every event delivered once per webhook, in order, signature valid`,
  );
  log(
    `notifier: ${n(fast.perS)} deliveries/s; emit (engine blocked) p50 ${ms(pct(fast.emit, 50))}, p99 ${ms(pct(fast.emit, 99))}`,
  );
  log(
    `notifier end-to-end emit → receiver: 50 events 100 ms apart p50 ${ms(pct(paced.e2e, 50))}, p99 ${ms(pct(paced.e2e, 99))}; in the burst of ${events} (queueing) p50 ${ms(pct(fast.e2e, 50))}, p99 ${ms(pct(fast.e2e, 99))}`,
  );
  log(
    `naive sequential fetch loop: ${n(slow.perS)} deliveries/s; emit (engine blocked) p50 ${ms(pct(slow.emit, 50))}, p99 ${ms(pct(slow.emit, 99))}`,
  );
  const ratio = fast.perS / slow.perS;
  const emitP99 = pct(fast.emit, 99);
  const blocking = pct(slow.emit, 99) / emitP99;
  const ok = blocking >= GOAL_BLOCKING_RATIO && ratio >= 1;
  log(
    `ratio notifier/naive: ${ratio.toFixed(1)}x deliveries/s, ${blocking.toFixed(0)}x less engine blocking at p99 (goal ≥ ${GOAL_BLOCKING_RATIO}x less blocking and ≥ naive throughput: ${ok ? 'ok' : 'MISSED'})`,
  );
  return {
    name: 'webhooks',
    lines,
    summary: {
      figure: `${n(fast.perS)} deliveries/s, emit p99 ${ms(emitP99)}, e2e p99 ${ms(pct(paced.e2e, 99))}`,
      baseline: `naive ${n(slow.perS)} deliveries/s, emit p99 ${ms(pct(slow.emit, 99))}`,
      ratio: `${ratio.toFixed(1)}x`,
      goal: `≥ ${GOAL_BLOCKING_RATIO}x less blocking, ≥ naive deliveries/s`,
      ok,
    },
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const r = await benchWebhooks();
  process.exit(r.summary.ok ? 0 : 1);
}
