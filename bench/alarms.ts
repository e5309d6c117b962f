/**
 * Alarm evaluation cost and latency: 16 chambers × 200 tags (4 controlled variables with
 * setpoints, 2 PLC alarm tags, a door, the rest plain measurements) at 1 Hz (the
 * facility) and at 100× that rate, through the collector's message loop — each data
 * message as its JSON text is parsed and validated (DataMessage) as the subscriber does
 * — with the alarm engine (accept per message, tick every evaluate_interval_ms) and,
 * as the baseline measured in the same run, without it.
 *
 * The stream is replayed in simulated time as fast as the CPU allows; the CPU time per
 * simulated second is the share of one core the loop needs at that rate; the time spent
 * inside the engine (accept + tick) per stream second is the evaluation's share. Faults
 * begin at random instants (a chamber's CO2 held 3 bands off its setpoint until its
 * alarm is raised, then back); latency = raise time − (fault + min_duration), in the
 * stream's time, so it includes the wait for the next sample and the tick, plus the
 * processing time of the message that raised it (not the driver and MQTT hops before it). Every fault must give exactly one raised and one
 * cleared event, checked before anything is printed.
 *
 *   node bin/run-ts.js bench/alarms.ts
 *   OCTOPUS_BENCH_SECONDS=600 node bin/run-ts.js bench/alarms.ts   (stream seconds at 1 Hz, default 240; a fifth of it, at least 60, at 100×)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AlarmsConfig } from '../src/alarms/config.ts';
import { AlarmEngine } from '../src/alarms/engine.ts';
import type { AlarmEvent } from '../src/alarms/model.ts';
import { planOf, type WatchedTag } from '../src/alarms/plan.ts';
import { DataMessage, encodeData } from '../src/bus/payload.ts';
import { createLogger } from '../src/core/log.ts';
import type { Sample } from '../src/core/sample.ts';
import type { BenchSummary } from './modbus.ts';

const CHAMBERS = 16;
const TAGS = 200;
const MIN_S = 5;
const BAND = 50;
const CONTROLLED = ['air_temperature', 'relative_humidity', 'co2', 'par'];

function tags(): WatchedTag[] {
  const out: WatchedTag[] = [];
  for (const c of CONTROLLED)
    out.push({ name: c, unit: '1' }, { name: `${c}_setpoint`, role: 'setpoint', setpoint_of: c });
  out.push(
    { name: 'alarm_active', role: 'alarm' },
    { name: 'alarm_word', role: 'alarm' },
    { name: 'door_open', door: true },
  );
  for (let i = out.length; i < TAGS; i++) out.push({ name: `m${i}` });
  return out;
}

interface Run {
  cpuMs: number;
  evalMs: number;
  simulatedS: number;
  messages: number;
  events: AlarmEvent[];
  latencies: number[];
  faults: number;
}

/** Replays `seconds` of the stream at `rate`× the facility's 1 Hz; with or without the engine. */
function replay(seconds: number, rate: number, withEngine: boolean, seed = 1): Run {
  const dir = mkdtempSync(join(tmpdir(), 'octopus-bench-alarms-'));
  try {
    const list = tags();
    const plans = Array.from({ length: CHAMBERS }, (_, i) =>
      planOf(
        `ch${String(i + 1).padStart(2, '0')}`,
        1000 / rate,
        list,
        Object.fromEntries(CONTROLLED.map((c) => [c, { band: BAND, min_duration_s: MIN_S }])),
      ),
    );
    const t0 = 1_800_000_000_000;
    let now = t0;
    const events: AlarmEvent[] = [];
    const engine = withEngine
      ? new AlarmEngine({
          config: AlarmsConfig.parse({ stale_periods: 10 }),
          plans,
          log: createLogger('bench-alarms'),
          logFile: join(dir, 'alarms.jsonl'),
          now: () => now,
          publisher: { state: () => {}, event: (e) => events.push(e) },
        })
      : undefined;
    engine?.tick();
    const periodMs = 1000 / rate;
    const tickMs = 1000;
    let nextTick = t0 + tickMs;
    // Faults: one chamber at a time, a random start every ~2 × MIN_S of stream time.
    let rnd = seed >>> 0;
    const random = () => (rnd = (Math.imul(rnd, 1664525) + 1013904223) >>> 0) / 4294967296;
    let fault: { chamber: number; at: number } | undefined;
    let nextFault = t0 + 5000 + random() * MIN_S * 1000;
    let faults = 0;
    const latencies: number[] = [];
    const raisedSeen = () => events.filter((e) => e.event === 'raised').length;
    let seq = 0;
    let messages = 0;
    let sink = 0;
    let evalMs = 0;
    const cpu0 = process.cpuUsage();
    const end = t0 + seconds * 1000;
    for (let t = t0; t < end; t += periodMs) {
      now = t;
      if (!fault && t >= nextFault && withEngine) {
        // The fault began at a random instant; the first sample showing it is the next one.
        fault = { chamber: Math.floor(random() * CHAMBERS), at: nextFault };
        faults++;
      }
      for (let c = 0; c < CHAMBERS; c++) {
        const chamber = plans[c]!.chamber;
        const off = fault?.chamber === c ? 3 * BAND : 0;
        const samples: Sample[] = list.map((tag, i) => ({
          chamber,
          tag: tag.name,
          ts: Math.round(t),
          q: 'good',
          value:
            tag.role === 'alarm' || tag.door
              ? false
              : tag.name === 'co2'
                ? 420 + off
                : tag.name === 'co2_setpoint'
                  ? 420
                  : i + (seq % 7) / 100,
        }));
        const text = encodeData('gw', seq++, chamber, samples);
        const before = withEngine ? raisedSeen() : 0;
        const w0 = performance.now();
        const parsed = DataMessage.safeParse(JSON.parse(text));
        if (!parsed.success) throw new Error('bench message does not validate');
        sink += parsed.data.samples.length;
        if (engine) {
          const e0 = performance.now();
          engine.accept(parsed.data);
          evalMs += performance.now() - e0;
        }
        messages++;
        if (withEngine && fault && raisedSeen() > before) {
          latencies.push(t - (fault.at + MIN_S * 1000) + (performance.now() - w0));
        }
      }
      while (engine && t >= nextTick) {
        now = nextTick;
        const before = raisedSeen();
        const w0 = performance.now();
        engine.tick();
        evalMs += performance.now() - w0;
        if (fault && raisedSeen() > before)
          latencies.push(nextTick - (fault.at + MIN_S * 1000) + (performance.now() - w0));
        nextTick += tickMs;
      }
      if (
        fault &&
        events.some(
          (e) =>
            e.event === 'raised' && e.alarm.chamber === plans[fault!.chamber]!.chamber && e.alarm.since >= fault!.at,
        )
      ) {
        // Raised: the fault ends; the next one starts later (after the clear).
        fault = undefined;
        nextFault = t + 5000 + random() * MIN_S * 1000;
      }
    }
    const used = process.cpuUsage(cpu0);
    engine?.stop();
    if (sink === 0) throw new Error('no samples went through the loop');
    return {
      cpuMs: (used.user + used.system) / 1000,
      evalMs,
      simulatedS: seconds,
      messages,
      events,
      latencies,
      faults,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

/** Exactly one raised and one cleared deviation event per fault, nothing else. */
function check(r: Run, label: string): void {
  const raised = r.events.filter((e) => e.event === 'raised');
  const cleared = r.events.filter((e) => e.event === 'cleared');
  const wrong = r.events.filter((e) => e.alarm.class !== 'deviation' || e.alarm.tag !== 'co2');
  if (wrong.length) throw new Error(`${label}: unexpected alarm ${wrong[0]!.alarm.key} (${wrong[0]!.alarm.message})`);
  // The last fault may still be active at the end of the stream.
  if (raised.length !== r.faults || cleared.length < r.faults - 1 || cleared.length > r.faults)
    throw new Error(`${label}: ${r.faults} faults gave ${raised.length} raised and ${cleared.length} cleared events`);
  if (r.latencies.length !== r.faults)
    throw new Error(`${label}: ${r.latencies.length} latencies for ${r.faults} faults`);
  if (r.faults < 3) throw new Error(`${label}: only ${r.faults} faults injected; run longer (OCTOPUS_BENCH_SECONDS)`);
}

export async function benchAlarms(): Promise<{ name: string; lines: string[]; summary: BenchSummary }> {
  const seconds = Number(process.env.OCTOPUS_BENCH_SECONDS ?? 240);
  const lines: string[] = [];
  const rows: Array<{ rate: number; share: number; base: number; p50: number; p99: number; faults: number }> = [];
  for (const rate of [1, 100]) {
    // At 100× the stream is 100 times denser: fewer simulated seconds give as many messages.
    const s = rate === 1 ? seconds : Math.max(60, Math.round(seconds / 5));
    const base = replay(s, rate, false);
    const eng = replay(s, rate, true);
    check(eng, `${rate}× rate`);
    const share = eng.cpuMs / (s * 1000);
    const baseShare = base.cpuMs / (s * 1000);
    // Time inside the engine (accept + tick) per stream second; the loop difference is printed too (noisy at 1 Hz).
    const evalShare = eng.evalMs / (s * 1000);
    rows.push({
      rate,
      share: evalShare,
      base: baseShare,
      p50: pct(eng.latencies, 50),
      p99: pct(eng.latencies, 99),
      faults: eng.faults,
    });
    lines.push(
      `${rate === 1 ? 'facility (1 Hz)' : `${rate}× rate`}: ${CHAMBERS} chambers × ${TAGS} tags, ${s} s of stream, ${eng.messages.toLocaleString('en')} messages; ` +
        `evaluation (engine accept + tick) ${(evalShare * 100).toFixed(3)} % of a core; loop with engine ${(share * 100).toFixed(2)} %, without ${(baseShare * 100).toFixed(2)} %; ` +
        `latency beyond min_duration p50 ${(pct(eng.latencies, 50) / 1000).toFixed(2)} s, p99 ${(pct(eng.latencies, 99) / 1000).toFixed(2)} s over ${eng.faults} faults (${eng.events.length} events checked)`,
    );
  }
  const facility = rows[0]!;
  const fast = rows[1]!;
  const ratio = (facility.base + facility.share) / facility.base;
  const ok = facility.share < 0.05 && facility.p99 < 2000 && fast.p99 < 2000;
  lines.push(
    `ratio (loop with engine / baseline loop) at 1 Hz: ${ratio.toFixed(2)}x; at 100×: ${((fast.base + fast.share) / fast.base).toFixed(2)}x`,
  );
  lines.push(
    `goal: evaluation < 5 % of a core at 1 Hz, latency p99 < 2 s beyond min_duration: ${ok ? 'ok' : 'MISSED'}`,
  );
  return {
    name: 'alarms',
    lines,
    summary: {
      figure: `eval ${(facility.share * 100).toFixed(3)} % core @1 Hz, ${(fast.share * 100).toFixed(2)} % @100×; p99 ${(facility.p99 / 1000).toFixed(2)} s / ${(fast.p99 / 1000).toFixed(2)} s`,
      baseline: `loop ${(facility.base * 100).toFixed(2)} % / ${(fast.base * 100).toFixed(1)} % core`,
      ratio: `${ratio.toFixed(2)}x`,
      goal: '< 5 % core, p99 < 2 s',
      ok,
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await benchAlarms();
  for (const l of r.lines) console.log(l);
}
