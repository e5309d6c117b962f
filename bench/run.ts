/**
 * Runs the benchmarks in sequence and prints a summary table (figure, baseline measured in
 * the same run, ratio, goal). Optional names run a subset:
 *
 *   npm run bench                    (all, in this order: modbus, publish, influx, netcdf, verify, fidelity, derived, dashboards, webhooks, alarms, opcua)
 *   npm run bench -- modbus opcua
 *
 * OCTOPUS_BENCH_SECONDS is passed through to every bench (each has its own default).
 * Each bench runs in its own child process (this file with --child <name>, calling the
 * bench's exported function) so that one bench's heap does not inflate the next one's
 * RSS figure; --in-process runs them all in this process instead.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { benchModbus, type BenchSummary } from './modbus.ts';

interface BenchResult {
  name: string;
  lines: string[];
  summary?: BenchSummary;
}

interface Bench {
  name: string;
  run(): Promise<BenchResult>;
  /** Pulls the table row out of a bench's printed lines when it returns no summary. */
  summarise?(lines: string[]): BenchSummary;
}

const grab = (lines: string[], re: RegExp): string | undefined => {
  for (const l of lines) {
    const m = re.exec(l);
    if (m) return m[1];
  }
  return undefined;
};

// publish.ts and opcua.ts are imported lazily so that a subset does not load the others'
// dependencies (node-opcua is slow to load).
const BENCHES: Bench[] = [
  { name: 'modbus', run: benchModbus },
  {
    name: 'publish',
    run: async () => (await import('./publish.ts')).benchPublish(),
    summarise: (lines) => {
      const figure = grab(lines, /spool \+ MQTT: ([\d,.]+ samples\/s)/);
      const goal = grab(lines, /\(goal (≥ [\d,.]+)/);
      const ratio = grab(lines, /^ratio: ([\d.]+x)/);
      return {
        figure: figure ?? '?',
        baseline: grab(lines, /^naive[^:]*: ([\d,.]+ samples\/s)/) ?? '?',
        ratio: ratio ?? '?',
        goal: goal ? `${goal} samples/s` : '?',
        ok: lines.some((l) => l.startsWith('spool + MQTT') && /: ok\)/.test(l)),
      };
    },
  },
  { name: 'influx', run: async () => (await import('./influx.ts')).benchInflux() },
  { name: 'netcdf', run: async () => (await import('./netcdf.ts')).benchNetcdf() },
  { name: 'verify', run: async () => (await import('./verify.ts')).benchVerify() },
  { name: 'fidelity', run: async () => (await import('./fidelity.ts')).benchFidelity() },
  { name: 'derived', run: async () => (await import('./derived.ts')).benchDerived() },
  { name: 'dashboards', run: async () => (await import('./dashboards.ts')).benchDashboards() },
  { name: 'webhooks', run: async () => (await import('./webhooks.ts')).benchWebhooks() },
  { name: 'alarms', run: async () => (await import('./alarms.ts')).benchAlarms() },
  {
    name: 'opcua',
    run: async () => (await import('./opcua.ts')).benchOpcua(),
    summarise: (lines) => {
      const row = (mode: string) => lines.find((l) => l.startsWith(mode));
      const cpu = (l?: string) => (l ? /CPU ([\d.]+ %)/.exec(l)?.[1] : undefined);
      const rss = (l?: string) => (l ? /peak RSS (\d+ MB)/.exec(l)?.[1] : undefined);
      const sub = row('subscription');
      const poll = row('poll');
      const goals = lines.find((l) => /goal CPU/.test(l)) ?? '';
      const delivered = grab(lines, /changes delivered ([\d,]+\/[\d,]+)/);
      return {
        figure: sub ? `CPU ${cpu(sub) ?? '?'}, RSS ${rss(sub) ?? '?'}, changes ${delivered ?? '?'}` : '?',
        baseline: poll ? `CPU ${cpu(poll) ?? '?'}, RSS ${rss(poll) ?? '?'}` : '?',
        ratio: grab(lines, /ratio baseline\/subscription: CPU ([\d.]+x)/) ?? '?',
        goal: `every change, CPU ${grab([goals], /goal CPU (< [\d.]+ %)/) ?? '?'}, RSS ${grab([goals], /goal RSS (< [\d.]+ MB)/) ?? '?'}`,
        ok: goals !== '' && !/MISSED/.test(goals),
      };
    },
  },
];

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => [...(r[c] ?? '')].length)));
  const line = (r: string[]) =>
    r
      .map((cell, c) => cell + ' '.repeat(widths[c]! - [...cell].length))
      .join('  ')
      .trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
}

const SUMMARY = '@@bench-result ';

/** Runs one bench in-process and returns its result (child side prints it for the parent). */
async function runHere(b: Bench): Promise<BenchResult> {
  const r = await b.run();
  return { name: r.name, lines: r.lines, summary: r.summary ?? b.summarise?.(r.lines) };
}

/** Runs one bench in a child process; its lines are echoed as they come. */
function runIsolated(b: Bench): Promise<BenchResult> {
  const runTs = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
  const proc = spawn(process.execPath, [runTs, fileURLToPath(import.meta.url), '--child', b.name], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let result: BenchResult | undefined;
  let error = '';
  createInterface({ input: proc.stdout }).on('line', (l) => {
    if (l.startsWith(SUMMARY)) result = JSON.parse(l.slice(SUMMARY.length)) as BenchResult;
    else if (l.startsWith('FAILED: ')) error ||= l.slice('FAILED: '.length);
    else console.log(l);
  });
  return new Promise((resolve, reject) => {
    proc.once('close', (code, signal) => {
      if (result) resolve(result);
      else reject(new Error(error || `bench process exited (${code ?? signal}) without a result`));
    });
  });
}

async function child(name: string): Promise<number> {
  const b = BENCHES.find((x) => x.name === name);
  if (!b) return 2;
  try {
    const r = await runHere(b);
    for (const l of r.lines) console.log(l);
    console.log(SUMMARY + JSON.stringify(r));
    return 0;
  } catch (err) {
    console.log(`FAILED: ${((err as Error).message ?? String(err)).split('\n')[0]}`);
    console.error((err as Error).stack ?? String(err));
    return 1;
  }
}

async function main(): Promise<number> {
  const childAt = process.argv.indexOf('--child');
  if (childAt >= 0) return child(process.argv[childAt + 1] ?? '');
  const inProcess = process.argv.includes('--in-process');
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = wanted.filter((w) => !BENCHES.some((b) => b.name === w));
  if (unknown.length) {
    console.error(`unknown bench ${unknown.join(', ')}; known: ${BENCHES.map((b) => b.name).join(', ')}`);
    return 2;
  }
  const selected = wanted.length ? BENCHES.filter((b) => wanted.includes(b.name)) : BENCHES;
  const rows: string[][] = [['bench', 'figure', 'baseline (same run)', 'ratio', 'goal', 'result']];
  let failed = 0;
  for (const b of selected) {
    console.log(`== ${b.name}`);
    const t0 = performance.now();
    try {
      const r = inProcess ? await runHere(b) : await runIsolated(b);
      if (inProcess) for (const l of r.lines) console.log(l);
      const s = r.summary ?? { figure: '?', baseline: '?', ratio: '?', goal: '?', ok: false };
      if (!s.ok) failed++;
      rows.push([b.name, s.figure, s.baseline, s.ratio, s.goal, s.ok ? 'ok' : 'MISSED']);
    } catch (err) {
      failed++;
      console.log(`FAILED: ${inProcess ? ((err as Error).stack ?? String(err)) : (err as Error).message}`);
      rows.push([
        b.name,
        '-',
        '-',
        '-',
        '-',
        `FAILED: ${((err as Error).message ?? String(err)).split('\n')[0]!.slice(0, 60)}`,
      ]);
    }
    console.log(`(${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
  }
  console.log('== summary');
  for (const l of table(rows)) console.log(l);
  return failed ? 1 : 0;
}

process.exit(await main());
