/**
 * OPC UA benchmark: a simulator server in a child process (its CPU is not counted) with
 * 10,000 Double variables changing every second; the driver in this process subscribes
 * at 1 s for ~30 s. Reports this process's CPU (% of one core), RSS and samples/s against
 * the goal (< 30 % of one core, < 200 MB), and the same figures for the naive baseline
 * measured in the same run: poll mode reading all 10,000 nodes every second.
 *
 *   node bin/run-ts.js bench/opcua.ts        (OCTOPUS_BENCH_SECONDS=30 by default)
 */
import { pathToFileURL } from 'node:url';
import { OpcuaChamber } from '../src/config/instance-schema.ts';
import { OpcuaProfile } from '../src/config/profile-schema.ts';
import { createLogger } from '../src/core/log.ts';
import { sleep } from '../src/core/backoff.ts';
import type { Sample } from '../src/core/sample.ts';
import { createOpcuaDriver } from '../src/drivers/opcua/driver.ts';
import { freePort, eventually } from '../test/support/ports.ts';
import { startOpcuaChild } from '../test/support/opcua-child.ts';

const VARIABLES = 10_000;
const NS = 'urn:octopus:bench';
const GOAL_CPU_PERCENT = 30;
const GOAL_RSS_MB = 200;

interface Run {
  mode: 'subscription' | 'poll';
  setupS: number;
  samplesPerS: number;
  badSamples: number;
  cpuPercent: number;
  rssMb: number;
  rssBeforeMb: number;
  heapMb: number;
}

function benchProfile(): OpcuaProfile {
  return OpcuaProfile.parse({
    kind: 'opcua', vendor: 'bench', model: 'flat', description: '10,000 changing variables',
    tags: Array.from({ length: VARIABLES }, (_, i) => {
      const id = String(i).padStart(5, '0');
      return { name: `v${id}`, node: `nsu=${NS};s=Bench.V${id}`, type: 'Double', description: `variable ${id}` };
    }),
  });
}

async function measure(endpoint: string, mode: Run['mode'], seconds: number): Promise<Run> {
  const profile = benchProfile();
  const chamber = OpcuaChamber.parse({ id: 'bench', driver: 'opcua', profile: 'bench-flat', endpoint, interval_ms: 1000, opcua: { mode } });
  let count = 0;
  let bad = 0;
  const sink = {
    samples(s: Sample[]) {
      count += s.length;
      for (const x of s) if (x.q === 'bad') bad++;
    },
    status() {},
  };
  const driver = createOpcuaDriver({ chamber, profile, tags: profile.tags }, { sink, log: createLogger('bench') });
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  await driver.start();
  // Setup ends when every variable has delivered its first value.
  await eventually(() => count >= VARIABLES, `first ${VARIABLES} values (${mode})`, 120_000, 50);
  const setupS = (performance.now() - t0) / 1000;
  count = 0;
  bad = 0;
  let rss = process.memoryUsage().rss;
  let heap = process.memoryUsage().heapUsed;
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < seconds; i++) {
    await sleep(1000);
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed);
  }
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - w0;
  const received = count;
  await driver.stop();
  return {
    mode,
    setupS,
    samplesPerS: received / (wallMs / 1000),
    badSamples: bad,
    cpuPercent: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
    rssMb: rss / 1024 ** 2,
    rssBeforeMb: rssBefore / 1024 ** 2,
    heapMb: heap / 1024 ** 2,
  };
}

const fmt = (r: Run) =>
  `${r.mode.padEnd(12)} setup ${r.setupS.toFixed(1)} s, ${Math.round(r.samplesPerS)} samples/s (${r.badSamples} bad), CPU ${r.cpuPercent.toFixed(1)} % of one core, peak RSS ${r.rssMb.toFixed(0)} MB (${r.rssBeforeMb.toFixed(0)} MB before the driver started), peak heap ${r.heapMb.toFixed(0)} MB`;

export async function benchOpcua(): Promise<{ name: string; lines: string[] }> {
  const seconds = Number(process.env.OCTOPUS_BENCH_SECONDS ?? 30);
  const port = await freePort();
  const server = await startOpcuaChild(['--port', String(port), '--namespace', NS, '--count', String(VARIABLES), '--interval-ms', '1000'], 120_000);
  try {
    const sub = await measure(server.endpoint, 'subscription', seconds);
    const poll = await measure(server.endpoint, 'poll', Math.max(5, Math.round(seconds / 2)));
    const ok = (b: boolean) => (b ? 'ok' : 'MISSED');
    const cpuPerSample = (r: Run) => r.cpuPercent / Math.max(1, r.samplesPerS);
    return {
      name: 'opcua',
      lines: [
        `${VARIABLES} variables changing every 1 s, server in a child process, driver at 1 s for ${seconds} s`,
        fmt(sub),
        `  goal CPU < ${GOAL_CPU_PERCENT} % of one core: ${ok(sub.cpuPercent < GOAL_CPU_PERCENT)}; goal RSS < ${GOAL_RSS_MB} MB: ${ok(sub.rssMb < GOAL_RSS_MB)}`,
        `${fmt(poll)} (baseline: read all nodes every second)`,
        `  ratio baseline/subscription: CPU ${(poll.cpuPercent / Math.max(0.01, sub.cpuPercent)).toFixed(2)}x, CPU per sample ${(cpuPerSample(poll) / Math.max(1e-9, cpuPerSample(sub))).toFixed(2)}x`,
      ],
    };
  } finally {
    await server.kill();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchOpcua();
  console.log(`== ${r.name}`);
  for (const l of r.lines) console.log(l);
  process.exit(0);
}
