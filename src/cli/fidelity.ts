import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/loader.ts';
import { EXIT_CONFIG } from '../core/errors.ts';
import { createExperimentStore, experimentPaths } from '../experiments/factory.ts';
import { ExperimentError, runOf } from '../experiments/store.ts';
import { fidelityMarkdown } from '../fidelity/markdown.ts';
import { writeFidelityAttributes } from '../fidelity/netcdf-attrs.ts';
import { toleranceSourceOf } from '../fidelity/plan.ts';
import { computeFidelityAsync, saveFidelityReport } from '../fidelity/report.ts';

type Out = (line: string) => void;

export const FIDELITY_USAGE = `  octopus fidelity <experiment> [run] [--json] [--write]
                                       treatment fidelity of a run (default: the latest run);
                                       --write (stopped runs) writes fidelity.json, the file's
                                       attributes, the README section and the MANIFEST again`;

/**
 * `octopus fidelity <experiment> [run]`: the run's treatment-fidelity report, computed from
 * its file with the configuration's tolerances and the experiment's treatments (printed
 * as the README section, or JSON). `--write` on a stopped run does what the stop does:
 * fidelity.json beside the file, the attributes in the file, the experiment's documents
 * (README, MANIFEST) regenerated — for runs recorded before the report existed, or after a
 * tolerance was corrected.
 */
export async function fidelityCommand(args: string[], out: Out, err: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' }, write: { type: 'boolean' } },
  });
  const [id, runId] = positionals;
  if (!id || positionals.length > 2) {
    err(`usage:\n${FIDELITY_USAGE}`);
    return EXIT_CONFIG;
  }
  const loaded = loadConfig(values.config);
  const store = createExperimentStore(loaded);
  try {
    const e = store.get(id);
    const run = runOf(e, runId);
    const paths = experimentPaths(loaded);
    const candidates = [
      join(paths.working, id, run.id, basename(run.file)),
      join(paths.local, id, run.file),
      join(e.dir, run.file),
    ];
    const file = candidates.find((p) => existsSync(p));
    if (!file)
      throw new ExperimentError(404, `run ${id}/${run.id} has no data file (looked in ${candidates.join(', ')})`);
    const open = run.status === 'running' || file === candidates[0];
    if (values.write && open)
      throw new ExperimentError(
        409,
        `run ${id}/${run.id} is still recording (${file}): its report is written when it is finished; without --write it is printed`,
      );
    const report = await computeFidelityAsync(file, { source: toleranceSourceOf(loaded), metadata: e.metadata, open });
    if (values.write) {
      saveFidelityReport(report, dirname(file));
      try {
        writeFidelityAttributes(file, report, Object.keys(report.chambers));
      } catch (x) {
        err(`octopus fidelity: attributes not written into ${file}: ${(x as Error).message}`);
      }
      if (file === join(e.dir, run.file)) await store.document(id);
    }
    if (values.json) out(JSON.stringify(report, null, 2));
    else {
      out(`run ${id}/${run.id}: ${file}`);
      out(fidelityMarkdown(report));
      if (values.write)
        out(
          `wrote ${join(dirname(file), 'fidelity.json')}${file === join(e.dir, run.file) ? ', the attributes, README.md and MANIFEST.sha256' : ' and the attributes'}`,
        );
    }
    return 0;
  } catch (x) {
    if (x instanceof ExperimentError) {
      err(`octopus fidelity: ${x.message}`);
      return EXIT_CONFIG;
    }
    throw x;
  }
}
