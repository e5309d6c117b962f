/**
 * OPC UA benchmark: a simulator server in a child process (its CPU is not counted) with
 * 10,000 Double variables changing every second; the driver subscribes at 1 s for ~30 s.
 * Reports the driver process's CPU (% of one core), RSS and samples/s against the goal
 * (< 30 % of one core, < 200 MB), and checks that every change arrives: the server sets
 * variable i to i + tick/10 at each tick, so each delivered value names its tick, and
 * every (variable, tick) in the measured window is counted (delivered / expected,
 * duplicates). The naive baseline, poll mode reading all 10,000 nodes every second, runs
 * for the same duration. Each mode runs in a fresh child process of its own, so neither
 * inherits the other's heap.
 *
 *   node bin/run-ts.js bench/opcua.ts        (OCTOPUS_BENCH_SECONDS=30 by default)
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
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
  /** Server ticks in the measured window, and the (variable, tick) changes of those ticks that arrived. */
  ticks: number;
  expectedChanges: number;
  deliveredChanges: number;
  duplicateChanges: number;
  cpuPercent: number;
  rssMb: number;
  rssBeforeMb: number;
  heapMb: number;
}

function benchProfile(): OpcuaProfile {
  return OpcuaProfile.parse({
    kind: 'opcua',
    vendor: 'bench',
    model: 'flat',
    description: '10,000 changing variables',
    tags: Array.from({ length: VARIABLES }, (_, i) => {
      const id = String(i).padStart(5, '0');
      return { name: `v${id}`, node: `nsu=${NS};s=Bench.V${id}`, type: 'Double', description: `variable ${id}` };
    }),
  });
}

async function measure(endpoint: string, mode: Run['mode'], seconds: number): Promise<Run> {
  const profile = benchProfile();
  const chamber = OpcuaChamber.parse({
    id: 'bench',
    driver: 'opcua',
    profile: 'bench-flat',
    endpoint,
    interval_ms: 1000,
    opcua: { mode },
  });
  const index = new Map(profile.tags.map((t, i) => [t.name, i]));
  const last = new Float64Array(VARIABLES).fill(-1); // the latest tick seen per variable
  let maxTick = -1;
  let count = 0;
  let bad = 0;
  // the window counts ticks in (fromTick, toTick]
  let fromTick = Infinity;
  let toTick = Infinity;
  let delivered = 0;
  let duplicates = 0;
  const sink = {
    samples(s: Sample[]) {
      count += s.length;
      for (const x of s) {
        if (x.q === 'bad' || typeof x.value !== 'number') {
          bad++;
          continue;
        }
        const i = index.get(x.tag)!;
        const tick = Math.round((x.value - i) * 10);
        if (tick > maxTick) maxTick = tick;
        if (tick > fromTick && tick <= toTick) {
          if (tick > last[i]!) delivered++;
          else duplicates++;
        }
        if (tick > last[i]!) last[i] = tick;
      }
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
  fromTick = maxTick;
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
  toTick = maxTick;
  // the last tick's notifications may still be on their way: wait (bounded) until every
  // variable has reported it or a later one
  await eventually(
    () => last.every((t) => t >= toTick),
    `tick ${toTick} from every variable (${mode})`,
    10_000,
    100,
  ).catch(() => undefined);
  await driver.stop();
  return {
    mode,
    setupS,
    samplesPerS: received / (wallMs / 1000),
    badSamples: bad,
    ticks: toTick - fromTick,
    expectedChanges: VARIABLES * (toTick - fromTick),
    deliveredChanges: delivered,
    duplicateChanges: duplicates,
    cpuPercent: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
    rssMb: rss / 1024 ** 2,
    rssBeforeMb: rssBefore / 1024 ** 2,
    heapMb: heap / 1024 ** 2,
  };
}

const RESULT = '@@opcua-run ';

/** Runs one mode in a fresh child process (this file with --measure), so its memory starts clean. */
function measureInChild(endpoint: string, mode: Run['mode'], seconds: number): Promise<Run> {
  const runTs = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
  const proc = spawn(
    process.execPath,
    [runTs, fileURLToPath(import.meta.url), '--measure', mode, endpoint, String(seconds)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let result: Run | undefined;
  createInterface({ input: proc.stdout }).on('line', (l) => {
    if (l.startsWith(RESULT)) result = JSON.parse(l.slice(RESULT.length)) as Run;
  });
  return new Promise((resolve, reject) => {
    proc.once('close', (code, signal) =>
      result ? resolve(result) : reject(new Error(`${mode} measurement exited (${code ?? signal}) without a result`)),
    );
  });
}

const pct = (r: Run) => (r.expectedChanges ? (100 * r.deliveredChanges) / r.expectedChanges : 0);
const changes = (r: Run) =>
  `changes delivered ${r.deliveredChanges.toLocaleString('en')}/${r.expectedChanges.toLocaleString('en')} (${pct(r).toFixed(3)} %, ${r.ticks} ticks), ${r.duplicateChanges} repeated`;
const fmt = (r: Run) =>
  `${r.mode.padEnd(12)} setup ${r.setupS.toFixed(1)} s, ${Math.round(r.samplesPerS)} samples/s (${r.badSamples} bad), CPU ${r.cpuPercent.toFixed(1)} % of one core, peak RSS ${r.rssMb.toFixed(0)} MB (${r.rssBeforeMb.toFixed(0)} MB before the driver started), peak heap ${r.heapMb.toFixed(0)} MB`;

export async function benchOpcua(): Promise<{ name: string; lines: string[] }> {
  const seconds = Number(process.env.OCTOPUS_BENCH_SECONDS ?? 30);
  const port = await freePort();
  const server = await startOpcuaChild(
    ['--port', String(port), '--namespace', NS, '--count', String(VARIABLES), '--interval-ms', '1000'],
    120_000,
  );
  try {
    const sub = await measureInChild(server.endpoint, 'subscription', seconds);
    const poll = await measureInChild(server.endpoint, 'poll', seconds);
    // a window with no tick would make "every change" vacuous
    if (sub.ticks < seconds / 2 || sub.expectedChanges === 0)
      throw new Error(`the server ticked ${sub.ticks} times in ${seconds} s: no measurement`);
    const ok = (b: boolean) => (b ? 'ok' : 'MISSED');
    const cpuPerSample = (r: Run) => r.cpuPercent / Math.max(1, r.samplesPerS);
    const everyChange = sub.deliveredChanges === sub.expectedChanges && sub.badSamples === 0;
    return {
      name: 'opcua',
      lines: [
        `${VARIABLES} variables changing every 1 s, server in a child process, each mode in a fresh child process for ${seconds} s`,
        fmt(sub),
        `  ${changes(sub)}`,
        `  goal every change delivered: ${ok(everyChange)}; goal CPU < ${GOAL_CPU_PERCENT} % of one core: ${ok(sub.cpuPercent < GOAL_CPU_PERCENT)}; goal RSS < ${GOAL_RSS_MB} MB: ${ok(sub.rssMb < GOAL_RSS_MB)}`,
        `${fmt(poll)} (baseline: read all nodes every second)`,
        `  ${changes(poll)}`,
        `  ratio baseline/subscription: CPU ${(poll.cpuPercent / Math.max(0.01, sub.cpuPercent)).toFixed(2)}x, CPU per sample ${(cpuPerSample(poll) / Math.max(1e-9, cpuPerSample(sub))).toFixed(2)}x`,
      ],
    };
  } finally {
    await server.kill();
  }
}

const measureAt = process.argv.indexOf('--measure');
if (measureAt >= 0) {
  const [mode, endpoint, seconds] = process.argv.slice(measureAt + 1);
  const r = await measure(endpoint!, mode as Run['mode'], Number(seconds));
  console.log(RESULT + JSON.stringify(r));
  process.exit(0);
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchOpcua();
  console.log(`== ${r.name}`);
  for (const l of r.lines) console.log(l);
  process.exit(0);
}
