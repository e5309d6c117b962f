/**
 * The run grid: every sample lands in its nearest slot whenever it arrives (in memory
 * or patched into the file), held values of on-change tags, offline slots, future
 * samples refused per chamber. Read back from the real file.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetCDFReader } from 'netcdfjs';
import { afterAll, describe, expect, it } from 'vitest';
import type { ArchiveVar, RunInfo } from '../../src/collector/sinks/netcdf/cf.ts';
import { QC, QC_FLAG_MEANINGS, QC_FLAG_VALUES } from '../../src/collector/sinks/netcdf/grid.ts';
import { RunFile, type RunFileOptions } from '../../src/collector/sinks/netcdf/run-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-grid-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 0, 1);
const RUN: RunInfo = {
  id: 'e/r',
  title: 't',
  summary: 's',
  chambers: ['c1', 'c2'],
  startMs: T0,
  periodMs: 1000,
  creator_name: 'me',
};
const VARS: ArchiveVar[] = [
  { name: 'temp', description: 'Temperature', unit: 'degree_Celsius', kind: 'float' },
  { name: 'door', description: 'Door open', kind: 'bool' },
];
let n = 0;
const NOW = T0 + 86_400_000;

function open(opts: RunFileOptions = {}, run = RUN): { rf: RunFile; path: string } {
  const path = join(dir, `g${n++}.nc`);
  return { rf: RunFile.open(path, run, VARS, { now: () => NOW, fsync: false, ...opts }), path };
}

/** A (time, chamber) variable as rows; fill values (float default fill, byte -127, which netcdfjs reads unsigned as 129) as null. */
function read(path: string, v: string): Array<Array<number | null>> {
  const r = new NetCDFReader(readFileSync(path));
  const rows = r.getDataVariable(v) as number[][];
  const isFill = (x: number) => !v.endsWith('_qc') && (x > 9e36 || x === -127 || x === 129 || Number.isNaN(x));
  // netcdfjs returns the 4-byte padding of a byte variable too: keep the two chambers.
  return rows.map((row) => Array.from(row, (x) => (isFill(x) ? null : x)).slice(0, 2));
}

describe('TimeGrid', () => {
  it('exports the qc contract: 0 good … 5 offline', () => {
    expect(QC).toEqual({ good: 0, uncertain: 1, bad: 2, missing: 3, held: 4, offline: 5 });
    expect(QC_FLAG_VALUES).toEqual([0, 1, 2, 3, 4, 5]);
    expect(QC_FLAG_MEANINGS).toBe('good uncertain bad missing held offline');
  });

  it('puts each sample on the nearest slot; gaps are fill with quality missing, never repeated', () => {
    const { rf, path } = open();
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 20, value: 20.5, q: 'good' });
    rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + 990, value: 21, q: 'uncertain' });
    rf.add({ chamber: 'c1', tag: 'door', ts: T0 + 2000, value: true, q: 'good' });
    rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + 2000, value: null, q: 'bad' });
    rf.close(T0 + 2000);
    expect(read(path, 'temp')).toEqual([
      [20.5, null],
      [null, 21],
      [null, null],
    ]);
    expect(read(path, 'temp_qc')).toEqual([
      [QC.good, QC.missing],
      [QC.missing, QC.uncertain],
      [QC.missing, QC.bad],
    ]);
    expect(read(path, 'door')).toEqual([
      [null, null],
      [null, null],
      [1, null],
    ]);
  });

  it('keeps the nearest sample; equal distance → the earlier sample; the same instant twice → the first received', () => {
    const { rf, path } = open();
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 400, value: 1, q: 'good' });
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 100, value: 2, q: 'good' });
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 - 300, value: 3, q: 'good' });
    rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + 1500, value: 10, q: 'good' }); // slot 2 (rounds up), 500 before slot 2? no: 1.5 → slot 2
    rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + 2500, value: 11, q: 'good' }); // slot 3
    rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + 3400, value: 12, q: 'good' }); // slot 3, 400 before
    rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + 4600, value: 13, q: 'good' }); // slot 5, 400 before
    rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + 5400, value: 14, q: 'good' }); // slot 5, 400 after: later one loses the tie
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 6000, value: 7, q: 'good' });
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 6000, value: 8, q: 'good' });
    rf.close(T0 + 6000);
    const t = read(path, 'temp');
    expect(t[0]![0]).toBe(2);
    expect(t[3]![1]).toBe(12);
    expect(t[5]![1]).toBe(13);
    expect(t[6]![0]).toBe(7);
  });

  it('patches a sample minutes late into a record already written to the file, with the nearest rule', () => {
    const { rf, path } = open({ cacheRecords: 8 });
    for (let k = 0; k < 300; k++) rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + k * 1000 + 300, value: k, q: 'good' });
    rf.flush();
    expect(rf.writer.recordCount).toBeGreaterThan(250);
    rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + 10_000, value: -10, q: 'good' }); // 290 s late
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 20_100, value: 999, q: 'good' }); // nearer than the 300 ms one
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 30_400, value: 555, q: 'good' }); // farther: ignored
    expect(rf.stats.patched).toBe(3);
    rf.close(T0 + 299_000);
    const t = read(path, 'temp');
    expect(t).toHaveLength(300);
    expect(t[10]).toEqual([10, -10]);
    expect(t[20]![0]).toBe(999);
    expect(t[30]![0]).toBe(30);
    expect(read(path, 'temp_qc')[10]).toEqual([QC.good, QC.good]);
  });

  it("the first and last slots are partial: only samples within the run start and stop are the run's, wherever the slot lives", () => {
    const onChange = (c: string) => c === 'c1';
    // The run started at T0 + 300 (slot 0 = T0, the slot it rounds to) and stops at T0 + 9_700 (last slot 10).
    const { rf, path } = open({ onChange, runStartMs: T0 + 300, cacheRecords: 4 });
    rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + 100, value: 1, q: 'good' }); // slot 0, before the start: not the run's
    rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + 450, value: 2, q: 'good' }); // slot 0, within the run
    rf.add({ chamber: 'c1', tag: 'door', ts: T0 + 200, value: true, q: 'good' }); // on-change, before the start: held from slot 0
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 9_600, value: 30, q: 'good' }); // last slot, within the run
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 10_050, value: 99, q: 'good' }); // after the stop, nearer: the stop is not known yet
    rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + 10_100, value: 98, q: 'good' });
    rf.tick(T0 + 20_000); // slot 10 is written to the file and leaves the cache
    rf.flush();
    expect(rf.writer.recordCount).toBeGreaterThan(10);
    expect(rf.grid.setEnd(T0 + 9_700)).toBe(2);
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 9_600, value: 30, q: 'good' }); // the run's own sample, given again
    expect(rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 10_050, value: 99, q: 'good' })).toBe(false);
    rf.close();
    const t = read(path, 'temp');
    expect(t).toHaveLength(11);
    expect(t[0]).toEqual([null, 2]);
    expect(read(path, 'door')[0]![0]).toBe(1);
    expect(read(path, 'door_qc')[0]![0]).toBe(QC.held);
    expect(t[10]).toEqual([30, null]);
    expect(read(path, 'temp_qc')[10]).toEqual([QC.good, QC.missing]);
  });

  it('refuses a sample dated in the future for its chamber only; nothing is committed or moved', () => {
    const { rf, path } = open({ now: () => T0 + 5000, maxAheadMs: 10_000 });
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 1000, value: 1, q: 'good' });
    expect(rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + 64_000, value: 9, q: 'good' })).toBe(false);
    expect(rf.stats.records).toBe(2);
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 2000, value: 2, q: 'good' });
    expect(rf.grid.clock('c2').future).toBe(1);
    expect(rf.grid.clock('c1').future).toBe(0);
    rf.close(T0 + 3000);
    expect(read(path, 'temp').map((r) => r[0])).toEqual([null, 1, 2, null]);
  });

  it('holds the last good value of an on-change tag while its chamber is online; bad ends it; offline slots are offline', () => {
    const onChange = (c: string) => c === 'c1';
    const { rf, path } = open({ onChange });
    rf.setStatus('c1', true, T0 - 10_000);
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 - 60_000, value: 20, q: 'good' }); // before the run: held from its start
    rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + 1000, value: 5, q: 'good' }); // polled: not held
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 3000, value: 21, q: 'good' });
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 6000, value: null, q: 'bad' });
    rf.setStatus('c1', false, T0 + 6000);
    rf.setStatus('c1', true, T0 + 9000);
    // after the reconnect, OPC UA sends the value again with its old source time
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 3000, value: 21, q: 'good' });
    rf.close(T0 + 11_000);
    const t = read(path, 'temp').map((r) => r[0]);
    const q = read(path, 'temp_qc').map((r) => r[0]);
    expect(q).toEqual([
      QC.held,
      QC.held,
      QC.held,
      QC.good,
      QC.held,
      QC.held,
      QC.bad,
      QC.offline,
      QC.offline,
      QC.held,
      QC.held,
      QC.held,
    ]);
    expect(t).toEqual([20, 20, 20, 21, 21, 21, null, null, null, 21, 21, 21]);
    const q2 = read(path, 'temp_qc').map((r) => r[1]);
    expect(q2.filter((x) => x === QC.held)).toHaveLength(0);
  });

  it('a value arriving late for an on-change tag is held forward to the next measured slot', () => {
    const { rf, path } = open({ onChange: () => true, cacheRecords: 4 });
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0, value: 1, q: 'good' });
    for (let k = 1; k < 40; k++) rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + k * 1000, value: k, q: 'good' });
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 30_000, value: 3, q: 'good' });
    rf.flush();
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 10_000, value: 2, q: 'good' }); // replayed late, slots 10..29 on disk
    rf.close(T0 + 39_000);
    const t = read(path, 'temp').map((r) => r[0]);
    expect(t.slice(0, 10)).toEqual(Array(10).fill(1));
    expect(t.slice(10, 30)).toEqual(Array(20).fill(2));
    expect(t.slice(30)).toEqual(Array(10).fill(3));
    const q = read(path, 'temp_qc').map((r) => r[0]);
    expect(q[10]).toBe(QC.good);
    expect(q[11]).toBe(QC.held);
  });

  it('holds the newest value after a slot even when an older, nearer sample keeps the slot itself', () => {
    const { rf, path } = open({ onChange: (c) => c === 'c1' });
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 1100, value: 18, q: 'good' }); // slot 1, 100 ms off
    rf.add({ chamber: 'c2', tag: 'temp', ts: T0 + 3000, value: 5, q: 'good' }); // slots 2..3 exist, c1 held 18
    rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + 1450, value: 18.5, q: 'good' }); // slot 1 too: farther, but newer
    rf.close(T0 + 3000);
    const t = read(path, 'temp').map((r) => r[0]);
    const q = read(path, 'temp_qc').map((r) => r[0]);
    expect(t.slice(1)).toEqual([18, 18.5, 18.5]);
    expect(q.slice(1)).toEqual([QC.good, QC.held, QC.held]);
  });
});

describe('RunFile', () => {
  it('replays its sample log after a crash: nothing given to it is lost', () => {
    const path = join(dir, 'crash.nc');
    const a = RunFile.open(path, RUN, VARS, { now: () => NOW, fsync: false });
    for (let k = 0; k < 10; k++) a.addMessage('c1', [{ tag: 'temp', ts: T0 + k * 1000, value: k, q: 'good' }], NOW);
    a.commitLog();
    a.tick();
    for (let k = 10; k < 15; k++) a.addMessage('c1', [{ tag: 'temp', ts: T0 + k * 1000, value: k, q: 'good' }], NOW);
    a.addMessage('c2', [{ tag: 'temp', ts: T0 + 2000, value: -2, q: 'good' }], NOW); // late
    a.commitLog();
    // no flush, no close: the process "died" here (its descriptors leak, as in a kill)
    const b = RunFile.open(path, RUN, VARS, { now: () => NOW, fsync: false });
    b.addMessage('c2', [{ tag: 'temp', ts: T0 + 15_000, value: -15, q: 'good' }], NOW);
    b.close(T0 + 15_000);
    const t = read(path, 'temp');
    expect(t.map((r) => r[0])).toEqual([...Array.from({ length: 15 }, (_, k) => k), null]);
    expect(t[2]![1]).toBe(-2);
    expect(t[15]![1]).toBe(-15);
  });

  it('replays a log cut in the middle of a frame (a crash while writing) up to the last whole frame', () => {
    const path = join(dir, 'torn.nc');
    const a = RunFile.open(path, RUN, VARS, { now: () => NOW, fsync: false });
    a.addMessage(
      'c1',
      [
        { tag: 'temp', ts: T0, value: 1, q: 'good' },
        { tag: 'door', ts: T0, value: true, q: 'good' },
      ],
      NOW,
    );
    a.addMessage('c2', [{ tag: 'temp', ts: T0 + 1000, value: null, q: 'bad' }], NOW);
    a.setStatus('c2', false, T0 + 2000);
    a.commitLog();
    const log = readFileSync(`${path}.log`);
    writeFileSync(`${path}.log`, Buffer.concat([log, log.subarray(0, 20)])); // a torn frame after the whole ones
    const b = RunFile.open(path, RUN, VARS, { now: () => NOW, fsync: false });
    b.close(T0 + 2000);
    expect(read(path, 'temp')).toEqual([
      [1, null],
      [null, null],
      [null, null],
    ]);
    expect(read(path, 'temp_qc')).toEqual([
      [QC.good, QC.missing],
      [QC.missing, QC.bad],
      [QC.missing, QC.offline],
    ]);
    expect(read(path, 'door')[0]).toEqual([1, null]);
  });

  it('records the clock offset and refused future samples of each chamber as global attributes', () => {
    const { rf, path } = open({ now: () => T0 + 40_000 });
    rf.addMessage('c1', [{ tag: 'temp', ts: T0 + 39_000, value: 1, q: 'good' }], T0 + 40_000);
    rf.addMessage('c2', [{ tag: 'temp', ts: T0 + 9_000, value: 1, q: 'good' }], T0 + 40_000); // 30 s behind
    rf.addMessage('c2', [{ tag: 'temp', ts: T0 + 90_000, value: 1, q: 'good' }], T0 + 40_000); // future
    rf.close(T0 + 40_000);
    const r = new NetCDFReader(readFileSync(path));
    expect(r.getAttribute('clock_offset_ms')).toEqual([1000, 31_000]);
    expect(r.getAttribute('future_samples_refused')).toEqual([0, 1]);
  });

  it('a resumed file keeps its own grid (record 0), whatever slot 0 the run would get now', () => {
    const { rf, path } = open();
    for (let k = 0; k < 3; k++) rf.add({ chamber: 'c1', tag: 'temp', ts: T0 + k * 1000, value: k, q: 'good' });
    rf.abandon();
    // The same run opened again with its slot 0 one period later (another rounding of the start).
    const again = RunFile.open(path, { ...RUN, startMs: T0 + 1000 }, VARS, { now: () => NOW, fsync: false });
    again.add({ chamber: 'c1', tag: 'temp', ts: T0 + 3000, value: 3, q: 'good' });
    again.close(T0 + 3000);
    const r = new NetCDFReader(readFileSync(path));
    expect(Array.from(r.getDataVariable('time') as number[])).toEqual([0, 1, 2, 3].map((k) => (T0 + k * 1000) / 1000));
    expect(read(path, 'temp').map((x) => x[0])).toEqual([0, 1, 2, 3]);
  });

  it('refuses to resume a file of another layout', () => {
    const p = join(dir, 'other.nc');
    RunFile.open(p, RUN, VARS, { fsync: false }).close(T0);
    expect(() => RunFile.open(p, { ...RUN, chambers: ['a', 'b', 'c'] }, VARS, { fsync: false })).toThrow(
      /does not match the run \(chamber count\)/,
    );
    expect(() => RunFile.open(p, RUN, [{ ...VARS[0]!, kind: 'double' }, VARS[1]!], { fsync: false })).toThrow(
      /variable temp/,
    );
  });
});
