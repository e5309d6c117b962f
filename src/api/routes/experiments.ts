import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { AuditLog } from '../../auth/audit.ts';
import type { UserStore } from '../../auth/users.ts';
import type { Experiment, ExperimentStore } from '../../experiments/store.ts';
import { ExperimentMetadata, type Run } from '../../experiments/schema.ts';
import { ExperimentParams, ListQuery, RunParams, StartRunBody, toMs } from '../api-schemas.ts';
import { BadParam } from '../hooks/errors.ts';
import { actor, requireRole } from '../hooks/auth.ts';

export interface ExperimentRouteOptions {
  store: ExperimentStore;
  users: UserStore;
  audit: AuditLog;
}

const security = [{ bearer: [] }];

const summary = (e: Experiment) => ({
  id: e.metadata.id,
  title: e.metadata.title,
  chambers: e.metadata.chambers,
  principal_investigator: e.metadata.principal_investigator.name,
  project: e.metadata.project,
  keywords: e.metadata.keywords,
  created: e.metadata.created,
  runs: e.runs.length,
  running: e.runs.find((r) => r.status === 'running')?.id ?? null,
  first_start: e.runs[0]?.start ?? null,
  last_stop: e.runs.at(-1)?.stop ?? null,
});

const detail = (store: ExperimentStore, e: Experiment) => ({
  ...e.metadata,
  variables_archived: store.variables(e.metadata),
  runs: e.runs.map(runView),
});

const runView = (r: Run) => {
  const at = `/api/experiments/${r.experiment}/runs/${r.id}`;
  return { ...r, run: r.id, download: `${at}/data.nc`, fidelity: `${at}/fidelity`, completeness: `${at}/completeness` };
};

/** Catalogue and run control: viewers read, operators create experiments and start/stop runs. */
export const experimentRoutes: FastifyPluginAsync<ExperimentRouteOptions> = async (base, o) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const viewer = requireRole(o.users, 'viewer');
  const operator = requireRole(o.users, 'operator');

  app.get(
    '/api/experiments',
    {
      onRequest: viewer,
      schema: { tags: ['experiments'], summary: 'Search experiments', security, querystring: ListQuery },
    },
    async (req) => {
      const q = req.query;
      const from = toMs(q.from);
      const to = toMs(q.to);
      if (from !== undefined && to !== undefined && from > to)
        throw new BadParam('to', q.to, `is before from (${q.from})`);
      const list = o.store.list({
        text: q.text,
        chamber: q.chamber,
        variable: q.variable,
        pi: q.pi,
        from: from === undefined ? undefined : new Date(from),
        to: to === undefined ? undefined : new Date(to),
      });
      return { experiments: list.map(summary), count: list.length };
    },
  );

  app.get(
    '/api/experiments/:id',
    {
      onRequest: viewer,
      schema: {
        tags: ['experiments'],
        summary: 'One experiment: metadata, variables, runs',
        security,
        params: ExperimentParams,
      },
    },
    async (req) => detail(o.store, o.store.get(req.params.id)),
  );

  app.post(
    '/api/experiments',
    {
      onRequest: operator,
      schema: {
        tags: ['experiments'],
        summary: 'Create an experiment (its folder, metadata.yaml and documents)',
        security,
        body: ExperimentMetadata,
      },
    },
    async (req, reply) => {
      o.audit.ensureWritable(`creating experiment ${req.body.id}`);
      const e = await o.store.create(req.body, actor(req));
      o.audit.record({ who: actor(req), action: 'experiment_create', what: e.metadata.id });
      return reply.code(201).header('location', `/api/experiments/${e.metadata.id}`).send(detail(o.store, e));
    },
  );

  app.post(
    '/api/experiments/:id/runs',
    {
      onRequest: operator,
      schema: {
        tags: ['runs'],
        summary: 'Start a run (409 when a chamber is already in a run)',
        security,
        params: ExperimentParams,
        body: StartRunBody,
      },
    },
    async (req, reply) => {
      o.audit.ensureWritable(`starting a run of ${req.params.id}`);
      const run = o.store.startRun(req.params.id, actor(req), req.body?.note);
      o.audit.record({
        who: actor(req),
        action: 'run_start',
        what: `${run.experiment}/${run.id}`,
        detail: { chambers: run.chambers, ...(run.note ? { note: run.note } : {}) },
      });
      return reply
        .code(201)
        .header('location', `/api/experiments/${run.experiment}/runs/${run.id}/data.nc`)
        .send(runView(run));
    },
  );

  app.post(
    '/api/experiments/:id/runs/:run/stop',
    {
      onRequest: operator,
      schema: { tags: ['runs'], summary: 'Stop a running run (409 when already stopped)', security, params: RunParams },
    },
    async (req) => {
      o.audit.ensureWritable(`stopping run ${req.params.id}/${req.params.run}`);
      const run = o.store.stopRun(req.params.id, req.params.run, actor(req));
      o.audit.record({ who: actor(req), action: 'run_stop', what: `${run.experiment}/${run.id}` });
      return runView(run);
    },
  );
};
