import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NetCDFReader } from 'netcdfjs';
import { RunFile } from '../../src/collector/sinks/netcdf/run-file.ts';
import type { ArchiveVar, RunInfo } from '../../src/collector/sinks/netcdf/cf.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-nc-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 0, 1);
const RUN: RunInfo = { id: 'e/r', title: 't', summary: 's', chambers: ['a', 'b'], startMs: T0, periodMs: 1000, creator_name: 'me' };
const VARS: ArchiveVar[] = [{ name: 'temp', description: 'Temperature', unit: 'degree_Celsius', standard_name: 'air_temperature', kind: 'float' }];
const opts = { reorderWindowMs: 0, now: () => T0 + 86_400_000, fsync: false };

describe('RunFile', () => {
  it('resumes a file left open (crash) at the next slot, counting samples for written slots as late', () => {
    const p = join(dir, 'r.nc');
    const a = RunFile.open(p, RUN, VARS, opts);
    for (let k = 0; k < 10; k++) a.add({ chamber: 'a', tag: 'temp', ts: T0 + k * 1000, value: k, q: 'good' });
    a.tick(); // slots 0..8 committed (slot 9 waits for a newer sample)
    // no close: the process "died" here
    const b = RunFile.open(p, RUN, VARS, opts);
    expect(b.grid.nextSlot).toBe(9);
    b.add({ chamber: 'a', tag: 'temp', ts: T0 + 5000, value: 99, q: 'good' });
    expect(b.stats.late).toBe(1);
    for (let k = 9; k < 12; k++) b.add({ chamber: 'b', tag: 'temp', ts: T0 + k * 1000, value: -k, q: 'good' });
    b.close(T0 + 12_000);
    const r = new NetCDFReader(readFileSync(p));
    expect(r.getDataVariable('time')).toEqual(Array.from({ length: 13 }, (_, k) => T0 / 1000 + k));
    const temp = r.getDataVariable('temp') as number[][];
    expect(temp.slice(0, 9).map((x) => x[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(temp.slice(9, 12).map((x) => x[1])).toEqual([-9, -10, -11]);
    expect(r.getAttribute('time_coverage_end')).toBe('2024-01-01T00:00:12Z');
  });

  it('refuses to resume a file of another layout', () => {
    const p = join(dir, 'other.nc');
    RunFile.open(p, RUN, VARS, opts).close(T0);
    expect(() => RunFile.open(p, { ...RUN, chambers: ['a', 'b', 'c'] }, VARS, opts)).toThrow(/does not match the run \(chamber count\)/);
    expect(() => RunFile.open(p, RUN, [{ ...VARS[0]!, kind: 'double' }], opts)).toThrow(/variable temp/);
  });
});
