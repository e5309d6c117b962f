import { describe, expect, it } from 'vitest';
import { QC, TimeGrid } from '../../src/collector/sinks/netcdf/grid.ts';
import type { NcRecord } from '../../src/collector/sinks/netcdf/writer.ts';

const T0 = Date.UTC(2024, 0, 1);

function grid(opts: { window?: number; endMs?: number } = {}) {
  const out: NcRecord[] = [];
  const g = new TimeGrid({
    startMs: T0, periodMs: 1000, chambers: ['c1', 'c2'],
    vars: [{ tag: 'temp', variable: 'temp', qcVariable: 'temp_qc' }, { tag: 'door', variable: 'door', qcVariable: 'door_qc' }],
    reorderWindowMs: opts.window ?? 3000, endMs: opts.endMs, now: () => T0 + 86_400_000, onRecords: (r) => out.push(...r),
  });
  return { g, out };
}

describe('TimeGrid', () => {
  it('puts each sample on the nearest slot; gaps are fill with quality missing, never repeated', () => {
    const { g, out } = grid();
    g.add({ chamber: 'c1', tag: 'temp', ts: T0 + 20, value: 20.5, q: 'good' });
    g.add({ chamber: 'c2', tag: 'temp', ts: T0 + 990, value: 21, q: 'uncertain' }); // slot 1
    g.add({ chamber: 'c1', tag: 'door', ts: T0 + 2000, value: true, q: 'good' });
    g.add({ chamber: 'c2', tag: 'temp', ts: T0 + 2000, value: null, q: 'bad' });
    g.finish();
    expect(out.map((r) => r.time)).toEqual([T0 / 1000, T0 / 1000 + 1, T0 / 1000 + 2]);
    expect(out[0]!.values.temp).toEqual([20.5, null]);
    expect(out[0]!.values.temp_qc).toEqual([QC.good, QC.missing]);
    expect(out[1]!.values.temp).toEqual([null, 21]);
    expect(out[1]!.values.temp_qc).toEqual([QC.missing, QC.uncertain]);
    expect(out[2]!.values.temp).toEqual([null, null]);
    expect(out[2]!.values.temp_qc).toEqual([QC.missing, QC.bad]);
    expect(out[2]!.values.door).toEqual([1, null]);
  });

  it('keeps the sample nearest to the slot instant', () => {
    const { g, out } = grid();
    g.add({ chamber: 'c1', tag: 'temp', ts: T0 + 400, value: 1, q: 'good' });
    g.add({ chamber: 'c1', tag: 'temp', ts: T0 + 100, value: 2, q: 'good' });
    g.add({ chamber: 'c1', tag: 'temp', ts: T0 - 300, value: 3, q: 'good' });
    g.finish();
    expect(out[0]!.values.temp).toEqual([2, null]);
  });

  it('waits for the reorder window, then commits; later samples for that slot are counted late', () => {
    const { g, out } = grid({ window: 3000 });
    g.add({ chamber: 'c1', tag: 'temp', ts: T0, value: 1, q: 'good' });
    g.add({ chamber: 'c1', tag: 'temp', ts: T0 + 3000, value: 4, q: 'good' });
    expect(out).toHaveLength(0);
    g.add({ chamber: 'c2', tag: 'temp', ts: T0 + 200, value: 9, q: 'good' }); // 2.8 s late: still in time
    g.add({ chamber: 'c1', tag: 'temp', ts: T0 + 3600, value: 5, q: 'good' }); // closes slot 0
    expect(out).toHaveLength(1);
    expect(out[0]!.values.temp).toEqual([1, 9]);
    g.add({ chamber: 'c2', tag: 'temp', ts: T0 + 100, value: 8, q: 'good' });
    expect(g.stats.late).toBe(1);
    g.advance(T0 + 10_000);
    expect(out.map((r) => r.time - T0 / 1000)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(out[3]!.values.temp).toEqual([4, null]);
  });

  it('counts unknown, string, future and out-of-run samples instead of writing them', () => {
    const { g, out } = grid({ endMs: T0 + 5000 });
    g.add({ chamber: 'nope', tag: 'temp', ts: T0, value: 1, q: 'good' });
    g.add({ chamber: 'c1', tag: 'nope', ts: T0, value: 1, q: 'good' });
    g.add({ chamber: 'c1', tag: 'temp', ts: T0, value: 'text', q: 'good' });
    g.add({ chamber: 'c1', tag: 'temp', ts: T0 + 86_400_000 * 2, value: 1, q: 'good' });
    g.add({ chamber: 'c1', tag: 'temp', ts: T0 - 5000, value: 1, q: 'good' });
    g.add({ chamber: 'c1', tag: 'temp', ts: T0 + 6000, value: 1, q: 'good' });
    expect(g.stats).toMatchObject({ unknown: 2, unsupported: 1, future: 1, outside: 2, accepted: 0 });
    g.finish();
    expect(out).toHaveLength(6); // slots 0..5, all fill
  });

  it('emits fill records in bounded batches across a long gap, memory flat', () => {
    const batches: number[] = [];
    const g = new TimeGrid({
      startMs: T0, periodMs: 1000, chambers: ['c1'], vars: [{ tag: 'temp', variable: 'temp' }], batch: 500,
      now: () => T0 + 10 * 86_400_000, onRecords: (r) => batches.push(r.length),
    });
    g.add({ chamber: 'c1', tag: 'temp', ts: T0, value: 1, q: 'good' });
    g.add({ chamber: 'c1', tag: 'temp', ts: T0 + 3_600_000, value: 2, q: 'good' });
    expect(Math.max(...batches)).toBe(500);
    expect(g.stats.committed).toBe(3600 - 5);
  });
});
