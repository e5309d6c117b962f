/**
 * NetCDF archive: throughput of the real archive path against netCDF-C, and memory over
 * a long run.
 *
 * A simulated run of OCTOPUS_BENCH_NETCDF_DAYS days (default 30) at 1 Hz with 100 float
 * variables × 1 chamber goes through the path the collector runs: one data message per
 * second (100 samples) → RunFile.addMessage (the time grid: nearest slot, quality flags)
 * → the sample log (commitLog, as before each MQTT acknowledgement) → records → file,
 * flushed (write, fdatasync, numrecs, log emptied) every simulated hour. 1 % of the
 * samples arrive 1–600 s late (with a later message): those beyond the in-memory grid
 * are patched into records already in the file.
 *
 * Baseline, measured in the same run: netCDF-C through python netCDF4 (Debian
 * python3-netcdf4, /usr/bin/python3), NETCDF3_CLASSIC, fill off, the same variables and
 * quality flags, writing the final values (no late data to handle):
 * - hourly chunks per variable (`var[h0:h1, :] = chunk`, sync per hour), as a user would;
 * - record-major (`var[r, :] = value` for each record), measured over the first
 *   OCTOPUS_BENCH_NETCDF_RECORD_MAJOR_HOURS hours (default 1: it is slow).
 * Throughput counts values (records × 100) over the time spent in the writers' calls
 * (data generation excluded on both sides). RSS of our process at the end of the first
 * and of the last hour must stay flat and < 100 MB. The record sections of our file and
 * the chunked netCDF-C file are compared byte for byte (first, middle, last hour).
 *
 *   OCTOPUS_BENCH_NETCDF_DAYS=1 node bin/run-ts.js bench/netcdf.ts
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ArchiveVar, RunInfo } from '../src/collector/sinks/netcdf/cf.ts';
import { layoutOf } from '../src/netcdf/header.ts';
import { RunFile } from '../src/collector/sinks/netcdf/run-file.ts';
import { readNetcdfHeader } from '../src/netcdf/writer.ts';
import type { BenchSummary } from './modbus.ts';

const NVARS = 100;
const HOUR = 3600;
const T0 = 1_714_564_800; // 2024-05-01T12:00:00Z
const FILL = 9.969209968386869e36;
const name = (i: number) => `v${String(i).padStart(3, '0')}`;

const PYTHON = String.raw`
import json, resource, sys, time
import numpy as np, netCDF4
path, hours, nvars, t0, major = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == 'record'
ds = netCDF4.Dataset(path, 'w', format='NETCDF3_CLASSIC')
ds.set_fill_off()
ds.createDimension('time', None)
ds.createDimension('chamber', 1)
ds.createDimension('name_strlen', 2)
tv = ds.createVariable('time', 'f8', ('time',))
sn = ds.createVariable('station_name', 'S1', ('chamber', 'name_strlen'))
vs, qs = [], []
for i in range(nvars):
    vs.append(ds.createVariable('v%03d' % i, 'f4', ('time', 'chamber'), fill_value=np.float32(${FILL})))
    qs.append(ds.createVariable('v%03d_qc' % i, 'i1', ('time', 'chamber')))
sn[:] = netCDF4.stringtochar(np.array(['c1'], dtype='S2'))
base = np.arange(${HOUR}, dtype='f8')
zeros = np.zeros((${HOUR}, 1), dtype='i1')
spent = 0.0
for h in range(hours):
    tt = t0 + h * ${HOUR} + base
    phase = ((tt % 600) / 600)
    data = [(20 + i * 0.01 + phase).astype('f4').reshape(${HOUR}, 1) for i in range(nvars)]
    a = time.perf_counter()
    r0, r1 = h * ${HOUR}, (h + 1) * ${HOUR}
    if major:
        for r in range(${HOUR}):
            tv[r0 + r] = tt[r]
            for i in range(nvars):
                vs[i][r0 + r, 0] = data[i][r, 0]
                qs[i][r0 + r, 0] = 0
    else:
        tv[r0:r1] = tt
        for i in range(nvars):
            vs[i][r0:r1, :] = data[i]
            qs[i][r0:r1, :] = zeros
    ds.sync()
    spent += time.perf_counter() - a
a = time.perf_counter()
ds.close()
spent += time.perf_counter() - a
print(json.dumps({'seconds': spent, 'maxrss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
`;

const RUN: RunInfo = {
  id: 'bench/r001',
  title: 'netcdf bench',
  summary: 'bench',
  chambers: ['c1'],
  startMs: T0 * 1000,
  periodMs: 1000,
  creator_name: 'bench',
};
const VARS: ArchiveVar[] = Array.from({ length: NVARS }, (_, i) => ({
  name: name(i),
  description: `variable ${i}`,
  kind: 'float' as const,
}));

const mb = (b: number) => b / 1024 / 1024;

function ours(path: string, hours: number) {
  const rssBefore = process.memoryUsage().rss;
  let clock = T0 * 1000;
  const file = RunFile.open(path, RUN, VARS, {
    now: () => clock + 1000,
    expectedBytes: hours * HOUR * (8 + 8 * NVARS),
  });
  let seed = 42;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  /** Late samples by the second they are delivered with. */
  const late = new Map<number, Array<{ tag: string; ts: number; value: number; q: 'good' }>>();
  let spent = 0;
  let rssFirst = 0;
  let rssPeak = 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  let heapFirst = 0;
  let heapLast = 0;
  let lateCount = 0;
  let lastLog = performance.now();
  const total = hours * HOUR;
  for (let h = 0; h < hours; h++) {
    for (let s = 0; s < HOUR; s++) {
      const t = h * HOUR + s;
      const ts = (T0 + t) * 1000;
      const phase = ((T0 + t) % 600) / 600;
      const samples: Array<{ tag: string; ts: number; value: number; q: 'good' }> = [];
      for (let i = 0; i < NVARS; i++) {
        const sample = { tag: name(i), ts, value: 20 + i * 0.01 + phase, q: 'good' as const };
        if (random() < 0.01) {
          // 1–600 s late, but within the run (the bench's last message is the run's last second).
          const at = Math.min(total - 1, t + 1 + Math.floor(random() * 600));
          const list = late.get(at) ?? [];
          list.push(sample);
          late.set(at, list);
          lateCount++;
        } else samples.push(sample);
      }
      const extra = late.get(t);
      if (extra) {
        samples.push(...extra);
        late.delete(t);
      }
      clock = ts;
      const a = performance.now();
      file.addMessage('c1', samples, ts);
      file.commitLog(false);
      spent += performance.now() - a;
    }
    const a = performance.now();
    file.flush();
    spent += performance.now() - a;
    const rss = process.memoryUsage().rss;
    if (h === 0) rssFirst = rss;
    // The live heap after a full collection (outside the timed sections): flat when nothing leaks,
    // whatever size V8 gives its young generation under this allocation rate.
    if ((h === 0 || h === hours - 1) && gc) {
      gc();
      if (h === 0) heapFirst = process.memoryUsage().heapUsed;
      heapLast = process.memoryUsage().heapUsed;
    }
    rssPeak = Math.max(rssPeak, rss);
    if (performance.now() - lastLog > 10_000) {
      lastLog = performance.now();
      console.error(`  ours: hour ${h + 1}/${hours}, RSS ${mb(rss).toFixed(0)} MB`);
    }
  }
  const a = performance.now();
  file.close((T0 + total - 1) * 1000);
  spent += performance.now() - a;
  return {
    seconds: spent / 1000,
    rssBeforeMb: mb(rssBefore),
    rssFirstMb: mb(rssFirst),
    rssLastMb: mb(process.memoryUsage().rss),
    rssPeakMb: mb(rssPeak),
    heapFirstMb: mb(heapFirst),
    heapLastMb: mb(heapLast),
    version: file.writer.version,
    late: lateCount,
    patched: file.stats.patched,
  };
}

type OursResult = ReturnType<typeof ours>;

/** Runs ours in a fresh process (node + tsx + the writer only), so that RSS is the writer's, not the bench harness's. */
function oursInChild(path: string, hours: number): OursResult {
  const runTs = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', runTs, fileURLToPath(import.meta.url), '--ours', path, String(hours)],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  if (r.status !== 0) throw new Error(`writer process failed (${r.status ?? r.signal})`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as OursResult;
}

/** Compares the bytes of record range [r, r+n) of two files. */
function sameRecords(a: string, b: string, r: number, n: number): boolean {
  const read = (p: string) => {
    const { recStart, recsize } = layoutOf(readNetcdfHeader(p));
    const buf = Buffer.alloc(n * recsize);
    const fd = openSync(p, 'r');
    try {
      readSync(fd, buf, 0, buf.length, recStart + r * recsize);
    } finally {
      closeSync(fd);
    }
    return buf;
  };
  return read(a).equals(read(b));
}

export async function benchNetcdf(): Promise<{ name: string; lines: string[]; summary: BenchSummary }> {
  const days = Number(process.env.OCTOPUS_BENCH_NETCDF_DAYS ?? 30);
  const hours = Math.max(1, Math.round(days * 24));
  const values = hours * HOUR * NVARS;
  const dir = mkdtempSync(join(tmpdir(), 'octopus-bench-nc-'));
  try {
    const mine = join(dir, 'ours.nc');
    const theirs = join(dir, 'netcdf-c.nc');
    console.error(`  writing ${hours} h × ${HOUR} records × ${NVARS} variables (ours, in its own process)…`);
    const o = oursInChild(mine, hours);
    const python = (path: string, h: number, major: 'chunk' | 'record') => {
      const py = spawnSync('/usr/bin/python3', ['-c', PYTHON, path, String(h), String(NVARS), String(T0), major], {
        encoding: 'utf8',
      });
      if (py.status !== 0) throw new Error(`python netCDF4 baseline failed: ${py.stderr}`);
      return JSON.parse(py.stdout.trim().split('\n').at(-1)!) as { seconds: number; maxrss_mb: number };
    };
    console.error('  writing the same with netCDF-C (python netCDF4), hourly chunks per variable…');
    const base = python(theirs, hours, 'chunk');
    const majorHours = Math.min(hours, Math.max(1, Number(process.env.OCTOPUS_BENCH_NETCDF_RECORD_MAJOR_HOURS ?? 1)));
    console.error(`  writing ${majorHours} h record by record with netCDF-C…`);
    const major = python(join(dir, 'netcdf-c-records.nc'), majorHours, 'record');
    const majorRate = (majorHours * HOUR * NVARS) / major.seconds;
    const same = [0, Math.floor(hours / 2), hours - 1].every((h) => sameRecords(mine, theirs, h * HOUR, HOUR));
    const oursRate = values / o.seconds;
    const baseRate = Math.max(values / base.seconds, majorRate);
    const ratio = oursRate / baseRate;
    const flat = o.rssLastMb - o.rssFirstMb < 20 && o.rssPeakMb < 100;
    const ok = ratio >= 10 && flat && same;
    const n = (x: number) => Math.round(x).toLocaleString('en');
    const lines = [
      `run: ${days} days at 1 Hz, ${NVARS} float variables + quality flags, ${n(hours * HOUR)} records, ${n(values)} values, ${n(o.late)} samples 1–600 s late (${n(o.patched)} patched into written records), file ${(statSync(mine).size / 1e9).toFixed(2)} GB (CDF-${o.version})`,
      `ours (archive path: messages → grid → sample log → records → file, flush+fdatasync per hour): ${n(oursRate)} values/s (${o.seconds.toFixed(1)} s)`,
      `netCDF-C (python netCDF4, hourly chunks per variable, fill off): ${n(values / base.seconds)} values/s (${base.seconds.toFixed(1)} s, max RSS ${base.maxrss_mb.toFixed(0)} MB)`,
      `netCDF-C (python netCDF4, record-major, ${majorHours} h): ${n(majorRate)} values/s (${major.seconds.toFixed(1)} s)`,
      `ratio vs the faster netCDF-C pattern: ${ratio.toFixed(2)}x (goal ≥ 10x: ${ratio >= 10 ? 'ok' : 'MISSED'})`,
      `RSS ours: before the writer ${o.rssBeforeMb.toFixed(0)} MB (node + tsx), first hour ${o.rssFirstMb.toFixed(0)} MB, last hour ${o.rssLastMb.toFixed(0)} MB, peak ${o.rssPeakMb.toFixed(0)} MB (goal flat, < 100 MB: ${flat ? 'ok' : 'MISSED'}); live heap after a full GC: first hour ${o.heapFirstMb.toFixed(1)} MB, last hour ${o.heapLastMb.toFixed(1)} MB`,
      `record bytes identical to netCDF-C's (first, middle, last hour): ${same ? 'yes' : 'NO'}`,
    ];
    return {
      name: 'netcdf',
      lines,
      summary: {
        figure: `${n(oursRate)} values/s, RSS ${o.rssFirstMb.toFixed(0)}→${o.rssLastMb.toFixed(0)} MB`,
        baseline: `${n(baseRate)} values/s (netCDF-C, faster pattern)`,
        ratio: `${ratio.toFixed(2)}x`,
        goal: '≥ 10x, RSS flat < 100 MB',
        ok,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}` && process.argv[2] === '--ours') {
  console.log(JSON.stringify(ours(process.argv[3]!, Number(process.argv[4]))));
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchNetcdf();
  for (const l of r.lines) console.log(l);
  process.exit(r.summary.ok ? 0 : 1);
}
