import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Tag } from '../../../config/profile-schema.ts';
import type { ExperimentsConfig } from '../../../config/instance-schema.ts';
import type { Logger } from '../../../core/log.ts';
import type { DataMessage, StatusMessage } from '../../../bus/payload.ts';
import type { ExperimentStore, RunEvent } from '../../../experiments/store.ts';
import type { ExperimentMetadata, Run } from '../../../experiments/schema.ts';
import { archiveVarsOfRun, type ArchiveVar, type RunInfo } from './cf.ts';
import type { FacilityConfig } from '../../../config/facility-schema.ts';
import { facilityAttributes } from './acdd.ts';
import { derivedInputs } from './derived.ts';
import { writeDailyFile, dailyPath } from './daily.ts';
import { ArchiveLease } from './lease.ts';
import { writeCompletenessReportAsync } from '../../../experiments/completeness.ts';
import { stopFidelity, type StopFidelity } from '../../../fidelity/at-stop.ts';
import type { ToleranceSource } from '../../../fidelity/plan.ts';
import { RunFile } from './run-file.ts';

export interface ArchiverFault {
  /** What failed: open, flush, log, move. */
  action: string;
  path: string;
  errno: string;
  message: string;
  since: string;
}

export interface ArchiverHealth {
  state: 'ok' | 'nas-unavailable' | 'degraded';
  /** writer: this collector holds the archive lease and writes the run files; standby: another one does. */
  role: 'writer' | 'standby';
  lease: string;
  open_runs: string[];
  records: number;
  /** Samples that arrived after their record was written and were patched into the file. */
  patched_samples: number;
  /** Samples refused as stamped too far in the future (all chambers). */
  future_samples: number;
  /** Per chamber of an open run: smallest receive − sample time (ms) and future samples refused. */
  clocks: Record<string, { offset_ms?: number; future_refused: number }>;
  nas: string;
  nas_available: boolean;
  pending_local_files: number;
  /** Closed runs whose file could not be finished or moved yet (retried). */
  stranded: Array<{ run: string; path: string; errno: string; message: string }>;
  /** Current write failures (working folder, NAS). */
  faults: ArchiverFault[];
  problems: string[];
}

/** How long received messages are kept in memory for a run opened late (started by another process). */
const RECENT_MS = 15_000;
/** …and at most this many messages (memory bound under a heavy load). */
const RECENT_MAX = 20_000;

interface OpenRun {
  run: Run;
  file: RunFile;
  path: string;
  chambers: Set<string>;
  closeAt?: number;
}
interface Stranded {
  run: Run;
  path: string;
  fault?: ArchiverFault;
  busy?: boolean;
  fidelity?: StopFidelity;
}

export interface ArchiverOptions {
  /** Tags reported on change (OPC UA subscriptions): held between samples. */
  onChange?: (chamber: string, tag: string) => boolean;
  now?: () => number;
  /** The configured chambers' tolerances: the treatment-fidelity report at run stop (src/fidelity). */
  tolerances?: ToleranceSource;
  /** The facility's ACDD attributes (institution, publisher…), `facility:` of the configuration. */
  facility?: FacilityConfig;
}

/**
 * The experiment archiver: every open run has a NetCDF file in the working folder, fed
 * with the samples of its chambers on the run's time grid (late samples patched in
 * place), each message logged durably before it is acknowledged, flushed every
 * `flush_interval_ms`. At run stop the file is finished, moved into the experiment
 * folder (the NAS, or the local fallback while the NAS is away) and the folder's README
 * and MANIFEST are regenerated; a failed finish or move is retried and reported until
 * it succeeds, also after a restart. After a restart, open runs resume their files and
 * replay their sample logs.
 */
export class Archiver {
  private readonly open = new Map<string, OpenRun>();
  private readonly stranded = new Map<string, Stranded>();
  private readonly faults = new Map<string, ArchiverFault>();
  /** Latest status of every chamber (retained messages), applied to runs opened later. */
  private readonly statuses = new Map<string, { online: boolean; ts: number }>();
  private timer?: NodeJS.Timeout;
  private nasTimer?: NodeJS.Timeout;
  private nasAvailable = true;
  private syncTimer?: NodeJS.Timeout;
  private readonly recent: Array<{ msg: DataMessage; at: number }> = [];
  private recentHead = 0;
  /** Last sample of every tag reported on change: its value holds from a run's start. */
  private readonly lastOnChange = new Map<
    string,
    { chamber: string; sample: DataMessage['samples'][number]; at: number }
  >();
  private readonly now: () => number;
  private readonly lease: ArchiveLease;
  private leader = false;
  private readonly onRun = (e: RunEvent) =>
    void this.handle(e).catch((err: Error) => this.log.error(`run ${e.run.experiment}/${e.run.id}: ${err.message}`));

  constructor(
    private readonly store: ExperimentStore,
    private readonly cfg: ExperimentsConfig & { working_dir: string },
    private readonly tagsOf: (chamber: string) => readonly Tag[],
    private readonly log: Logger,
    private readonly o: ArchiverOptions = {},
  ) {
    this.now = o.now ?? Date.now;
    this.lease = new ArchiveLease(cfg.working_dir, cfg.lease_ttl_ms, this.now);
  }

  /** This collector holds the archive role (writes the run files, acts on run triggers). */
  get writer(): boolean {
    return this.leader;
  }

  start(): void {
    try {
      this.store.sync();
    } catch (err) {
      this.log.warn(`cannot read the experiment folders: ${(err as Error).message}`);
    }
    this.heartbeat();
    this.store.on('run', this.onRun);
    this.timer = setInterval(() => this.tick(), this.cfg.flush_interval_ms);
    this.timer.unref();
    this.nasTimer = setInterval(() => this.checkNas(), this.cfg.nas_check_interval_ms);
    this.nasTimer.unref();
    if (this.cfg.log_fsync === 'interval') {
      this.syncTimer = setInterval(() => this.syncLogs(), this.cfg.log_fsync_interval_ms);
      this.syncTimer.unref();
    }
    this.checkNas();
  }

  /**
   * Places the samples of a message in every open run of its chamber and writes them to
   * the run's sample log before returning (fdatasynced now with `log_fsync: always`, else
   * within `log_fsync_interval_ms`); the caller acknowledges the message after. A log
   * that cannot be written is reported (health degraded) and the samples stay in memory:
   * the database path is not blocked by a broken archive disk.
   */
  accept(msg: DataMessage, receivedMs = this.now()): void {
    this.remember(msg, receivedMs);
    if (!this.leader) return;
    const always = this.cfg.log_fsync === 'always';
    for (const [key, o] of this.open) {
      if (!o.chambers.has(msg.chamber)) continue;
      try {
        o.file.addMessage(msg.chamber, msg.samples, receivedMs);
        o.file.commitLog(always);
        if (this.faults.has(`log:${key}`)) this.clearFault(`log:${key}`);
      } catch (err) {
        this.fault(`log:${key}`, 'log', `${o.path}.log`, err as Error);
      }
    }
  }

  /**
   * Keeps the messages of the last RECENT_MS: a run started by another process (CLI, API
   * of another instance) is seen here up to one flush interval later, and its first
   * samples are taken from here when it opens.
   */
  private remember(msg: DataMessage, receivedMs: number): void {
    if (this.o.onChange) {
      for (const x of msg.samples) {
        if (!this.o.onChange(msg.chamber, x.tag)) continue;
        const key = `${msg.chamber}\u0000${x.tag}`;
        const was = this.lastOnChange.get(key);
        if (!was || x.ts >= was.sample.ts)
          this.lastOnChange.set(key, { chamber: msg.chamber, sample: x, at: receivedMs });
      }
    }
    this.recent.push({ msg, at: receivedMs });
    // Expired entries are skipped by an index and dropped in one splice now and then (shift() per message is O(n)).
    while (
      this.recentHead < this.recent.length &&
      (this.recent[this.recentHead]!.at < receivedMs - RECENT_MS || this.recent.length - this.recentHead > RECENT_MAX)
    )
      this.recentHead++;
    if (this.recentHead > 1024 && this.recentHead * 2 > this.recent.length) {
      this.recent.splice(0, this.recentHead);
      this.recentHead = 0;
    }
  }

  /** Keeps (or takes over) the archive lease; becoming the writer opens the runs, losing it closes them. */
  private heartbeat(): void {
    let now: boolean;
    try {
      mkdirSync(this.cfg.working_dir, { recursive: true });
      now = this.lease.beat();
      this.clearFault('lease');
    } catch (err) {
      this.fault('lease', 'lease', this.lease.path, err as Error);
      now = this.leader;
    }
    if (now === this.leader) return;
    this.leader = now;
    if (now) {
      this.log.info(`archive writer for ${this.cfg.working_dir} (lease ${this.lease.path})`);
      for (const run of this.safeOpenRuns()) this.tryOpen(run);
      this.findStranded();
    } else {
      this.log.warn(
        `archive lease ${this.lease.path} taken by ${this.lease.current() ?? 'another process'}: standing by`,
      );
      for (const [key, o] of this.open) {
        try {
          o.file.abandon();
        } catch (err) {
          this.log.error(`run ${key}: ${(err as Error).message}`);
        }
      }
      this.open.clear();
      this.stranded.clear();
    }
  }

  private syncLogs(): void {
    for (const [key, o] of this.open) {
      try {
        o.file.commitLog(true);
      } catch (err) {
        this.fault(`log:${key}`, 'log', `${o.path}.log`, err as Error);
      }
    }
  }

  /** A chamber status message (`<prefix>/<chamber>/status`, retained). */
  status(chamber: string, s: Pick<StatusMessage, 'state' | 'ts'>): void {
    const online = s.state === 'online';
    const was = this.statuses.get(chamber);
    if (was && was.online === online && was.ts === s.ts) return;
    this.statuses.set(chamber, { online, ts: s.ts });
    for (const o of this.open.values()) if (o.chambers.has(chamber)) o.file.setStatus(chamber, online, s.ts);
  }

  /** The run's NetCDF file as it is now: the working file while open, else the archived one. */
  fileOf(experiment: string, runId: string): string | undefined {
    const key = `${experiment}/${runId}`;
    const o = this.open.get(key);
    if (o) {
      this.flushRun(key, o);
      return o.path;
    }
    const s = this.stranded.get(key);
    if (s && existsSync(s.path)) return s.path;
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
    let patched = 0;
    let future = 0;
    const clocks: ArchiverHealth['clocks'] = {};
    for (const o of this.open.values()) {
      records += o.file.stats.records;
      patched += o.file.stats.patched;
      future += o.file.stats.future;
      for (const c of o.chambers) {
        const k = o.file.grid.clock(c);
        clocks[c] = { ...(k.offsetMs !== undefined ? { offset_ms: k.offsetMs } : {}), future_refused: k.future };
      }
    }
    const stranded = [...this.stranded.entries()].map(([run, s]) => ({
      run,
      path: s.path,
      errno: s.fault?.errno ?? '',
      message: s.fault?.message ?? 'waiting',
    }));
    const faults = [...this.faults.values()];
    const problems = [
      ...faults.map((f) => `archive ${f.action} failed: ${f.path}: ${f.errno} (${f.message})`),
      ...stranded
        .filter((s) => !faults.some((f) => f.path === s.path))
        .map((s) => `run ${s.run} not finished: ${s.path}: ${s.errno || 'pending'} (${s.message})`),
    ];
    return {
      state: problems.length ? 'degraded' : this.nasAvailable ? 'ok' : 'nas-unavailable',
      role: this.leader ? 'writer' : 'standby',
      lease: this.lease.path,
      open_runs: [...this.open.keys()],
      records,
      patched_samples: patched,
      future_samples: future,
      clocks,
      nas: this.store.root.nas,
      nas_available: this.nasAvailable,
      pending_local_files: safe(() => this.store.root.pendingLocal(), 0),
      stranded,
      faults,
      problems,
    };
  }

  /** Flushes every open file; the runs stay open and resume at the next start. */
  stop(): void {
    clearInterval(this.timer);
    clearInterval(this.nasTimer);
    clearInterval(this.syncTimer);
    this.store.off('run', this.onRun);
    for (const [key, o] of this.open) {
      try {
        o.file.abandon();
      } catch (err) {
        this.log.error(`run ${key}: cannot flush ${o.path}: ${(err as Error).message}`);
      }
    }
    this.open.clear();
    this.lease.release();
    this.leader = false;
  }

  // ---- internals -------------------------------------------------------------

  private async handle(e: RunEvent): Promise<void> {
    if (!this.leader) return;
    const key = `${e.run.experiment}/${e.run.id}`;
    if (e.event === 'run_started') {
      this.tryOpen(e.run);
      return;
    }
    const o = this.open.get(key);
    const stop = Date.parse(e.run.stop!);
    if (o) {
      // Samples of the run still arriving (late, replayed) land until the reorder window has passed.
      o.run = e.run;
      if (o.file.grid.setEnd(stop) > 0) {
        // Samples stamped after the stop had reached the last slot: the run's own samples of it are given again.
        for (const { msg, at } of this.recent.slice(this.recentHead)) {
          if (o.chambers.has(msg.chamber)) o.file.addMessage(msg.chamber, msg.samples, at);
        }
      }
      o.closeAt = Math.max(stop, this.now()) + this.cfg.reorder_window_ms;
      return;
    }
    if (!this.stranded.has(key)) {
      const path = this.workingPath(e.run);
      if (!existsSync(path)) return;
      this.stranded.set(key, { run: e.run, path });
    }
    await this.finishStranded(key);
  }

  /** Closes a stopped run's file (final header) and hands it to finishStranded for the move. */
  private closeRun(key: string, o: OpenRun): void {
    this.open.delete(key);
    this.stranded.set(key, { run: o.run, path: o.path });
    try {
      o.file.close(Date.parse(o.run.stop!));
      this.log.info(`run ${key} closed: ${o.file.stats.records} records`);
    } catch (err) {
      const s = this.stranded.get(key);
      if (s) s.fault = this.fault(`finish:${key}`, 'finish', o.path, err as Error);
      try {
        o.file.abandon();
      } catch {
        /* reported above; finished again from its log */
      }
      return;
    }
    void this.finishStranded(key);
  }

  private workingPath(run: Run): string {
    return join(this.cfg.working_dir, run.experiment, run.id, basename(run.file));
  }

  private tryOpen(run: Run): void {
    const key = `${run.experiment}/${run.id}`;
    if (this.open.has(key)) return;
    const path = this.workingPath(run);
    try {
      const e = this.store.get(run.experiment).metadata;
      const { vars, skipped } = archiveVarsOfRun(run.chambers, this.tagsOf, e.variables);
      mkdirSync(dirname(path), { recursive: true });
      const file = RunFile.open(path, this.info(e, run, vars), vars, {
        now: this.now,
        maxAheadMs: this.cfg.max_future_ms,
        onChange: this.o.onChange,
        runStartMs: Date.parse(run.start),
      });
      for (const c of run.chambers) {
        const s = this.statuses.get(c);
        if (s) file.setStatus(c, s.online, s.ts);
      }
      this.open.set(key, { run, file, path, chambers: new Set(run.chambers) });
      // Values of on-change tags reported before the run: held from its start.
      for (const { chamber, sample, at } of this.lastOnChange.values()) {
        if (run.chambers.includes(chamber)) file.addMessage(chamber, [sample], at);
      }
      // Samples of the run received before this process knew about it (e.g. started by the CLI).
      // The grid keeps those that round to a slot of the run.
      for (const { msg, at } of this.recent.slice(this.recentHead)) {
        if (run.chambers.includes(msg.chamber)) file.addMessage(msg.chamber, msg.samples, at);
      }
      file.commitLog(true);
      this.clearFault(`open:${key}`);
      this.log.info(
        `run ${key}: ${vars.length} variables × ${run.chambers.length} chambers every ${run.sampling_period_s} s → ${path}${skipped.length ? ` (not archived: ${skipped.join(', ')})` : ''}`,
      );
    } catch (err) {
      this.fault(`open:${key}`, 'open', path, err as Error);
    }
  }

  private flushRun(key: string, o: OpenRun, nowMs?: number): void {
    try {
      o.file.tick(nowMs);
      this.clearFault(`flush:${key}`);
    } catch (err) {
      this.fault(`flush:${key}`, 'flush', o.path, err as Error);
    }
  }

  private tick(): void {
    // Runs started or stopped by another process (the CLI) arrive as events from here.
    try {
      this.store.sync();
    } catch (err) {
      this.log.warn(`cannot read the experiment folders: ${(err as Error).message}`);
    }
    this.heartbeat();
    if (!this.leader) return;
    // Runs that could not be opened (working folder unwritable) are tried again.
    for (const key of [...this.faults.keys()].filter((k) => k.startsWith('open:'))) {
      const run = this.safeOpenRuns().find((r) => `${r.experiment}/${r.id}` === key.slice(5));
      if (run) this.tryOpen(run);
      else this.faults.delete(key);
    }
    const now = this.now();
    for (const [key, o] of this.open) {
      if (o.closeAt !== undefined && now >= o.closeAt) this.closeRun(key, o);
      else this.flushRun(key, o, now - this.cfg.reorder_window_ms);
    }
    for (const key of this.stranded.keys()) void this.finishStranded(key);
  }

  /** Finishes (from its log, when it was not closed) and moves the file of a stopped run; retried until it works. */
  private async finishStranded(key: string): Promise<void> {
    const s = this.stranded.get(key);
    if (!s || s.busy) return;
    s.busy = true;
    try {
      if (existsSync(`${s.path}.slots`) || existsSync(`${s.path}.log`)) {
        const e = this.store.get(s.run.experiment).metadata;
        const stop = Date.parse(s.run.stop!);
        const vars = archiveVarsOfRun(s.run.chambers, this.tagsOf, e.variables).vars;
        const file = RunFile.open(s.path, this.info(e, s.run, vars), vars, {
          now: this.now,
          onChange: this.o.onChange,
          runStartMs: Date.parse(s.run.start),
          endMs: stop,
        });
        file.close(stop);
      }
      const nas = this.store.root.available();
      const dest = join(
        nas ? this.store.get(s.run.experiment).dir : join(this.store.root.local, s.run.experiment),
        s.run.file,
      );
      // Fidelity before the move: its attributes go into the file while it is still in the working folder.
      s.fidelity ??= await stopFidelity(
        key,
        existsSync(s.path) ? s.path : dest,
        s.run,
        this.store,
        this.o.tolerances,
        this.log,
      );
      if (existsSync(s.path)) moveFile(s.path, dest);
      this.stranded.delete(key);
      this.clearFault(`finish:${key}`);
      this.log.info(`run ${key} archived → ${dest}`);
      s.fidelity.save(dirname(dest));
      await this.reportCompleteness(key, dest);
      await this.writeDaily(key, dest);
      if (nas) await this.store.document(s.run.experiment);
    } catch (err) {
      s.fault = this.fault(`finish:${key}`, 'finish', s.path, err as Error);
    } finally {
      s.busy = false;
    }
  }

  /**
   * Writes the run's completeness report (completeness.json beside the file; the README
   * shows it). Derived data: a failure is logged, never strands the run, and
   * `octopus verify <experiment> <run> --write` makes it again.
   */
  private async reportCompleteness(key: string, file: string): Promise<void> {
    try {
      const r = await writeCompletenessReportAsync(file, dirname(file));
      this.log.info(
        `run ${key}: ${(r.totals.completeness * 100).toFixed(2)} % of the expected values present, ${r.totals.missing} missing (completeness.json)`,
      );
    } catch (err) {
      this.log.warn(
        `run ${key}: no completeness report (${(err as Error).message}); \`octopus verify ${key.replace('/', ' ')} --write\` writes it`,
      );
    }
  }

  /** The run's file description: metadata, facility attributes, derived variables when the chambers have their inputs. */
  private info(e: ExperimentMetadata, run: Run, vars: readonly ArchiveVar[]): RunInfo {
    const derived = derivedInputs(vars, run.chambers, (c) => this.tagsOf(c).map((t) => t.name));
    return { ...runInfo(e, run, this.o.facility), ...(derived ? { derived } : {}) };
  }

  /**
   * Writes the run's daily aggregates (`<file>_daily.nc` beside it). Derived data like the
   * completeness report: a failure is logged, never strands the run.
   */
  private async writeDaily(key: string, file: string): Promise<void> {
    try {
      const r = await writeDailyFile(file, dailyPath(file));
      this.log.info(
        `run ${key}: daily aggregates of ${r.variables} variables over ${r.days} days → ${dailyPath(file)}`,
      );
    } catch (err) {
      this.log.warn(`run ${key}: no daily file (${(err as Error).message})`);
    }
  }

  /** Stopped runs whose file is still in the working folder (a crash or a failed move before the restart). */
  private findStranded(): void {
    const root = this.cfg.working_dir;
    for (const exp of safe(() => readdirSync(root), [] as string[])) {
      for (const runId of safe(() => readdirSync(join(root, exp)), [] as string[])) {
        const key = `${exp}/${runId}`;
        if (this.open.has(key)) continue;
        const run = safe(() => this.store.get(exp).runs.find((r) => r.id === runId), undefined);
        if (!run || run.status !== 'stopped') continue;
        const path = this.workingPath(run);
        if (!existsSync(path)) {
          pruneEmpty(join(root, exp, runId));
          continue;
        }
        this.log.warn(`run ${key} stopped but its file is still in ${path}: finishing it`);
        this.stranded.set(key, { run, path });
      }
    }
  }

  private safeOpenRuns(): Run[] {
    try {
      return this.store.openRuns();
    } catch (err) {
      this.log.warn(`cannot list the open runs: ${(err as Error).message}`);
      return [];
    }
  }

  private fault(key: string, action: string, path: string, err: Error): ArchiverFault {
    const was = this.faults.get(key);
    const errno = (err as NodeJS.ErrnoException).code ?? 'ERROR';
    const f: ArchiverFault = {
      action,
      path,
      errno,
      message: err.message,
      since: was?.since ?? new Date(this.now()).toISOString(),
    };
    if (!was || was.errno !== errno)
      this.log.error(`archive ${action} failed: ${path}: ${errno} (${err.message}); retrying`);
    this.faults.set(key, f);
    return f;
  }

  private clearFault(key: string): void {
    const was = this.faults.get(key);
    if (!was) return;
    this.faults.delete(key);
    this.log.info(`archive ${was.action} of ${was.path} works again`);
  }

  private checkNas(): void {
    const was = this.nasAvailable;
    this.nasAvailable = this.store.root.available();
    if (was !== this.nasAvailable && !this.nasAvailable)
      this.log.warn(
        `NAS ${this.store.root.nas} unavailable: experiment files go to ${this.store.root.local} until it returns`,
      );
    if (!this.nasAvailable) return;
    const waiting = this.store.root.localIds();
    if (waiting.length === 0) return;
    let moved = 0;
    try {
      moved = this.store.root.migrate();
      this.clearFault('migrate');
    } catch (err) {
      this.fault('migrate', 'move', this.store.root.nas, err as Error);
    }
    if (!moved) return;
    this.log.info(`NAS ${this.store.root.nas} back: moved ${moved} files from ${this.store.root.local}`);
    for (const id of waiting) {
      this.store
        .document(id)
        .catch((err: Error) => this.log.warn(`cannot update the documents of ${id}: ${err.message}`));
    }
  }
}

export function runInfo(e: ExperimentMetadata, run: Run, facility?: FacilityConfig): RunInfo {
  const treatments = e.treatments.map((t) => `${t.chamber}: ${t.name}`).join('; ');
  return {
    id: `${e.id}/${run.id}`,
    title: `${e.title} — run ${run.id}`,
    summary: [e.description, treatments && `Treatments: ${treatments}.`].filter(Boolean).join(' ') || e.title,
    chambers: run.chambers,
    // Slot 0 is the slot the start rounds to (like the last slot, the one the stop rounds to): both are partial.
    startMs: Math.round(Date.parse(run.start) / (run.sampling_period_s * 1000)) * run.sampling_period_s * 1000,
    periodMs: run.sampling_period_s * 1000,
    creator_name: e.principal_investigator.name,
    ...(e.principal_investigator.email ? { creator_email: e.principal_investigator.email } : {}),
    ...((facility?.institution ?? e.principal_investigator.institution)
      ? { institution: facility?.institution ?? e.principal_investigator.institution }
      : {}),
    // ACDD project: the experiment's project, else the experiment itself.
    project: e.project || e.title,
    license: e.licence,
    facility: facilityAttributes(facility, e),
    ...(e.keywords.length ? { keywords: e.keywords.join(', ') } : {}),
    extra: { experiment: e.id, run: run.id, ...(treatments ? { treatments } : {}) },
  };
}

function safe<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}

function pruneEmpty(d: string): void {
  try {
    if (statSync(d).isDirectory() && readdirSync(d).length === 0) rmSync(d, { recursive: true });
  } catch {
    // gone already
  }
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
  pruneEmpty(dirname(from));
}
