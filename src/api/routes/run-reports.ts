import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { UserStore } from '../../auth/users.ts';
import { computeCompletenessAsync, type CompletenessReport } from '../../experiments/completeness.ts';
import { ExperimentError, runOf, type ExperimentStore } from '../../experiments/store.ts';
import { deviationSeries } from '../../fidelity/deviation.ts';
import type { ToleranceSource } from '../../fidelity/plan.ts';
import { computeFidelityAsync } from '../../fidelity/report.ts';
import { CompletenessReply, DeviationQuery, DeviationReply, FidelityReply, RunParams } from '../api-schemas.ts';
import { BadParam } from '../hooks/errors.ts';
import { requireRole } from '../hooks/auth.ts';
import type { RunFileResolver } from './downloads.ts';

export interface RunReportOptions {
  store: ExperimentStore;
  users: UserStore;
  runFile?: RunFileResolver;
  tolerances?: ToleranceSource;
}

const security = [{ bearer: [] }];

/**
 * The run's reports (viewer and up, like the plot preview): completeness and treatment
 * fidelity. A stopped run answers with the report written at stop beside its file; an
 * open run (or a stopped one whose report is missing) is computed from the file now,
 * without blocking the event loop, one computation per run at a time.
 */
export const runReportRoutes: FastifyPluginAsync<RunReportOptions> = async (base, o) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const viewer = requireRole(o.users, 'viewer');
  const inFlight = new Map<string, Promise<unknown>>();
  const once = <T>(key: string, f: () => Promise<T>): Promise<T> => {
    const was = inFlight.get(key);
    if (was) return was as Promise<T>;
    const p = f().finally(() => inFlight.delete(key));
    inFlight.set(key, p);
    return p;
  };

  const fileOf = (id: string, runId: string) => {
    const e = o.store.get(id);
    const run = runOf(e, runId);
    const path = o.runFile?.(id, run) ?? join(e.dir, run.file);
    if (!path || !existsSync(path)) throw new ExperimentError(404, `run ${runId} of "${id}" has no data file yet`);
    return { e, run, path };
  };
  /** The report written at stop beside the file, if the run is stopped and it is there and valid. */
  const stored = (path: string, name: string, stopped: boolean): unknown => {
    const file = join(dirname(path), name);
    if (!stopped || !existsSync(file)) return undefined;
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      return undefined; // recomputed below
    }
  };

  app.get(
    '/api/experiments/:id/runs/:run/fidelity',
    {
      onRequest: viewer,
      schema: {
        tags: ['runs'],
        summary:
          'Treatment fidelity of the run: per chamber and controlled variable, time within tolerance, deviations, excursions, coverage; per treatment group (written at stop; computed now for an open run)',
        security,
        params: RunParams,
        response: { 200: FidelityReply },
      },
    },
    async (req) => {
      const { id, run } = req.params;
      const { e, run: r, path } = fileOf(id, run);
      const saved = FidelityReply.safeParse(stored(path, 'fidelity.json', r.status === 'stopped'));
      if (saved.success) return saved.data;
      return once(`fidelity:${id}/${run}`, () =>
        computeFidelityAsync(path, { source: o.tolerances, metadata: e.metadata, open: r.status === 'running' }),
      );
    },
  );

  app.get(
    '/api/experiments/:id/runs/:run/completeness',
    {
      onRequest: viewer,
      schema: {
        tags: ['runs'],
        summary:
          'Completeness of the run: per chamber and variable, slots expected, measured, held, missing, with the gaps and their causes (written at stop; computed now for an open run)',
        security,
        params: RunParams,
        response: { 200: CompletenessReply },
      },
    },
    async (req) => {
      const { id, run } = req.params;
      const { run: r, path } = fileOf(id, run);
      const saved = CompletenessReply.safeParse(stored(path, 'completeness.json', r.status === 'stopped'));
      if (saved.success) return saved.data;
      const report: CompletenessReport & { open?: boolean } = await once(`completeness:${id}/${run}`, () =>
        computeCompletenessAsync(path),
      );
      return { ...report, open: r.status === 'running' };
    },
  );

  app.get(
    '/api/experiments/:id/runs/:run/fidelity/deviation',
    {
      onRequest: viewer,
      schema: {
        tags: ['runs'],
        summary:
          'value − setpoint of one controlled variable, decimated for a plot: ≤ points buckets per judged chamber with mean/min/max, and the band',
        security,
        params: RunParams,
        querystring: DeviationQuery,
        response: { 200: DeviationReply },
      },
    },
    async (req) => {
      const { id, run } = req.params;
      const { e, path } = fileOf(id, run);
      const series = await deviationSeries(path, req.query.var, req.query.points, {
        source: o.tolerances,
        metadata: e.metadata,
      });
      if (!series)
        throw new BadParam('var', req.query.var, 'is not a controlled variable with a tolerance in this run');
      return series;
    },
  );
};
