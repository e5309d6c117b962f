/**
 * One run's NetCDF file: the CF schema, the time grid and the streaming writer glued
 * together. The archiver feeds samples with `add`, calls `tick(now)` periodically
 * (commits closed slots, flushes, updates time_coverage_end) and `close(endMs)` at
 * run stop. `open` resumes an existing file (after a crash) from its last record.
 */
import { existsSync } from 'node:fs';
import type { Sample } from '../../../core/sample.ts';
import { buildRunSchema, coverageAttributes, type ArchiveVar, type RunInfo } from './cf.ts';
import { TimeGrid, type GridStats } from './grid.ts';
import { NetcdfWriter, type WriterOptions } from './writer.ts';

export interface RunFileOptions extends Pick<WriterOptions, 'version' | 'expectedBytes' | 'headerReserve' | 'bufferBytes' | 'fsync'> {
  reorderWindowMs?: number;
  now?: () => number;
}

export class RunFile {
  private constructor(readonly writer: NetcdfWriter, readonly grid: TimeGrid, private readonly run: RunInfo, private readonly now: () => number) {}

  /** Creates the file, or resumes it when it exists (same run). */
  static open(path: string, run: RunInfo, vars: readonly ArchiveVar[], opts: RunFileOptions = {}): RunFile {
    const { schema, gridVars } = buildRunSchema(run, vars);
    const now = opts.now ?? Date.now;
    const writer = existsSync(path) ? NetcdfWriter.resume(path, opts) : NetcdfWriter.create(path, schema, opts);
    const mismatch = schema.variables.find((v) => {
      const got = writer.header.vars.find((x) => x.name === v.name);
      return !got || got.type !== v.type || got.dimIds.map((id) => writer.header.dims[id]!.name).join() !== v.dims.join();
    });
    const chambers = writer.header.dims.find((d) => d.name === 'chamber')?.size;
    if (mismatch || chambers !== run.chambers.length) {
      writer.close();
      throw new Error(`${path}: existing file does not match the run (${mismatch ? `variable ${mismatch.name}` : 'chamber count'}); not resuming`);
    }
    const holder: { w?: NetcdfWriter } = { w: writer };
    const grid = new TimeGrid({
      startMs: run.startMs, periodMs: run.periodMs, chambers: run.chambers, vars: gridVars,
      reorderWindowMs: opts.reorderWindowMs, now, onRecords: (r) => holder.w!.appendRecords(r),
    });
    grid.resumeAt(writer.recordCount); // the slots already in the file are committed
    return new RunFile(writer, grid, run, now);
  }

  add(s: Pick<Sample, 'chamber' | 'tag' | 'ts' | 'value' | 'q'>): void { this.grid.add(s); }
  get stats(): GridStats { return this.grid.stats; }

  /**
   * Flushes and updates the coverage attributes. Slots close as newer samples arrive;
   * pass `nowMs` (e.g. wall clock minus an allowance for source clock skew) to also
   * close slots when no sample comes at all. Wall clock is not the default because a
   * PLC clock running behind by more than the reorder window would see all its samples
   * dropped as late.
   */
  tick(nowMs?: number): void {
    if (nowMs !== undefined) this.grid.advance(nowMs);
    this.flush();
  }

  flush(): void {
    const n = this.writer.recordCount;
    if (n > this.writer.committedRecords) this.writer.setGlobalAttributes(coverageAttributes(this.run.startMs + (n - 1) * this.run.periodMs, this.now()));
    this.writer.flush();
  }

  close(endMs?: number): void {
    this.grid.finish(endMs);
    const n = this.writer.recordCount;
    this.writer.close(coverageAttributes(this.run.startMs + Math.max(0, n - 1) * this.run.periodMs, this.now()));
  }
}
