/**
 * `octopus verify` on a long run file: the completeness report (every value and quality
 * flag of the file read and classified, gaps collected) — time and peak RSS — against a
 * plain sequential read of the same file (1 MiB positional reads, nothing decoded)
 * measured in the same run.
 *
 * The file: OCTOPUS_BENCH_VERIFY_DAYS days (default 2; the figure is for 30) at
 * 1 Hz, OCTOPUS_BENCH_VERIFY_VARS float variables (default 100) × 1 chamber, each with
 * its `<var>_qc` byte (the QC contract: 0 good … 5 offline), written hour by hour with the
 * archive's writer; 1 % of the slots missing, one offline hour, one variable held.
 * Each measurement runs in a child process, so its peak RSS is its own.
 *
 *   node bin/run-ts.js bench/verify.ts
 *   OCTOPUS_BENCH_VERIFY_DAYS=30 node bin/run-ts.js bench/verify.ts
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetcdfWriter, type NcSchema } from '../src/netcdf/writer.ts';
import { computeCompleteness } from '../src/experiments/completeness.ts';
import type { BenchSummary } from './modbus.ts';

const HOUR = 3600;
const T0 = 1_714_564_800;
const FILL = 9.969209968386869e36;

function schema(nvars: number): NcSchema {
  const vars: NcSchema['variables'][number][] = [
    { name: 'time', type: 'double', dims: ['time'], attributes: { units: 'seconds since 1970-01-01 00:00:00' } },
  ];
  for (let i = 0; i < nvars; i++) {
    const name = `v${String(i).padStart(3, '0')}`;
    vars.push({
      name,
      type: 'float',
      dims: ['time', 'chamber'],
      attributes: { _FillValue: FILL, ancillary_variables: `${name}_qc` },
    });
    vars.push({
      name: `${name}_qc`,
      type: 'byte',
      dims: ['time', 'chamber'],
      attributes: {
        flag_values: { type: 'byte', value: [0, 1, 2, 3, 4, 5] },
        flag_meanings: 'good uncertain bad missing held offline',
      },
    });
  }
  return {
    globalAttributes: { title: 'verify bench', id: 'bench/r001' },
    dimensions: [
      { name: 'time', size: 'unlimited' },
      { name: 'chamber', size: 1 },
    ],
    variables: vars,
  };
}

function writeFile(path: string, days: number, nvars: number): void {
  const w = NetcdfWriter.create(path, schema(nvars), { version: 2, fsync: false, overwrite: true });
  const time = new Float64Array(HOUR);
  const vals = Array.from({ length: nvars }, () => new Float32Array(HOUR));
  const qcs = Array.from({ length: nvars }, () => new Int8Array(HOUR));
  for (let h = 0; h < days * 24; h++) {
    const offline = h === 5;
    for (let k = 0; k < HOUR; k++) {
      const slot = h * HOUR + k;
      time[k] = T0 + slot;
      for (let i = 0; i < nvars; i++) {
        const missing = offline || (slot * 7919 + i * 104729) % 100 === 0;
        vals[i]![k] = missing ? FILL : 20 + i * 0.01 + (slot % 600) / 600;
        qcs[i]![k] = offline ? 5 : missing ? 3 : i === 0 && k % 60 !== 0 ? 4 : 0;
      }
    }
    const values: Record<string, ArrayLike<number>> = {};
    for (let i = 0; i < nvars; i++) {
      const name = `v${String(i).padStart(3, '0')}`;
      values[name] = vals[i]!;
      values[`${name}_qc`] = qcs[i]!;
    }
    w.appendColumns({ time, values });
    w.flush();
  }
  w.close();
}

/** Child: one measurement; prints {seconds, maxrss_mb, ...}. */
function measure(what: 'verify' | 'read', path: string): void {
  const t = process.hrtime.bigint();
  let extra: Record<string, unknown> = {};
  if (what === 'verify') {
    const r = computeCompleteness(path);
    extra = { slots: r.slots, values: r.totals.expected, missing: r.totals.missing, held: r.totals.held };
  } else {
    const fd = openSync(path, 'r');
    const buf = Buffer.allocUnsafe(1 << 20);
    let pos = 0;
    let sum = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      sum = (sum + buf[n - 1]!) | 0;
      pos += n;
    }
    closeSync(fd);
    extra = { bytes: pos, sum };
  }
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  process.stdout.write(`${JSON.stringify({ seconds, maxrss_mb: process.resourceUsage().maxRSS / 1024, ...extra })}\n`);
}

function child(what: 'verify' | 'read', path: string): { seconds: number; maxrss_mb: number; [k: string]: unknown } {
  const r = spawnSync(
    process.execPath,
    [
      join(fileURLToPath(new URL('..', import.meta.url)), 'bin', 'run-ts.js'),
      fileURLToPath(import.meta.url),
      '--measure',
      what,
      path,
    ],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  if (r.status !== 0) throw new Error(`bench child ${what} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { seconds: number; maxrss_mb: number };
}

export async function benchVerify(): Promise<{ name: string; lines: string[]; summary: BenchSummary }> {
  const days = Number(process.env.OCTOPUS_BENCH_VERIFY_DAYS ?? 2);
  const nvars = Number(process.env.OCTOPUS_BENCH_VERIFY_VARS ?? 100);
  const dir = mkdtempSync(join(tmpdir(), 'octopus-bench-verify-'));
  const lines: string[] = [];
  const say = (l: string) => {
    lines.push(l);
    process.stdout.write(`${l}\n`);
  };
  try {
    const path = join(dir, 'run.nc');
    const w0 = Date.now();
    writeFile(path, days, nvars);
    const size = statSync(path).size;
    say(
      `verify bench: ${days} day(s) × 1 Hz × ${nvars} variables (+ qc) × 1 chamber: ${(size / 2 ** 20).toFixed(0)} MiB written in ${((Date.now() - w0) / 1000).toFixed(1)} s`,
    );
    const read = child('read', path);
    const verify = child('verify', path);
    const perSec = Number(verify.values) / verify.seconds;
    say(
      `  plain sequential read : ${read.seconds.toFixed(2)} s (${(size / 2 ** 20 / read.seconds).toFixed(0)} MiB/s), peak RSS ${read.maxrss_mb.toFixed(0)} MB`,
    );
    say(
      `  octopus verify report : ${verify.seconds.toFixed(2)} s (${(perSec / 1e6).toFixed(1)} M values/s, ${verify.values} values, ${verify.missing} missing, ${verify.held} held), peak RSS ${verify.maxrss_mb.toFixed(0)} MB`,
    );
    const per30 = (verify.seconds * 30) / days;
    say(`  extrapolated to 30 days: ${per30.toFixed(0)} s (goal < 60 s)`);
    const ratio = verify.seconds / read.seconds;
    return {
      name: 'verify',
      lines,
      summary: {
        figure: `${verify.seconds.toFixed(2)} s for ${days} d, ${verify.maxrss_mb.toFixed(0)} MB RSS`,
        baseline: `plain read ${read.seconds.toFixed(2)} s`,
        ratio: `${ratio.toFixed(1)}× the read time`,
        goal: '30 d < 60 s',
        ok: per30 < 60,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const argv = process.argv.slice(2);
if (argv[0] === '--measure') measure(argv[1] as 'verify' | 'read', argv[2]!);
else if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await benchVerify();
