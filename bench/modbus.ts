/**
 * Modbus polling: 16 units × 200 holding registers (a mix of float32, int32, scaled int16,
 * bits and uint16: 145 tags per unit) served by our Modbus TCP simulator in a child
 * process (its CPU is not counted), polled by the real driver (createModbusDriver, one
 * shared line from the pool, the merged read plan) at a short interval. Reports tags
 * decoded per second, requests per cycle (counted by the server), CPU (% of one core)
 * and RSS over the run, against a naive poller measured in the same run: one request per
 * tag through our client (connectModbus), no merging, as fast as the server answers.
 *
 *   node bin/run-ts.js bench/modbus.ts      (OCTOPUS_BENCH_SECONDS=10 per side by default;
 *                                            OCTOPUS_BENCH_MODBUS_INTERVAL_MS=10 by default)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ModbusChamber, ModbusOptions } from '../src/config/instance-schema.ts';
import { ModbusProfile, registerCount, type ModbusTag } from '../src/config/profile-schema.ts';
import { sleep } from '../src/core/backoff.ts';
import { createLogger } from '../src/core/log.ts';
import type { Sample } from '../src/core/sample.ts';
import { connectModbus } from '../src/drivers/modbus/client.ts';
import { createModbusDriver, decodeTag } from '../src/drivers/modbus/driver.ts';
import { ModbusLinePool } from '../src/drivers/modbus/line.ts';
import { startModbusServer } from '../src/sim/modbus-server.ts';
import { storeTag } from '../src/sim/modbus-chambers.ts';

const UNITS = 16;
const REGISTERS = 200;
const GOAL_RATIO = 5;
const MB = 2 ** 20;

// ---- the register map: 200 holding registers per unit -----------------------------

/**
 * 0..99 float32 ×50, 100..139 int32 ×20, 140..179 int16 (scale 0.1) ×40,
 * 180 bits 0..15 ×16 bools, 181..199 uint16 ×19 → 145 tags in 200 registers.
 */
function benchProfile(): ModbusProfile {
  const tags: Array<Record<string, unknown>> = [];
  const add = (name: string, address: number, type: string, extra: Record<string, unknown> = {}) =>
    tags.push({ name, address, type, description: `bench ${type} at ${address}`, ...extra });
  for (let i = 0; i < 50; i++) add(`f_${i}`, i * 2, 'float32');
  for (let i = 0; i < 20; i++) add(`l_${i}`, 100 + i * 2, 'int32');
  for (let i = 0; i < 40; i++) add(`s_${i}`, 140 + i, 'int16', { scale: 0.1 });
  for (let i = 0; i < 16; i++) add(`b_${i}`, 180, 'bool', { bit: i });
  for (let i = 0; i < 19; i++) add(`u_${i}`, 181 + i, 'uint16');
  const profile = ModbusProfile.parse({
    kind: 'modbus',
    vendor: 'bench',
    model: 'flat',
    description: 'bench register map',
    addressing: 'zero-based',
    tags,
  });
  const used = Math.max(...profile.tags.map((t) => t.address + Math.max(1, registerCount(t))));
  if (used !== REGISTERS) throw new Error(`bench profile spans ${used} registers, expected ${REGISTERS}`);
  return profile;
}

/** The engineering value each tag holds on each unit (the server stores it, the bench checks it). */
function expected(unit: number, tag: ModbusTag, i: number): number | boolean {
  switch (tag.type) {
    case 'float32':
      return Math.fround(unit * 100 + i + 0.25);
    case 'int32':
      return -(unit * 100_000 + i);
    case 'int16':
      return Number(((unit * 10 + i) / 10 - 50).toFixed(1));
    case 'bool':
      return ((unit + (tag.bit ?? 0)) & 1) === 1;
    default:
      return unit * 1000 + i;
  }
}

// ---- the server, in a child process -------------------------------------------------

/** Child mode: serve the register map, print READY <port>, answer "requests" on stdin. */
async function serve(): Promise<void> {
  const profile = benchProfile();
  const server = await startModbusServer({ port: 0, host: '127.0.0.1' });
  for (let u = 1; u <= UNITS; u++) {
    const banks = server.unit(u);
    profile.tags.forEach((t, i) => storeTag(banks, t, profile.defaults.order, expected(u, t, i)));
  }
  createInterface({ input: process.stdin }).on('line', (l) => {
    if (l.trim() === 'requests') process.stdout.write(`REQUESTS ${server.requests}\n`);
  });
  process.stdin.on('end', () => void server.close().then(() => process.exit(0)));
  process.stdout.write(`READY ${server.port}\n`);
}

interface ServerChild {
  port: number;
  requests(): Promise<number>;
  kill(): Promise<void>;
}

function startServerChild(timeoutMs = 30_000): Promise<ServerChild> {
  const runTs = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
  const proc: ChildProcess = spawn(process.execPath, [runTs, fileURLToPath(import.meta.url), '--serve'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const waiting: Array<(n: number) => void> = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`Modbus server process not ready after ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`Modbus server process exited (${code ?? signal}) before READY; stderr: ${stderr}`));
    });
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      const ready = /^READY (\d+)$/.exec(l);
      const reqs = /^REQUESTS (\d+)$/.exec(l);
      if (reqs) waiting.shift()?.(Number(reqs[1]));
      if (!ready) return;
      clearTimeout(timer);
      resolve({
        port: Number(ready[1]),
        requests: () =>
          new Promise<number>((res) => {
            waiting.push(res);
            proc.stdin!.write('requests\n');
          }),
        kill: async () => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
          await exited;
        },
      });
    });
  });
}

// ---- measurement ----------------------------------------------------------------------

interface Run {
  tagsPerS: number;
  cyclesPerS: number;
  requestsPerCycle: number;
  badSamples: number;
  mismatches: number;
  cpuPercent: number;
  /** CPU µs per decoded tag (this process only). */
  cpuUsPerTag: number;
  rssStartMb: number;
  rssEndMb: number;
  rssPeakMb: number;
}

/** Counts samples and checks each value against the register map. */
function checker(profile: ModbusProfile) {
  const index = new Map(profile.tags.map((t, i) => [t.name, { t, i }]));
  const state = { samples: 0, bad: 0, mismatches: 0, firstBad: '' };
  const check = (unit: number, s: Sample) => {
    state.samples++;
    if (s.q === 'bad') {
      state.bad++;
      state.firstBad ||= `${s.chamber}/${s.tag}: ${String(s.reason ?? '')}`;
      return;
    }
    const e = index.get(s.tag);
    const want = e && expected(unit, e.t, e.i);
    const ok =
      typeof want === 'number' && typeof s.value === 'number'
        ? Math.abs(want - s.value) <= Math.abs(want) * 1e-6
        : want === s.value;
    if (!ok) state.mismatches++;
  };
  return { state, check };
}

/** Samples RSS every 250 ms while `body` runs, and CPU/wall time around it. */
async function window(
  seconds: number,
  count: () => number,
  requests: () => Promise<number>,
): Promise<Omit<Run, 'badSamples' | 'mismatches'> & { cycles: number }> {
  const n0 = count();
  const r0 = await requests();
  const rssStart = process.memoryUsage().rss;
  let rssPeak = rssStart;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await sleep(250);
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const tags = count() - n0;
  const reqs = (await requests()) - r0;
  const rssEnd = process.memoryUsage().rss;
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return {
    tagsPerS: tags / (wallMs / 1000),
    cycles: 0,
    cyclesPerS: 0,
    requestsPerCycle: reqs,
    cpuPercent: (cpuMs / wallMs) * 100,
    cpuUsPerTag: (cpuMs * 1000) / Math.max(1, tags),
    rssStartMb: rssStart / MB,
    rssEndMb: rssEnd / MB,
    rssPeakMb: Math.max(rssPeak, rssEnd) / MB,
  };
}

/** The real driver: one per unit, all on one pooled line, polling at `intervalMs`. */
async function merged(server: ServerChild, seconds: number, intervalMs: number): Promise<Run & { planned: number }> {
  const profile = benchProfile();
  const pool = new ModbusLinePool();
  const log = createLogger('bench');
  const { state, check } = checker(profile);
  let batches = 0;
  const drivers = Array.from({ length: UNITS }, (_, k) => {
    const unit = k + 1;
    const chamber = ModbusChamber.parse({
      id: `c${unit}`,
      driver: 'modbus',
      profile: 'bench-flat',
      endpoint: `tcp://127.0.0.1:${server.port}`,
      interval_ms: intervalMs,
      modbus: { unit_id: unit },
    });
    const sink = {
      samples(s: Sample[]) {
        batches++;
        for (const x of s) check(unit, x);
      },
      status() {},
    };
    return createModbusDriver({ chamber, profile, tags: profile.tags }, { sink, log }, pool);
  });
  try {
    await Promise.all(drivers.map((d) => d.start()));
    await sleep(1000); // warm-up: JIT, socket buffers
    const b0 = batches;
    const w = await window(
      seconds,
      () => state.samples,
      () => server.requests(),
    );
    const cycles = (batches - b0) / UNITS;
    if (state.bad) throw new Error(`merged poll: ${state.bad} bad samples, e.g. ${state.firstBad}`);
    return {
      ...w,
      cyclesPerS: cycles / seconds,
      requestsPerCycle: w.requestsPerCycle / Math.max(1, cycles),
      badSamples: state.bad,
      mismatches: state.mismatches,
      planned: drivers.reduce((n, d) => n + (d.health().requestsPerCycle ?? 0), 0),
    };
  } finally {
    await Promise.all(drivers.map((d) => d.stop()));
    await pool.close();
  }
}

/** Naive: every tag of every unit read with its own request, back to back, no merging. */
async function naive(server: ServerChild, seconds: number): Promise<Run> {
  const profile = benchProfile();
  const { state, check } = checker(profile);
  const client = await connectModbus(`tcp://127.0.0.1:${server.port}`, ModbusOptions.parse({}));
  let stop = false;
  let cycles = 0;
  const loop = (async () => {
    while (!stop) {
      for (let unit = 1; unit <= UNITS && !stop; unit++) {
        const ts = Date.now();
        const out: Sample[] = [];
        for (const tag of profile.tags) {
          const words = await client.read(
            unit,
            tag.area ?? 'holding',
            tag.address,
            Math.max(1, registerCount(tag)),
            1000,
          );
          out.push({
            chamber: `c${unit}`,
            tag: tag.name,
            ts,
            value: decodeTag(tag, words, 0, tag.order ?? profile.defaults.order),
            q: 'good',
          });
        }
        for (const s of out) check(unit, s);
      }
      if (!stop) cycles++;
    }
  })();
  try {
    await sleep(1000); // warm-up
    const c0 = cycles;
    const w = await window(
      seconds,
      () => state.samples,
      () => server.requests(),
    );
    const n = cycles - c0;
    return {
      ...w,
      cyclesPerS: n / seconds,
      requestsPerCycle: UNITS * profile.tags.length,
      badSamples: state.bad,
      mismatches: state.mismatches,
    };
  } finally {
    stop = true;
    await loop;
    await client.close();
  }
}

export interface BenchSummary {
  figure: string;
  baseline: string;
  ratio: string;
  goal: string;
  ok: boolean;
}

export async function benchModbus(): Promise<{ name: string; lines: string[]; summary: BenchSummary }> {
  const seconds = Number(process.env.OCTOPUS_BENCH_SECONDS ?? 10);
  const intervalMs = Number(process.env.OCTOPUS_BENCH_MODBUS_INTERVAL_MS ?? 10);
  const tagsPerUnit = benchProfile().tags.length;
  const server = await startServerChild();
  try {
    const fast = await merged(server, seconds, intervalMs);
    const slow = await naive(server, seconds);
    const ratio = fast.tagsPerS / slow.tagsPerS;
    const n = (x: number) => Math.round(x).toLocaleString('en');
    const mem = (r: Run) =>
      `RSS ${r.rssStartMb.toFixed(0)} → ${r.rssEndMb.toFixed(0)} MB (peak ${r.rssPeakMb.toFixed(0)}, drift ${(r.rssEndMb - r.rssStartMb >= 0 ? '+' : '') + (r.rssEndMb - r.rssStartMb).toFixed(1)} MB)`;
    const checks = (r: Run) => `${r.badSamples} bad, ${r.mismatches} wrong values`;
    return {
      name: 'modbus',
      lines: [
        `${UNITS} units × ${REGISTERS} holding registers (${tagsPerUnit} tags each: float32, int32, scaled int16, bits, uint16), simulator in a child process, one TCP connection, ${seconds} s per side`,
        `merged (driver, line pool, read plan, interval ${intervalMs} ms): ${n(fast.tagsPerS)} tags/s, ${fast.cyclesPerS.toFixed(1)} cycles/s (of ${(1000 / intervalMs).toFixed(0)} scheduled), ${fast.requestsPerCycle.toFixed(1)} requests/cycle (plan: ${fast.planned}), CPU ${fast.cpuPercent.toFixed(1)} % of one core, ${fast.cpuUsPerTag.toFixed(2)} µs CPU/tag; ${checks(fast)}`,
        `  ${mem(fast)}`,
        `naive (one request per tag, no merging, back to back): ${n(slow.tagsPerS)} tags/s, ${slow.cyclesPerS.toFixed(2)} cycles/s, ${slow.requestsPerCycle} requests/cycle, CPU ${slow.cpuPercent.toFixed(1)} % of one core, ${slow.cpuUsPerTag.toFixed(2)} µs CPU/tag; ${checks(slow)}`,
        `  ${mem(slow)}`,
        `ratio merged/naive: ${ratio.toFixed(1)}x tags/s (goal ≥ ${GOAL_RATIO}x: ${ratio >= GOAL_RATIO ? 'ok' : 'MISSED'}), ${(slow.cpuUsPerTag / Math.max(1e-9, fast.cpuUsPerTag)).toFixed(1)}x less CPU per tag, ${(slow.requestsPerCycle / Math.max(1, fast.requestsPerCycle)).toFixed(0)}x fewer requests`,
      ],
      summary: {
        figure: `${n(fast.tagsPerS)} tags/s`,
        baseline: `${n(slow.tagsPerS)} tags/s`,
        ratio: `${ratio.toFixed(1)}x`,
        goal: `≥ ${GOAL_RATIO}x`,
        ok: ratio >= GOAL_RATIO && fast.mismatches === 0 && slow.mismatches === 0,
      },
    };
  } finally {
    await server.kill();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--serve')) {
    await serve();
  } else {
    const r = await benchModbus();
    console.log(`== ${r.name}`);
    for (const l of r.lines) console.log(l);
    process.exit(0);
  }
}
