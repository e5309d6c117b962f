/**
 * Child process for the crash test: appends records to a netCDF file without end
 * (or `count` records, then closes), flushing every 200 records and saying so.
 *
 *   node bin/run-ts.js test/support/netcdf-crash-writer.ts FILE create|resume [count]
 *
 * Record k: time = T0 + k (s), v[c] = k + c / 2, big enough buffers being written
 * between flushes so that a kill lands on records beyond numrecs.
 */
import { NetcdfWriter, type NcSchema } from '../../src/netcdf/writer.ts';

export const CRASH_T0 = 1_700_000_000;
export const crashSchema: NcSchema = {
  globalAttributes: { title: 'crash test' },
  dimensions: [
    { name: 'time', size: 'unlimited' },
    { name: 'chamber', size: 2 },
  ],
  variables: [
    {
      name: 'time',
      type: 'double',
      dims: ['time'],
      attributes: { units: 'seconds since 1970-01-01 00:00:00', calendar: 'standard' },
    },
    { name: 'v', type: 'float', dims: ['time', 'chamber'], attributes: { _FillValue: -1 } },
    { name: 'k', type: 'int', dims: ['time'] },
  ],
};

async function main(): Promise<void> {
  const [file, mode, countArg] = process.argv.slice(2);
  if (!file || (mode !== 'create' && mode !== 'resume'))
    throw new Error('usage: netcdf-crash-writer.ts FILE create|resume [count]');
  const w =
    mode === 'create'
      ? NetcdfWriter.create(file, crashSchema, { bufferBytes: 700 })
      : NetcdfWriter.resume(file, { bufferBytes: 700 });
  const count = countArg ? Number(countArg) : Infinity;
  let written = 0;
  console.log(`start ${w.recordCount}`);
  while (written < count) {
    const batch = Math.min(200, count - written);
    for (let i = 0; i < batch; i++) {
      const k = w.recordCount;
      w.appendRecords([{ time: CRASH_T0 + k, values: { v: [k, k + 0.5], k } }]);
    }
    written += batch;
    w.flush();
    console.log(`flushed ${w.committedRecords}`);
    await new Promise((r) => setImmediate(r));
  }
  w.close();
  console.log(`done ${w.committedRecords}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
