import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AuditLog } from '../../auth/audit.ts';
import type { UserStore } from '../../auth/users.ts';
import { ExperimentError, type ExperimentStore } from '../../experiments/store.ts';
import { contentDisposition } from '../../core/escape.ts';
import { writeSubsetNc } from '../subset-nc.ts';
import { Instant, RunParams, toMs } from '../../api/api-schemas.ts';
import { NcRunReader } from '../../api/nc-reader.ts';
import { BadParam } from '../../api/hooks/errors.ts';
import { actor, requireRole } from '../../api/hooks/auth.ts';
import type { RunFileResolver } from '../../api/routes/downloads.ts';

export interface SubsetRouteOptions {
  store: ExperimentStore;
  users: UserStore;
  audit: AuditLog;
  runFile?: RunFileResolver;
}

const SubsetQuery = z
  .object({
    vars: z
      .string()
      .regex(/^[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*$/, 'comma-separated variable names')
      .optional()
      .describe('variables (default: all), each with its quality flag'),
    from: Instant.optional(),
    to: Instant.optional(),
  })
  .strict();

/** A subset of a run (variables, time range) as NetCDF: same dimensions and attributes as the run file. */
export const subsetRoutes: FastifyPluginAsync<SubsetRouteOptions> = async (base, o) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  app.get(
    '/api/experiments/:id/runs/:run/subset.nc',
    {
      onRequest: requireRole(o.users, 'researcher'),
      schema: {
        tags: ['downloads'],
        summary: 'A subset of the run (variables, time range) as NetCDF (CF, same attributes as the run file)',
        security: [{ bearer: [] }],
        params: RunParams,
        querystring: SubsetQuery,
      },
    },
    async (req, reply) => {
      const { id, run: runId } = req.params;
      const q = req.query;
      const e = o.store.get(id);
      const run = e.runs.find((r) => r.id === runId);
      if (!run) throw new ExperimentError(404, `experiment "${id}" has no run "${runId}"`);
      const path = o.runFile?.(id, run) ?? join(e.dir, run.file);
      try {
        statSync(path);
      } catch {
        throw new ExperimentError(404, `run ${runId} of "${id}" has no data file yet`);
      }
      const from = toMs(q.from);
      const to = toMs(q.to);
      if (from !== undefined && to !== undefined && from > to)
        throw new BadParam('to', q.to, `is before from (${q.from})`);
      o.audit.ensureWritable(`download of ${id}/${runId}/subset.nc`);
      const reader = NcRunReader.open(path);
      const tmp = mkdtempSync(join(tmpdir(), 'octopus-subset-'));
      const out = join(tmp, 'subset.nc');
      let records: number;
      let names: string[];
      try {
        const all = reader.dataVariables();
        const want = q.vars?.split(',');
        const unknown = (want ?? []).filter((n) => !all.some((v) => v.name === n));
        if (unknown.length)
          throw new BadParam(
            'vars',
            q.vars,
            `unknown variable(s) ${unknown.join(', ')} (variables: ${all.map((v) => v.name).join(', ')})`,
          );
        const vars = want ? want.map((n) => all.find((v) => v.name === n)!) : all;
        names = vars.map((v) => v.name);
        const [a, b] = reader.range(from, to);
        records = writeSubsetNc(
          path,
          reader,
          vars,
          a,
          b,
          out,
          `${id}/${runId} vars=${names.join(',')}${q.from ? ` from=${q.from}` : ''}${q.to ? ` to=${q.to}` : ''}`,
        );
      } catch (err) {
        rmSync(tmp, { recursive: true, force: true });
        throw err;
      } finally {
        reader.close();
      }
      const size = statSync(out).size;
      const stream = createReadStream(out);
      stream.on('close', () => {
        rmSync(tmp, { recursive: true, force: true });
        o.audit.record({
          who: actor(req),
          action: 'download',
          what: `${id}/${runId}/subset.nc`,
          bytes: stream.bytesRead,
          detail: {
            vars: names,
            ...(q.from ? { from: q.from } : {}),
            ...(q.to ? { to: q.to } : {}),
            records,
            complete: stream.bytesRead === size,
          },
        });
      });
      return reply
        .header('content-type', 'application/x-netcdf')
        .header('content-length', size)
        .header('content-disposition', contentDisposition(`${id}_${runId}_subset.nc`))
        .send(stream);
    },
  );
};
