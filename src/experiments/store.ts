import { EventEmitter } from 'node:events';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { parseYamlText } from '../config/yaml-file.ts';
import { zodToIssues } from '../config/zod-issues.ts';
import type { ConfigIssue } from '../core/errors.ts';
import { ArchiveRoot } from './archive-root.ts';
import { dataFiles, dmp, manifest, readme, syncScript, type VariableInfo } from './documents.ts';
import { completenessMarkdown, type CompletenessReport } from './completeness.ts';
import { fidelityMarkdown } from '../fidelity/markdown.ts';
import { FidelityReport } from '../fidelity/report-schema.ts';
import { ExperimentMetadata, Run } from './schema.ts';

/** A request that cannot be done: `field` and `got` say which input and what value. */
export class ExperimentError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
    readonly issues: ConfigIssue[] = [],
  ) {
    super(message);
  }
}

export interface Experiment {
  metadata: ExperimentMetadata;
  dir: string;
  runs: Run[];
}

/** The run `runId` of an experiment, or its latest run; 404 naming the runs there are. */
export function runOf(e: Experiment, runId?: string): Run {
  const run = runId ? e.runs.find((r) => r.id === runId) : e.runs.at(-1);
  if (!run)
    throw new ExperimentError(
      404,
      runId
        ? `experiment "${e.metadata.id}" has no run "${runId}" (runs: ${e.runs.map((r) => r.id).join(', ') || 'none'})`
        : `experiment "${e.metadata.id}" has no run yet`,
    );
  return run;
}

export interface ExperimentQuery {
  text?: string;
  chamber?: string;
  variable?: string;
  pi?: string;
  from?: Date;
  to?: Date;
}

export type RunEvent = { event: 'run_started' | 'run_stopped'; run: Run };

export interface StoreOptions {
  /** Chambers the facility has (from the configuration), for validating experiments. */
  chambers: () => string[];
  /** Variables (profile tags) of a set of chambers, for documentation and the archive. */
  variables: (chambers: string[], only: string[]) => VariableInfo[];
  /** Licence of experiments created without one (`facility.licence`); else the schema's default. */
  licence?: string;
  now?: () => Date;
}

const HEADER =
  '# Experiment metadata: the catalogue entry. Edit freely; Octopus validates it and\n# regenerates README.md from it. Field reference: docs/experiments.md\n';

/**
 * Experiments as folders (the catalogue itself): `<root>/<id>/metadata.yaml`, `runs/<run>/run.yaml`,
 * generated README.md, dmp.md, sync.sh and MANIFEST.sha256. Files, not a database: the
 * folder is what researchers download and what survives the software. Metadata edited by
 * hand is picked up on the next read and validated; an invalid edit is reported (with
 * every problem) and the last valid version is used meanwhile.
 */
export class ExperimentStore extends EventEmitter<{ run: [RunEvent] }> {
  private readonly cache = new Map<string, { mtimeMs: number; metadata: ExperimentMetadata }>();
  private readonly invalid = new Map<string, ConfigIssue[]>();
  private readonly runCache = new Map<string, { stamp: string; run?: Run }>();
  /** Status of every run this process knows, to notice runs started or stopped by another process. */
  private known?: Map<string, Run>;
  private readonly now: () => Date;

  constructor(
    readonly root: ArchiveRoot,
    private readonly o: StoreOptions,
  ) {
    super();
    this.now = o.now ?? (() => new Date());
  }

  // ---- experiments -----------------------------------------------------------

  async create(input: unknown, by: string): Promise<Experiment> {
    if (
      this.o.licence &&
      input &&
      typeof input === 'object' &&
      !Array.isArray(input) &&
      (input as { licence?: unknown }).licence === undefined
    ) {
      input = { ...input, licence: this.o.licence };
    }
    const parsed = ExperimentMetadata.safeParse(input);
    if (!parsed.success) {
      const issues = zodToIssues('experiment', parsed.error, input);
      throw new ExperimentError(
        400,
        issues
          .map((i) => `${i.path}: ${i.message}${i.got !== undefined ? ` (got ${JSON.stringify(i.got)})` : ''}`)
          .join('; '),
        issues,
      );
    }
    const e: ExperimentMetadata = { ...parsed.data, created: parsed.data.created ?? this.now().toISOString() };
    this.checkChambers(e);
    if (this.root.ids().includes(e.id)) throw new ExperimentError(409, `experiment "${e.id}" already exists`);
    const dir = this.root.dirOf(e.id);
    mkdirSync(join(dir, 'runs'), { recursive: true });
    writeFileSync(join(dir, 'metadata.yaml'), HEADER + stringify(e));
    writeFileSync(join(dir, 'history.log'), `${e.created} created by ${by}\n`);
    await this.document(e.id);
    return this.get(e.id);
  }

  ids(): string[] {
    return this.root.ids();
  }

  get(id: string): Experiment {
    const dir = this.root.dirOf(id);
    const metadata = this.metadata(id, dir);
    if (!metadata) throw new ExperimentError(404, `no experiment "${id}"`);
    return { metadata, dir, runs: this.runsOf(dir) };
  }

  list(q: ExperimentQuery = {}): Experiment[] {
    const out: Experiment[] = [];
    for (const id of this.ids()) {
      let e: Experiment;
      try {
        e = this.get(id);
      } catch {
        continue;
      }
      if (matches(e, q)) out.push(e);
    }
    return out;
  }

  /** Experiments whose metadata.yaml is currently invalid, with every problem. */
  problems(): Map<string, ConfigIssue[]> {
    for (const id of this.ids()) this.metadata(id, this.root.dirOf(id));
    return new Map(this.invalid);
  }

  variables(e: ExperimentMetadata): VariableInfo[] {
    return this.o.variables(e.chambers, e.variables);
  }

  // ---- runs --------------------------------------------------------------------

  /**
   * Re-reads the runs on disk and emits `run` events for those another process (the
   * CLI, another gateway) started or stopped since the last call. The first call only
   * learns the current state.
   */
  sync(): void {
    const now = new Map<string, Run>();
    for (const e of this.list()) for (const r of e.runs) now.set(`${r.experiment}/${r.id}`, r);
    const before = this.known;
    this.known = now;
    if (!before) return;
    for (const [key, r] of now) {
      const was = before.get(key);
      if (r.status === 'running' && !was) this.emit('run', { event: 'run_started', run: r });
      if (r.status === 'stopped' && was?.status !== 'stopped') {
        if (!was)
          this.emit('run', {
            event: 'run_started',
            run: { ...r, status: 'running', stop: undefined, stopped_by: undefined },
          });
        this.emit('run', { event: 'run_stopped', run: r });
      }
    }
  }

  openRuns(): Run[] {
    return this.list().flatMap((e) => e.runs.filter((r) => r.status === 'running'));
  }

  startRun(id: string, by: string, note?: string): Run {
    const e = this.get(id);
    const busy = this.openRuns().filter((r) => r.chambers.some((c) => e.metadata.chambers.includes(c)));
    if (busy.length) {
      const r = busy[0]!;
      throw new ExperimentError(
        409,
        r.experiment === id
          ? `experiment "${id}" already has run ${r.id} running`
          : `chamber(s) ${r.chambers.filter((c) => e.metadata.chambers.includes(c)).join(', ')} already in run ${r.id} of experiment "${r.experiment}"`,
      );
    }
    const n = e.runs.reduce((m, r) => Math.max(m, Number(r.id.slice(1))), 0) + 1;
    const runId = `r${String(n).padStart(3, '0')}`;
    const run: Run = {
      id: runId,
      experiment: id,
      status: 'running',
      start: this.now().toISOString(),
      chambers: e.metadata.chambers,
      sampling_period_s: e.metadata.sampling_period_s,
      started_by: by,
      file: `runs/${runId}/${id}_${runId}.nc`,
      ...(note ? { note } : {}),
    };
    this.writeRun(e.dir, run);
    this.known?.set(`${id}/${runId}`, run);
    this.history(e.dir, `run ${runId} started by ${by}`);
    this.emit('run', { event: 'run_started', run });
    return run;
  }

  stopRun(id: string, runId: string, by: string): Run {
    const e = this.get(id);
    const run = e.runs.find((r) => r.id === runId);
    if (!run)
      throw new ExperimentError(
        404,
        `experiment "${id}" has no run "${runId}" (runs: ${e.runs.map((r) => r.id).join(', ') || 'none'})`,
      );
    if (run.status !== 'running')
      throw new ExperimentError(409, `run ${runId} of "${id}" is already stopped (at ${run.stop})`);
    const stopped: Run = { ...run, status: 'stopped', stop: this.now().toISOString(), stopped_by: by };
    this.writeRun(e.dir, stopped);
    this.known?.set(`${id}/${runId}`, stopped);
    this.history(e.dir, `run ${runId} stopped by ${by}`);
    this.emit('run', { event: 'run_stopped', run: stopped });
    return stopped;
  }

  /** Regenerates README.md, dmp.md, sync.sh and MANIFEST.sha256 of an experiment. */
  async document(id: string): Promise<void> {
    const { metadata: e, dir, runs } = this.get(id);
    const vars = this.variables(e);
    const files = dataFiles(dir);
    const bytes = files.reduce((n, f) => n + f.bytes, 0);
    writeAtomic(join(dir, 'README.md'), readme(e, runs, vars, files, this.now(), reportSections(dir, runs)));
    writeAtomic(join(dir, 'dmp.md'), dmp(e, vars, runs, bytes));
    writeAtomic(join(dir, 'sync.sh'), syncScript(e, hostname(), join(this.root.nas, id)));
    chmodSync(join(dir, 'sync.sh'), 0o755);
    writeAtomic(join(dir, 'MANIFEST.sha256'), await manifest(dir));
  }

  // ---- internals -------------------------------------------------------------------

  private checkChambers(e: ExperimentMetadata): void {
    const known = this.o.chambers();
    const unknown = e.chambers.map((c, i) => ({ c, i })).filter(({ c }) => !known.includes(c));
    if (unknown.length) {
      const issues = unknown.map(({ c, i }) => ({
        file: 'experiment',
        path: `chambers[${i}]`,
        message: `unknown chamber (known: ${known.join(', ')})`,
        got: c,
      }));
      throw new ExperimentError(400, issues.map((i) => `${i.path}: ${i.message} (got "${i.got}")`).join('; '), issues);
    }
  }

  private metadata(id: string, dir: string): ExperimentMetadata | undefined {
    const file = join(dir, 'metadata.yaml');
    let st;
    try {
      st = statSync(file);
    } catch {
      return undefined;
    }
    const hit = this.cache.get(id);
    if (hit && hit.mtimeMs === st.mtimeMs) return hit.metadata;
    const label = `${id}/metadata.yaml`;
    const read = parseYamlText(readFileSync(file, 'utf8'), label);
    const parsed = read.ok ? ExperimentMetadata.safeParse(read.data) : undefined;
    if (!read.ok || !parsed?.success) {
      this.invalid.set(id, read.ok ? zodToIssues(label, parsed!.error!, read.data) : read.issues);
      return hit?.metadata;
    }
    if (parsed.data.id !== id) {
      this.invalid.set(id, [
        { file: label, path: 'id', message: `must be the folder name "${id}"`, got: parsed.data.id },
      ]);
      return hit?.metadata;
    }
    this.invalid.delete(id);
    this.cache.set(id, { mtimeMs: st.mtimeMs, metadata: parsed.data });
    return parsed.data;
  }

  private runsOf(dir: string): Run[] {
    const runsDir = join(dir, 'runs');
    if (!existsSync(runsDir)) return [];
    const out: Run[] = [];
    for (const name of readdirSync(runsDir).sort()) {
      const f = join(runsDir, name, 'run.yaml');
      let st;
      try {
        st = statSync(f);
      } catch {
        continue;
      }
      // Runs are re-read every second by sync(): parse a run.yaml again only when it changed.
      const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
      const hit = this.runCache.get(f);
      if (hit?.stamp === stamp) {
        if (hit.run) out.push(hit.run);
        continue;
      }
      const read = parseYamlText(readFileSync(f, 'utf8'), f);
      const parsed = read.ok ? Run.safeParse(read.data) : undefined;
      const run = parsed?.success ? parsed.data : undefined;
      this.runCache.set(f, { stamp, run });
      if (run) out.push(run);
    }
    return out;
  }

  private writeRun(dir: string, run: Run): void {
    mkdirSync(join(dir, 'runs', run.id), { recursive: true });
    writeAtomic(join(dir, 'runs', run.id, 'run.yaml'), stringify(run));
  }

  private history(dir: string, line: string): void {
    writeFileSync(join(dir, 'history.log'), `${this.now().toISOString()} ${line}\n`, { flag: 'a' });
  }
}

/** Per run, the completeness then the treatment-fidelity section, for the reports that exist beside the run file. */
function reportSections(dir: string, runs: Run[]): string[] {
  return runs.flatMap((r) => [...completenessSections(dir, r), ...fidelitySections(dir, r)]);
}

/** The treatment-fidelity section of a run whose fidelity.json exists (written at stop). */
function fidelitySections(dir: string, r: Run): string[] {
  const file = join(dir, dirname(r.file), 'fidelity.json');
  if (!existsSync(file)) return [];
  try {
    return [fidelityMarkdown(FidelityReport.parse(JSON.parse(readFileSync(file, 'utf8'))))];
  } catch {
    return [
      `## Treatment fidelity of run ${r.id}\n\n_The report \`${dirname(r.file)}/fidelity.json\` cannot be read._`,
    ];
  }
}

/** The completeness section of a run whose report (completeness.json beside the run file) exists. */
function completenessSections(dir: string, r: Run): string[] {
  return [r].flatMap((r) => {
    const file = join(dir, dirname(r.file), 'completeness.json');
    if (!existsSync(file)) return [];
    try {
      return [completenessMarkdown(JSON.parse(readFileSync(file, 'utf8')) as CompletenessReport)];
    } catch {
      return [
        `## Completeness of run ${r.id}\n\n_The report \`${dirname(r.file)}/completeness.json\` cannot be read; \`octopus verify ${r.experiment} ${r.id} --write\` makes it again._`,
      ];
    }
  });
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

function matches(e: Experiment, q: ExperimentQuery): boolean {
  const m = e.metadata;
  if (q.chamber && !m.chambers.includes(q.chamber)) return false;
  if (q.variable && m.variables.length && !m.variables.includes(q.variable)) return false;
  if (q.pi && !m.principal_investigator.name.toLowerCase().includes(q.pi.toLowerCase())) return false;
  if (q.text) {
    const hay = [
      m.id,
      m.title,
      m.description,
      m.project,
      m.principal_investigator.name,
      ...m.keywords,
      ...m.treatments.map((t) => t.name),
    ]
      .join(' ')
      .toLowerCase();
    if (
      !q.text
        .toLowerCase()
        .split(/\s+/)
        .filter(Boolean)
        .every((w) => hay.includes(w))
    )
      return false;
  }
  if (q.from || q.to) {
    // Overlap of the query range with the experiment's runs (a running run extends to now).
    const from = q.from?.getTime() ?? -Infinity;
    const to = q.to?.getTime() ?? Infinity;
    if (!e.runs.some((r) => Date.parse(r.start) <= to && (r.stop ? Date.parse(r.stop) : Date.now()) >= from))
      return false;
  }
  return true;
}
