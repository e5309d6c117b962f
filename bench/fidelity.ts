/**
 * Treatment-fidelity report of a long run: a 30-day × 1 Hz run file (3 chambers, air
 * temperature and CO2 with their setpoints and quality flags, the scripted excursions of
 * test/support/fidelity-fixture.ts repeated every hour) judged by Octopus
 * (computeFidelityAsync, as the archiver runs it at stop: chunk by chunk, yielding to
 * the event loop) against xarray + numpy doing the same computation, vectorised
 * (test/support/fidelity_check.py), in the same run. The results must agree (covered,
 * within, excursions, mean and RMS deviation) before any figure is printed.
 *
 * Printed: wall time and peak RSS of each (each in its own process), the ratio, and the
 * longest event-loop stall during Octopus's computation.
 *
 *   node bin/run-ts.js bench/fidelity.ts
 *   OCTOPUS_BENCH_FIDELITY_DAYS=2 node bin/run-ts.js bench/fidelity.ts
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ToleranceSource } from '../src/fidelity/plan.ts';
import { computeFidelityAsync } from '../src/fidelity/report.ts';
import type { FidelityReport } from '../src/fidelity/report-schema.ts';
import { FID_CHAMBERS, FID_TAGS, pythonFidelity, writeFidelityRun } from '../test/support/fidelity-fixture.ts';
import type { BenchSummary } from './modbus.ts';

const source: ToleranceSource = (c) =>
  FID_CHAMBERS.includes(c)
    ? {
        tags: FID_TAGS,
        profile: { air_temperature: { band: 0.5, min_duration_s: 300 }, co2: { band: 50, min_duration_s: 300 } },
        chamber: {},
      }
    : undefined;

/** Child: the report, timed, with the longest event-loop stall; prints {seconds, maxrss_mb, stall_ms, report}. */
async function measure(path: string): Promise<void> {
  let last = performance.now();
  let stall = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    stall = Math.max(stall, now - last);
    last = now;
  }, 5);
  const t = performance.now();
  const report = await computeFidelityAsync(path, { source });
  const seconds = (performance.now() - t) / 1000;
  clearInterval(timer);
  process.stdout.write(
    `${JSON.stringify({ seconds, maxrss_mb: process.resourceUsage().maxRSS / 1024, stall_ms: stall, report })}\n`,
  );
}

function child(path: string): { seconds: number; maxrss_mb: number; stall_ms: number; report: FidelityReport } {
  const r = spawnSync(
    process.execPath,
    [
      join(fileURLToPath(new URL('..', import.meta.url)), 'bin', 'run-ts.js'),
      fileURLToPath(import.meta.url),
      '--measure',
      path,
    ],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  if (r.status !== 0) throw new Error(`bench child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    seconds: number;
    maxrss_mb: number;
    stall_ms: number;
    report: FidelityReport;
  };
}

/** Both computations agree, or the bench fails before printing a figure. */
function agree(report: FidelityReport, py: ReturnType<typeof pythonFidelity>): number {
  let n = 0;
  for (const [c, cf] of Object.entries(report.chambers)) {
    for (const [m, v] of Object.entries(cf.variables)) {
      const p = py.chambers[c]?.[m];
      const close = (a: number | null, b: number | null) =>
        a === null ? b === null : b !== null && Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));
      if (
        !p ||
        v.covered !== p.covered ||
        v.within !== p.within ||
        v.excursions !== p.excursions.length ||
        !close(v.mean_deviation, p.mean) ||
        !close(v.rms_deviation, p.rms)
      ) {
        throw new Error(
          `fidelity bench: octopus and numpy disagree on ${c} ${m}: ${JSON.stringify({ covered: v.covered, within: v.within, excursions: v.excursions, mean: v.mean_deviation, rms: v.rms_deviation })} vs ${JSON.stringify(p && { ...p, excursions: p.excursions.length })}`,
        );
      }
      const longest = p.excursions.reduce<[number, number, number] | undefined>(
        (w, e) => (!w || e[2] > w[2] ? e : w),
        undefined,
      );
      if ((longest?.[2] ?? null) !== (v.longest_excursion?.duration_s ?? null))
        throw new Error(`fidelity bench: longest excursion of ${c} ${m} differs`);
      n++;
    }
  }
  return n;
}

export async function benchFidelity(): Promise<{ name: string; lines: string[]; summary: BenchSummary }> {
  const days = Number(process.env.OCTOPUS_BENCH_FIDELITY_DAYS ?? 30);
  const dir = mkdtempSync(join(tmpdir(), 'octopus-bench-fidelity-'));
  const lines: string[] = [];
  const say = (l: string) => {
    lines.push(l);
    process.stdout.write(`${l}\n`);
  };
  try {
    const path = join(dir, 'run.nc');
    const w0 = Date.now();
    writeFidelityRun(path, days * 24);
    const size = statSync(path).size;
    say(
      `fidelity bench: ${days} day(s) × 1 Hz × ${FID_CHAMBERS.length} chambers × 2 controlled variables (+ setpoints, qc): ${(size / 2 ** 20).toFixed(0)} MiB written in ${((Date.now() - w0) / 1000).toFixed(1)} s`,
    );
    const oct = child(path);
    const plan = Object.fromEntries(
      Object.entries(oct.report.chambers).map(([c, cf]) => [
        c,
        Object.entries(cf.variables).map(([m, v]) => ({
          measured: m,
          setpoint: v.setpoint,
          band: v.tolerance.band,
          min_duration_s: v.tolerance.min_duration_s,
          hysteresis: v.tolerance.hysteresis,
        })),
      ]),
    );
    const p0 = performance.now();
    const py = pythonFidelity(path, plan);
    const pySeconds = (performance.now() - p0) / 1000;
    const judged = agree(oct.report, py);
    const excursions = Object.values(oct.report.chambers).reduce(
      (n, c) => n + Object.values(c.variables).reduce((k, v) => k + v.excursions, 0),
      0,
    );
    say(
      `  results agree on ${judged} chamber × variable pairs (${oct.report.slots} slots each, ${excursions} excursions)`,
    );
    say(
      `  octopus report (async, chunked): ${oct.seconds.toFixed(2)} s, peak RSS ${oct.maxrss_mb.toFixed(0)} MB, longest event-loop stall ${oct.stall_ms.toFixed(0)} ms`,
    );
    say(
      `  xarray + numpy               : ${pySeconds.toFixed(2)} s (of which computing ${py.seconds.toFixed(2)} s, the rest loading), peak RSS ${py.maxrss_mb.toFixed(0)} MB`,
    );
    const ratio = pySeconds / oct.seconds;
    say(
      `ratio numpy/octopus time: ${ratio.toFixed(2)}x; peak RSS numpy/octopus: ${(py.maxrss_mb / oct.maxrss_mb).toFixed(1)}x`,
    );
    return {
      name: 'fidelity',
      lines,
      summary: {
        figure: `${oct.seconds.toFixed(1)} s for ${days} d, ${oct.maxrss_mb.toFixed(0)} MB RSS, stall ≤ ${oct.stall_ms.toFixed(0)} ms`,
        baseline: `xarray+numpy ${pySeconds.toFixed(1)} s, ${py.maxrss_mb.toFixed(0)} MB`,
        ratio: `${ratio.toFixed(2)}× numpy's time`,
        goal: 'agree with numpy; flat memory; no long stall',
        ok: oct.stall_ms < 500,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const argv = process.argv.slice(2);
if (argv[0] === '--measure') await measure(argv[1]!);
else if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await benchFidelity();
