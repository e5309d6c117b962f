import type { Logger } from '../core/log.ts';
import type { Run } from '../experiments/schema.ts';
import type { ExperimentStore } from '../experiments/store.ts';
import { writeFidelityAttributes } from './netcdf-attrs.ts';
import type { ToleranceSource } from './plan.ts';
import { computeFidelityAsync, saveFidelityReport } from './report.ts';
import type { FidelityReport } from './report-schema.ts';

/** The fidelity report of a stopped run, computed once; `save` writes fidelity.json beside the archived file. */
export interface StopFidelity {
  report?: FidelityReport;
  save(dir: string): void;
}

/**
 * At run stop (the archiver, file finished and not yet moved): computes the report
 * without blocking the event loop and writes its attributes into the file. Derived
 * data: a failure is logged and never strands the run.
 */
export async function stopFidelity(
  key: string,
  path: string,
  run: Run,
  store: ExperimentStore,
  tolerances: ToleranceSource | undefined,
  log: Logger,
): Promise<StopFidelity> {
  let report: FidelityReport | undefined;
  try {
    let metadata;
    try {
      metadata = store.get(run.experiment).metadata;
    } catch {
      metadata = undefined; // judged without the treatment tier
    }
    report = await computeFidelityAsync(path, { source: tolerances, metadata });
    const judged = Object.values(report.chambers).reduce((n, c) => n + Object.keys(c.variables).length, 0);
    const worst = Object.entries(report.chambers)
      .flatMap(([c, cf]) => Object.entries(cf.variables).map(([v, x]) => ({ c, v, p: x.within_tolerance_percent })))
      .filter((x) => x.p !== null)
      .sort((a, b) => a.p! - b.p!)[0];
    log.info(
      `run ${key}: treatment fidelity of ${judged} controlled variable(s)${worst ? `, lowest ${worst.p!.toFixed(1)} % within tolerance (${worst.c} ${worst.v})` : ''}`,
    );
    try {
      const n = writeFidelityAttributes(path, report, Object.keys(report.chambers));
      if (n) log.info(`run ${key}: fidelity attributes written on ${n} variable(s) of ${path}`);
    } catch (err) {
      log.warn(
        `run ${key}: fidelity attributes not written into the file (${(err as Error).message}); fidelity.json has the report`,
      );
    }
  } catch (err) {
    log.warn(`run ${key}: no fidelity report (${(err as Error).message})`);
  }
  return {
    report,
    save(dir: string) {
      if (!report) return;
      try {
        saveFidelityReport(report, dir);
      } catch (err) {
        log.warn(`run ${key}: cannot write fidelity.json into ${dir} (${(err as Error).message})`);
      }
    },
  };
}
