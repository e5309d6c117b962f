/**
 * NetCDF archive writer: throughput against netCDF-C, and memory over a long run.
 *
 * A simulated run of OCTOPUS_BENCH_NETCDF_DAYS days (default 30) at 1 Hz with 100 float
 * variables × 1 chamber (time double + 100 floats per record: ~1.06 GB for 30 days)
 * is written in hourly chunks of 3600 records twice, with the same values:
 *
 * - ours: NetcdfWriter.appendColumns + flush() per hour (flush = write, fdatasync,
 *   numrecs patch), close() rewriting the header;
 * - baseline: netCDF-C through python netCDF4 (Debian python3-netcdf4, /usr/bin/python3),
 *   NETCDF3_CLASSIC, fill off (its fastest mode), `var[h0:h1, :] = chunk` per variable
 *   per hour and `sync()` per hour (netCDF-C's sync does not fsync: ours does more).
 *
 * Throughput counts values written (records × 100) over the time spent in the writers'
 * calls (data generation excluded on both sides). RSS of this process (ours) at the
 * end of the first and of the last hour must stay flat and < 100 MB. At the end the
 * record sections of both files are compared byte for byte (first, middle, last hour).
 *
 *   node bin/run-ts.js bench/netcdf.ts              (OCTOPUS_BENCH_NETCDF_DAYS=30)
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { layoutOf } from '../src/collector/sinks/netcdf/header.ts';
import { NetcdfWriter, readNetcdfHeader, type NcSchema } from '../src/collector/sinks/netcdf/writer.ts';
import type { BenchSummary } from './modbus.ts';

const NVARS = 100;
const HOUR = 3600;
const T0 = 1_714_564_800; // 2024-05-01T12:00:00Z
const FILL = 9.969209968386869e36;

const PYTHON = String.raw`
import json, resource, sys, time
import numpy as np, netCDF4
path, hours, nvars, t0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ds = netCDF4.Dataset(path, 'w', format='NETCDF3_CLASSIC')
ds.set_fill_off()
ds.createDimension('time', None)
ds.createDimension('chamber', 1)
tv = ds.createVariable('time', 'f8', ('time',))
tv.units = 'seconds since 1970-01-01 00:00:00'
vs = [ds.createVariable('v%03d' % i, 'f4', ('time', 'chamber'), fill_value=np.float32(${FILL})) for i in range(nvars)]
base = np.arange(${HOUR}, dtype='f8')
spent = 0.0
for h in range(hours):
    tt = t0 + h * ${HOUR} + base
    phase = ((tt % 600) / 600)
    data = [(20 + i * 0.01 + phase).astype('f4').reshape(${HOUR}, 1) for i in range(nvars)]
    a = time.perf_counter()
    r0, r1 = h * ${HOUR}, (h + 1) * ${HOUR}
    tv[r0:r1] = tt
    for i, v in enumerate(vs):
        v[r0:r1, :] = data[i]
    ds.sync()
    spent += time.perf_counter() - a
a = time.perf_counter()
ds.close()
spent += time.perf_counter() - a
print(json.dumps({'seconds': spent, 'maxrss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
`;

function schema(): NcSchema {
  return {
    globalAttributes: { title: 'netcdf bench' },
    dimensions: [{ name: 'time', size: 'unlimited' }, { name: 'chamber', size: 1 }],
    variables: [
      { name: 'time', type: 'double', dims: ['time'], attributes: { units: 'seconds since 1970-01-01 00:00:00' } },
      ...Array.from({ length: NVARS }, (_, i) => ({
        name: `v${String(i).padStart(3, '0')}`, type: 'float' as const, dims: ['time', 'chamber'], attributes: { _FillValue: FILL },
      })),
    ],
  };
}

const mb = (b: number) => b / 1024 / 1024;

function ours(path: string, hours: number) {
  const rssBefore = process.memoryUsage().rss;
  const w = NetcdfWriter.create(path, schema(), { expectedBytes: hours * HOUR * (8 + 4 * NVARS) });
  const time = new Float64Array(HOUR);
  const cols: Record<string, Float32Array> = {};
  for (let i = 0; i < NVARS; i++) cols[`v${String(i).padStart(3, '0')}`] = new Float32Array(HOUR);
  const names = Object.keys(cols);
  let spent = 0;
  let rssFirst = 0;
  let rssPeak = 0;
  let lastLog = performance.now();
  for (let h = 0; h < hours; h++) {
    for (let s = 0; s < HOUR; s++) time[s] = T0 + h * HOUR + s;
    for (let i = 0; i < NVARS; i++) {
      const c = cols[names[i]!]!;
      for (let s = 0; s < HOUR; s++) c[s] = 20 + i * 0.01 + (time[s]! % 600) / 600;
    }
    const a = performance.now();
    w.appendColumns({ time, values: cols });
    w.flush();
    spent += performance.now() - a;
    const rss = process.memoryUsage().rss;
    if (h === 0) rssFirst = rss;
    rssPeak = Math.max(rssPeak, rss);
    if (performance.now() - lastLog > 10_000) {
      lastLog = performance.now();
      console.error(`  ours: hour ${h + 1}/${hours}, RSS ${mb(rss).toFixed(0)} MB`);
    }
  }
  const a = performance.now();
  w.close({ time_coverage_end: new Date((T0 + hours * HOUR - 1) * 1000).toISOString() });
  spent += performance.now() - a;
  return { seconds: spent / 1000, rssBeforeMb: mb(rssBefore), rssFirstMb: mb(rssFirst), rssLastMb: mb(process.memoryUsage().rss), rssPeakMb: mb(rssPeak), version: w.version };
}

type OursResult = ReturnType<typeof ours>;

/** Runs ours in a fresh process (node + tsx + the writer only), so that RSS is the writer's, not the bench harness's. */
function oursInChild(path: string, hours: number): OursResult {
  const runTs = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
  const r = spawnSync(process.execPath, [runTs, fileURLToPath(import.meta.url), '--ours', path, String(hours)], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`writer process failed (${r.status ?? r.signal})`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as OursResult;
}

/** Compares the bytes of record range [r, r+n) of two files. */
function sameRecords(a: string, b: string, r: number, n: number): boolean {
  const read = (p: string) => {
    const { recStart, recsize } = layoutOf(readNetcdfHeader(p));
    const buf = Buffer.alloc(n * recsize);
    const fd = openSync(p, 'r');
    try { readSync(fd, buf, 0, buf.length, recStart + r * recsize); } finally { closeSync(fd); }
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
    console.error('  writing the same with netCDF-C (python netCDF4)…');
    const py = spawnSync('/usr/bin/python3', ['-c', PYTHON, theirs, String(hours), String(NVARS), String(T0)], { encoding: 'utf8' });
    if (py.status !== 0) throw new Error(`python netCDF4 baseline failed: ${py.stderr}`);
    const base = JSON.parse(py.stdout.trim().split('\n').at(-1)!) as { seconds: number; maxrss_mb: number };
    const same = [0, Math.floor(hours / 2), hours - 1].every((h) => sameRecords(mine, theirs, h * HOUR, HOUR));
    const oursRate = values / o.seconds;
    const baseRate = values / base.seconds;
    const ratio = oursRate / baseRate;
    const flat = o.rssLastMb - o.rssFirstMb < 20 && o.rssPeakMb < 100;
    const ok = ratio >= 3 && flat && same;
    const n = (x: number) => Math.round(x).toLocaleString('en');
    const lines = [
      `run: ${days} days at 1 Hz, ${NVARS} float variables, ${n(hours * HOUR)} records, ${n(values)} values, file ${(statSync(mine).size / 1e9).toFixed(2)} GB (CDF-${o.version})`,
      `ours (NetcdfWriter, flush+fdatasync per hour): ${n(oursRate)} values/s (${o.seconds.toFixed(1)} s)`,
      `netCDF-C (python netCDF4, hourly chunks, fill off): ${n(baseRate)} values/s (${base.seconds.toFixed(1)} s, max RSS ${base.maxrss_mb.toFixed(0)} MB)`,
      `ratio: ${ratio.toFixed(2)}x (goal ≥ 3x: ${ratio >= 3 ? 'ok' : 'MISSED'})`,
      `RSS ours: before the writer ${o.rssBeforeMb.toFixed(0)} MB (node + tsx), first hour ${o.rssFirstMb.toFixed(0)} MB, last hour ${o.rssLastMb.toFixed(0)} MB, peak ${o.rssPeakMb.toFixed(0)} MB (goal flat, < 100 MB: ${flat ? 'ok' : 'MISSED'})`,
      `record bytes identical to netCDF-C's (first, middle, last hour): ${same ? 'yes' : 'NO'}`,
    ];
    return {
      name: 'netcdf',
      lines,
      summary: {
        figure: `${n(oursRate)} values/s, RSS ${o.rssFirstMb.toFixed(0)}→${o.rssLastMb.toFixed(0)} MB`,
        baseline: `${n(baseRate)} values/s (netCDF-C)`,
        ratio: `${ratio.toFixed(2)}x`,
        goal: '≥ 3x, RSS flat < 100 MB',
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
