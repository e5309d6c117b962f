import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/loader.ts';
import { EXIT_CONFIG } from '../core/errors.ts';
import { computeCompleteness, completenessMarkdown, writeCompletenessReport } from '../experiments/completeness.ts';
import { createExperimentStore, experimentPaths } from '../experiments/factory.ts';
import { ExperimentError, runOf } from '../experiments/store.ts';
import { compareWithDatabase } from '../experiments/verify.ts';
import { dailyPath, writeDailyFile } from '../collector/sinks/netcdf/daily.ts';

type Out = (line: string) => void;

export const VERIFY_USAGE = `  octopus verify <experiment> [run] [--json] [--write] [--max n]
                                       completeness of a run file (default: the latest run), and
                                       with influx.url set, every difference from the database
                                       (exit 1 on a difference); --write writes completeness.json
                                       and, for a stopped run, the daily file again`;

/**
 * `octopus verify <experiment> [run]`: recomputes the run's completeness report from its
 * file and, when the configuration has an InfluxDB (`influx.url`), compares the file with
 * the database over the run's window. Exit 0 when they agree (or nothing to compare
 * with), 1 on any difference, 2 on a usage or configuration error.
 */
export async function verifyCommand(
  args: string[],
  out: Out,
  err: Out,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      write: { type: 'boolean' },
      max: { type: 'string' },
    },
  });
  const [id, runId] = positionals;
  const max = values.max === undefined ? 50 : Number(values.max);
  if (!id || positionals.length > 2 || !Number.isInteger(max) || max < 0) {
    err(`usage:\n${VERIFY_USAGE}`);
    return EXIT_CONFIG;
  }
  const loaded = loadConfig(values.config);
  const store = createExperimentStore(loaded);
  let file: string;
  let runName: string;
  let runStartMs: number | undefined;
  let runStopMs: number | undefined;
  let archived = false;
  let finished = false;
  try {
    const e = store.get(id);
    const run = runOf(e, runId);
    runName = `${id}/${run.id}`;
    runStartMs = Date.parse(run.start);
    runStopMs = run.stop ? Date.parse(run.stop) : undefined;
    const paths = experimentPaths(loaded);
    // An open run is in the working folder; a stopped one the NAS has not taken yet, in the local fallback.
    const candidates = [
      join(paths.working, id, run.id, basename(run.file)),
      join(paths.local, id, run.file),
      join(e.dir, run.file),
    ];
    const found = candidates.find((p) => existsSync(p));
    if (!found) throw new ExperimentError(404, `run ${runName} has no data file (looked in ${candidates.join(', ')})`);
    file = found;
    // A stopped run's file out of the working folder is finished: its daily file can be (re)written beside it.
    finished = run.status === 'stopped' && found !== candidates[0];
    archived = finished && found === join(e.dir, run.file);
  } catch (e) {
    if (e instanceof ExperimentError) {
      err(`octopus verify: ${e.message}`);
      return EXIT_CONFIG;
    }
    throw e;
  }
  const started = process.hrtime.bigint();
  const report = values.write ? writeCompletenessReport(file, dirname(file)) : computeCompleteness(file);
  // --write on a stopped run also (re)writes its daily file and the folder's README and MANIFEST.
  const daily = values.write && finished ? await writeDailyFile(file) : undefined;
  if (daily && archived) await store.document(id);
  const cfg = loaded.config.influx;
  const comparison = cfg.url
    ? await compareWithDatabase(file, cfg, env[cfg.token_env] || undefined, {
        maxListed: values.json ? 10_000 : max,
        runStartMs,
        runStopMs,
      })
    : undefined;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (values.json) {
    out(
      JSON.stringify(
        { run: runName, file, completeness: report, ...(comparison ? { database: comparison } : {}) },
        null,
        2,
      ),
    );
  } else {
    out(`run ${runName}: ${file}`);
    out(completenessMarkdown(report));
    if (values.write) out(`wrote ${join(dirname(file), 'completeness.json')}`);
    if (daily) out(`wrote ${dailyPath(file)} (${daily.days} day(s), ${daily.variables} variables)`);
    if (!comparison) out('no influx.url configured: the file was not compared with a database');
    else {
      out(
        `compared with ${comparison.target} from ${comparison.from} to ${comparison.to}: ${comparison.compared} slot values, ${comparison.samples} database samples`,
      );
      if (comparison.differences_total === 0) out('no difference: the file and the database agree');
      else {
        const k = comparison.by_kind;
        out(
          `${comparison.differences_total} difference(s): ${k.missing_in_file} missing in the file, ${k.missing_in_db} missing in the database, ${k.value_differs} value(s) differ`,
        );
        for (const d of comparison.differences)
          out(
            `  ${d.kind.padEnd(15)} ${d.chamber} ${d.variable} ${d.time}  file ${d.file ?? 'missing'}${d.qc !== undefined ? ` (qc ${d.qc})` : ''}  database ${d.db ?? 'missing'}`,
          );
        if (comparison.differences_total > comparison.differences.length)
          out(
            `  … and ${comparison.differences_total - comparison.differences.length} more (--max n, or --json for all)`,
          );
      }
    }
    out(`verified in ${seconds.toFixed(2)} s`);
  }
  return comparison && comparison.differences_total > 0 ? 1 : 0;
}
