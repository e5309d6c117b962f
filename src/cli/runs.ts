import { parseArgs } from 'node:util';
import { AuditLog } from '../auth/audit.ts';
import { loadConfig } from '../config/loader.ts';
import { EXIT_CONFIG } from '../core/errors.ts';
import { createExperimentStore } from '../experiments/factory.ts';
import { ExperimentError } from '../experiments/store.ts';
import { cliActor } from './admin.ts';

export { createExperimentStore };

type Out = (line: string) => void;

export const RUN_USAGE = `  octopus run start <experiment> [--note text]
  octopus run stop <experiment> <run>
  octopus run list [<experiment>] [--json]`;

/** `octopus run …`: runs started and stopped on the experiment folders directly. */
export async function runCommand(args: string[], out: Out, err: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, note: { type: 'string' }, json: { type: 'boolean' } },
  });
  const [sub, id, runId] = positionals;
  if (!(sub === 'start' && id) && !(sub === 'stop' && id && runId) && sub !== 'list') {
    err(`usage:\n${RUN_USAGE}`);
    return EXIT_CONFIG;
  }
  const loaded = loadConfig(values.config);
  const store = createExperimentStore(loaded);
  const audit = AuditLog.forDataDir(loaded.dataDir);
  try {
    if (sub === 'start') {
      audit.ensureWritable(`starting a run of ${id}`); // nothing unaudited: refused (exit 1) with path and errno
      const run = store.startRun(id!, cliActor(), values.note);
      audit.write({
        who: cliActor(),
        action: 'run_start',
        what: `${run.experiment}/${run.id}`,
        detail: { chambers: run.chambers, ...(run.note ? { note: run.note } : {}) },
      });
      out(
        values.json
          ? JSON.stringify(run)
          : `started run ${run.id} of ${run.experiment} (chambers ${run.chambers.join(', ')}) at ${run.start}`,
      );
      return 0;
    }
    if (sub === 'stop') {
      audit.ensureWritable(`stopping run ${id}/${runId}`);
      const run = store.stopRun(id!, runId!, cliActor());
      audit.write({ who: cliActor(), action: 'run_stop', what: `${run.experiment}/${run.id}` });
      out(values.json ? JSON.stringify(run) : `stopped run ${run.id} of ${run.experiment} at ${run.stop}`);
      return 0;
    }
    const runs = id ? store.get(id).runs : store.list().flatMap((e) => e.runs);
    if (values.json) out(JSON.stringify(runs, null, 2));
    else {
      for (const r of runs)
        out(
          `${r.experiment}\t${r.id}\t${r.status}\t${r.start}\t${r.stop ?? ''}\t${r.chambers.join(',')}${r.note ? `\t${r.note}` : ''}`,
        );
      if (!runs.length) out(id ? `experiment ${id} has no runs yet` : 'no runs yet');
    }
    return 0;
  } catch (e) {
    if (e instanceof ExperimentError) {
      err(`run ${sub}: ${e.message}`);
      return e.status === 400 ? EXIT_CONFIG : 1;
    }
    throw e;
  }
}
