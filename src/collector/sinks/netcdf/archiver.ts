import { copyFileSync, existsSync, mkdirSync, renameSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Tag } from '../../../config/profile-schema.ts';
import type { ExperimentsConfig } from '../../../config/instance-schema.ts';
import type { Logger } from '../../../core/log.ts';
import type { DataMessage } from '../../../bus/payload.ts';
import type { ExperimentStore, RunEvent } from '../../../experiments/store.ts';
import type { ExperimentMetadata, Run } from '../../../experiments/schema.ts';
import { archiveVarsFromTags, type RunInfo } from './cf.ts';
import { RunFile } from './run-file.ts';

export interface ArchiverHealth {
  state: 'ok' | 'nas-unavailable';
  open_runs: string[];
  records: number;
  late_samples: number;
  nas: string;
  nas_available: boolean;
  pending_local_files: number;
}

interface OpenRun { run: Run; file: RunFile; path: string; chambers: Set<string> }

/** Clock skew allowed between the PLCs and this machine before a silent slot is closed with fill values. */
const SKEW_MS = 5000;

/**
 * The experiment archiver: every open run has a NetCDF file in the working folder, fed
 * with the samples of its chambers on the run's time grid, flushed (numrecs patched,
 * fsync) every `flush_interval_ms`. At run stop the file is closed, moved into the
 * experiment folder (the NAS, or the local fallback while the NAS is away) and the
 * folder's README and MANIFEST are regenerated. After a restart, open runs resume their
 * files where they stopped.
 */
export class Archiver {
  private readonly open = new Map<string, OpenRun>();
  private timer?: NodeJS.Timeout;
  private nasTimer?: NodeJS.Timeout;
  private nasAvailable = true;
  private readonly onRun = (e: RunEvent) => void this.handle(e).catch((err: Error) => this.log.error(`run ${e.run.experiment}/${e.run.id}: ${err.message}`));

  constructor(
    private readonly store: ExperimentStore,
    private readonly cfg: ExperimentsConfig & { working_dir: string },
    private readonly tagsOf: (chamber: string) => readonly Tag[],
    private readonly log: Logger,
  ) {}

  start(): void {
    this.store.sync();
    for (const run of this.store.openRuns()) {
      try {
        this.openRun(run);
      } catch (err) {
        this.log.error(`cannot resume run ${run.experiment}/${run.id}: ${(err as Error).message}`);
      }
    }
    this.store.on('run', this.onRun);
    this.timer = setInterval(() => this.tick(), this.cfg.flush_interval_ms);
    this.timer.unref();
    this.nasTimer = setInterval(() => this.checkNas(), this.cfg.nas_check_interval_ms);
    this.nasTimer.unref();
    this.checkNas();
  }

  accept(msg: DataMessage): void {
    for (const o of this.open.values()) {
      if (!o.chambers.has(msg.chamber)) continue;
      for (const s of msg.samples) o.file.add({ chamber: msg.chamber, tag: s.tag, ts: s.ts, value: s.value, q: s.q });
    }
  }

  /** The run's NetCDF file as it is now: the working file while open, else the archived one. */
  fileOf(experiment: string, runId: string): string | undefined {
    const o = this.open.get(`${experiment}/${runId}`);
    if (o) {
      o.file.flush();
      return o.path;
    }
    try {
      const e = this.store.get(experiment);
      const run = e.runs.find((r) => r.id === runId);
      if (!run) return undefined;
      return [join(e.dir, run.file), join(this.store.root.local, experiment, run.file)].find((p) => existsSync(p));
    } catch {
      return undefined;
    }
  }

  health(): ArchiverHealth {
    let records = 0;
    let late = 0;
    for (const o of this.open.values()) {
      records += o.file.writer.recordCount;
      late += o.file.stats.late;
    }
    return {
      state: this.nasAvailable ? 'ok' : 'nas-unavailable',
      open_runs: [...this.open.keys()],
      records,
      late_samples: late,
      nas: this.store.root.nas,
      nas_available: this.nasAvailable,
      pending_local_files: this.store.root.pendingLocal(),
    };
  }

  /** Flushes every open file; the runs stay open and resume at the next start. */
  stop(): void {
    clearInterval(this.timer);
    clearInterval(this.nasTimer);
    this.store.off('run', this.onRun);
    for (const o of this.open.values()) {
      o.file.flush();
      o.file.writer.close();
    }
    this.open.clear();
  }

  // ---- internals -------------------------------------------------------------

  private async handle(e: RunEvent): Promise<void> {
    if (e.event === 'run_started') {
      this.openRun(e.run);
      return;
    }
    const key = `${e.run.experiment}/${e.run.id}`;
    const o = this.open.get(key);
    if (!o) return;
    this.open.delete(key);
    o.file.close(Date.parse(e.run.stop!));
    // On the NAS when it is writable; else in the local fallback, moved over when it returns.
    const nas = this.store.root.available();
    const dest = join(nas ? this.store.get(e.run.experiment).dir : join(this.store.root.local, e.run.experiment), e.run.file);
    moveFile(o.path, dest);
    this.log.info(`run ${key} closed: ${o.file.writer.recordCount} records → ${dest}`);
    if (nas) await this.store.document(e.run.experiment);
  }

  private openRun(run: Run): void {
    const key = `${run.experiment}/${run.id}`;
    if (this.open.has(key)) return;
    const e = this.store.get(run.experiment).metadata;
    const tags = run.chambers.flatMap((c) => this.tagsOf(c)).filter((t) => e.variables.length === 0 || e.variables.includes(t.name));
    const { vars, skipped } = archiveVarsFromTags(tags);
    const path = join(this.cfg.working_dir, run.experiment, run.id, run.file.split('/').at(-1)!);
    mkdirSync(dirname(path), { recursive: true });
    const file = RunFile.open(path, runInfo(e, run), vars, { reorderWindowMs: this.cfg.reorder_window_ms });
    this.open.set(key, { run, file, path, chambers: new Set(run.chambers) });
    this.log.info(`run ${key}: ${vars.length} variables × ${run.chambers.length} chambers every ${run.sampling_period_s} s → ${path}${skipped.length ? ` (not archived: ${skipped.join(', ')})` : ''}`);
  }

  private tick(): void {
    // Runs started or stopped by another process (the CLI) arrive as events from here.
    try {
      this.store.sync();
    } catch (err) {
      this.log.warn(`cannot read the experiment folders: ${(err as Error).message}`);
    }
    const now = Date.now();
    for (const [key, o] of this.open) {
      try {
        o.file.tick(now - this.cfg.reorder_window_ms - SKEW_MS);
      } catch (err) {
        this.log.error(`run ${key}: flush failed: ${(err as Error).message}`);
      }
    }
  }

  private checkNas(): void {
    const was = this.nasAvailable;
    this.nasAvailable = this.store.root.available();
    if (was !== this.nasAvailable && !this.nasAvailable) this.log.warn(`NAS ${this.store.root.nas} unavailable: experiment files go to ${this.store.root.local} until it returns`);
    if (!this.nasAvailable) return;
    const waiting = this.store.root.localIds();
    if (waiting.length === 0) return;
    const moved = this.store.root.migrate();
    if (!moved) return;
    this.log.info(`NAS ${this.store.root.nas} back: moved ${moved} files from ${this.store.root.local}`);
    for (const id of waiting) {
      this.store.document(id).catch((err: Error) => this.log.warn(`cannot update the documents of ${id}: ${err.message}`));
    }
  }
}

function runInfo(e: ExperimentMetadata, run: Run): RunInfo {
  const treatments = e.treatments.map((t) => `${t.chamber}: ${t.name}`).join('; ');
  return {
    id: `${e.id}/${run.id}`,
    title: `${e.title} — run ${run.id}`,
    summary: [e.description, treatments && `Treatments: ${treatments}.`].filter(Boolean).join(' ') || e.title,
    chambers: run.chambers,
    startMs: Math.floor(Date.parse(run.start) / (run.sampling_period_s * 1000)) * run.sampling_period_s * 1000,
    periodMs: run.sampling_period_s * 1000,
    creator_name: e.principal_investigator.name,
    ...(e.principal_investigator.email ? { creator_email: e.principal_investigator.email } : {}),
    ...(e.principal_investigator.institution ? { institution: e.principal_investigator.institution } : {}),
    ...(e.project ? { project: e.project } : {}),
    license: e.licence,
    ...(e.keywords.length ? { keywords: e.keywords.join(', ') } : {}),
    extra: { experiment: e.id, run: run.id, ...(treatments ? { treatments } : {}) },
  };
}

/** rename, or copy + unlink across file systems (working disk → NAS). */
function moveFile(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    copyFileSync(from, `${to}.part`);
    renameSync(`${to}.part`, to);
    unlinkSync(from);
  }
}
