import { createReadStream, existsSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { contentDisposition } from '../../core/escape.ts';
import { filesUnder } from '../../core/files.ts';
import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { ZipFile } from 'yazl';
import type { AuditLog } from '../../auth/audit.ts';
import type { UserStore } from '../../auth/users.ts';
import type { Run } from '../../experiments/schema.ts';
import { ExperimentError, runOf, type ExperimentStore } from '../../experiments/store.ts';
import { CsvQuery, ExperimentParams, PreviewQuery, PreviewReply, RunParams, toMs } from '../api-schemas.ts';
import { NcRunReader, type NcVariable } from '../nc-reader.ts';
import { dailyPath } from '../../collector/sinks/netcdf/daily.ts';
import { parseRange } from '../range.ts';
import { BadParam } from '../hooks/errors.ts';
import { actor, requireRole } from '../hooks/auth.ts';

/** Where a run's NetCDF file is now (an open run may be in a working folder); undefined = none yet. */
export type RunFileResolver = (experimentId: string, run: Run) => string | undefined;

export interface DownloadRouteOptions {
  store: ExperimentStore;
  users: UserStore;
  audit: AuditLog;
  runFile?: RunFileResolver;
}

const security = [{ bearer: [] }];
const isoOf = (sec: number) => new Date(Math.round(sec * 1000)).toISOString().replace('.000Z', 'Z');

/** Shortest decimal that reads back as the same float32 (21.3, not 21.299999237060547). */
function fmt(x: number, v: NcVariable): string {
  if (Number.isNaN(x)) return '';
  if (v.type !== 'float') return String(x);
  for (let p = 6; p < 9; p++) {
    const s = Number(x.toPrecision(p));
    if (Math.fround(s) === x) return String(s);
  }
  return String(x);
}

/** RFC 6266: ASCII fallback with unsafe characters replaced, plus `filename*=UTF-8''…` when it had to change. */
const disposition = (name: string) => contentDisposition(name);

/** Data downloads (researcher and up) and the plot preview (viewer and up). Every download is audited. */
export const downloadRoutes: FastifyPluginAsync<DownloadRouteOptions> = async (base, o) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const viewer = requireRole(o.users, 'viewer');
  const researcher = requireRole(o.users, 'researcher');

  const experimentRun = (id: string, runId: string) => {
    const e = o.store.get(id);
    return { e, run: runOf(e, runId) };
  };
  const fileOf = (id: string, runId: string) => {
    const { e, run } = experimentRun(id, runId);
    const path = o.runFile?.(id, run) ?? join(e.dir, run.file);
    if (!path || !existsSync(path)) throw new ExperimentError(404, `run ${runId} of "${id}" has no data file yet`);
    return { e, run, path };
  };
  // Written when the stream closes: never throws there (a failure is logged and shown in
  // health); the request was refused up front (ensureWritable) if the log could not be written.
  const audit = (req: FastifyRequest, what: string, bytes: number, detail: Record<string, unknown>) =>
    o.audit.record({ who: actor(req), action: 'download', what, bytes, detail });

  app.get(
    '/api/experiments/:id/runs/:run/data.nc',
    {
      onRequest: researcher,
      schema: {
        tags: ['downloads'],
        summary: "The run's NetCDF file (also while running); Range requests → 206",
        security,
        params: RunParams,
      },
    },
    async (req, reply) => {
      const { id, run } = req.params;
      return sendNetcdf(req, reply, id, run, fileOf(id, run).path, 'data.nc', `${id}_${run}.nc`);
    },
  );

  app.get(
    '/api/experiments/:id/runs/:run/daily.nc',
    {
      onRequest: researcher,
      schema: {
        tags: ['downloads'],
        summary: "The run's daily aggregates (<run file>_daily.nc, written when the run stops); Range requests → 206",
        security,
        params: RunParams,
      },
    },
    async (req, reply) => {
      const { id, run } = req.params;
      const path = dailyPath(fileOf(id, run).path);
      if (!existsSync(path))
        throw new ExperimentError(
          404,
          `run ${run} of "${id}" has no daily file yet (it is written when the run stops)`,
        );
      return sendNetcdf(req, reply, id, run, path, 'daily.nc', `${id}_${run}_daily.nc`);
    },
  );

  /** A NetCDF file of a run with ETag, conditional and Range requests; audited when the stream closes. */
  const sendNetcdf = (
    req: FastifyRequest,
    reply: FastifyReply,
    id: string,
    run: string,
    path: string,
    what: string,
    name: string,
  ) => {
    if (req.method !== 'HEAD') o.audit.ensureWritable(`download of ${id}/${run}/${what}`);
    const st = statSync(path);
    const size = st.size;
    const etag = `"${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    reply
      .header('accept-ranges', 'bytes')
      .header('etag', etag)
      .header('last-modified', st.mtime.toUTCString())
      .header('content-type', 'application/x-netcdf')
      .header('content-disposition', disposition(name));
    const inm = req.headers['if-none-match'];
    if (inm && inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')) return reply.code(304).send();
    const ifRange = [req.headers['if-range']].flat()[0];
    const rangeOk =
      !ifRange ||
      ifRange === etag ||
      (!ifRange.startsWith('"') &&
        !ifRange.startsWith('W/') &&
        Date.parse(ifRange) >= Math.floor(st.mtimeMs / 1000) * 1000);
    const range = rangeOk ? parseRange(req.headers.range, size) : { kind: 'none' as const };
    if (range.kind === 'unsatisfiable') {
      return reply
        .code(416)
        .header('content-range', `bytes */${size}`)
        .type('application/json')
        .header('content-disposition', 'inline')
        .send({ error: `range not satisfiable (file has ${size} bytes)`, field: 'range', value: req.headers.range });
    }
    const [start, end] = range.kind === 'range' ? [range.start, range.end] : [0, size - 1];
    const length = size === 0 ? 0 : end - start + 1;
    if (range.kind === 'range') reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
    reply.header('content-length', length);
    // HEAD: an empty stream keeps our Content-Length (fastify's HEAD handler drops the body).
    if (req.method === 'HEAD') return reply.send(Readable.from([]));
    if (length === 0) return reply.send('');
    const stream = createReadStream(path, { start, end });
    stream.on('close', () =>
      audit(req, `${id}/${run}/${what}`, stream.bytesRead, {
        file: relative(o.store.get(id).dir, path).split(sep).join('/'),
        ...(range.kind === 'range' ? { range: `bytes=${start}-${end}` } : {}),
        size,
        complete: stream.bytesRead === length,
      }),
    );
    return reply.send(stream);
  };

  app.get(
    '/api/experiments/:id/runs/:run/data.csv',
    {
      onRequest: researcher,
      schema: {
        tags: ['downloads'],
        summary: 'A subset of the run as CSV (streamed): time, chamber, one column per variable and its quality flag',
        security,
        params: RunParams,
        querystring: CsvQuery,
      },
    },
    async (req, reply) => {
      const { id, run } = req.params;
      const q = req.query;
      const { path } = fileOf(id, run);
      const { from, to } = timeRange(q);
      o.audit.ensureWritable(`download of ${id}/${run}/data.csv`);
      const reader = NcRunReader.open(path);
      let vars: NcVariable[];
      let chambers: number[];
      try {
        vars = pickVars(reader, q.vars?.split(','), 'vars');
        chambers = pickChambers(reader, q.chamber?.split(','));
      } catch (e) {
        reader.close();
        throw e;
      }
      const withQc = q.qc === 'true';
      const time = reader.variables.get('time')!;
      const qcs = vars.map((v) => (withQc && v.qc ? reader.variables.get(v.qc) : undefined));
      const [a, b] = reader.range(from, to);
      let bytes = 0;
      let rows = 0;
      let done = false;
      async function* lines(): AsyncGenerator<string> {
        const head = ['time', 'chamber', ...vars.flatMap((v, i) => (qcs[i] ? [v.name, qcs[i]!.name] : [v.name]))].join(
          ',',
        );
        yield `${head}\n`;
        for (const chunk of reader.chunks(a, b, 256 * 1024)) {
          let out = '';
          for (let k = 0; k < chunk.count; k++) {
            const t = isoOf(chunk.time(k, time));
            for (const c of chambers) {
              out += `${t},${reader.chambers[c]}`;
              for (let i = 0; i < vars.length; i++) {
                out += `,${fmt(chunk.value(k, vars[i]!, c), vars[i]!)}`;
                const qv = qcs[i];
                if (qv) out += `,${fmt(chunk.value(k, qv, c), qv)}`;
              }
              out += '\n';
              rows++;
            }
          }
          yield out;
        }
        done = true;
      }
      const counted = async function* (): AsyncGenerator<Buffer> {
        for await (const s of lines()) {
          const buf = Buffer.from(s);
          bytes += buf.length;
          yield buf;
        }
      };
      const stream = Readable.from(counted());
      stream.on('close', () => {
        reader.close();
        audit(req, `${id}/${run}/data.csv`, bytes, {
          vars: vars.map((v) => v.name),
          chambers: chambers.map((c) => reader.chambers[c]),
          ...(q.from ? { from: q.from } : {}),
          ...(q.to ? { to: q.to } : {}),
          rows,
          complete: done,
        });
      });
      const suffix =
        q.from || q.to ? `_${(q.from ?? 'start').replace(/[:]/g, '')}_${(q.to ?? 'end').replace(/[:]/g, '')}` : '';
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', disposition(`${id}_${run}${suffix}.csv`))
        .send(stream);
    },
  );

  app.get(
    '/api/experiments/:id/runs/:run/preview',
    {
      onRequest: viewer,
      schema: {
        tags: ['downloads'],
        summary: 'One variable decimated for a plot: ≤ points buckets per chamber with mean/min/max',
        security,
        params: RunParams,
        querystring: PreviewQuery,
        response: { 200: PreviewReply },
      },
    },
    async (req) => {
      const { id, run } = req.params;
      const q = req.query;
      const { path } = fileOf(id, run);
      const { from, to } = timeRange(q);
      const reader = NcRunReader.open(path);
      try {
        const [v] = pickVars(reader, [q.var], 'var');
        const qcv = v!.qc ? reader.variables.get(v!.qc) : undefined;
        const time = reader.variables.get('time')!;
        const [a, b] = reader.range(from, to);
        const n = b - a;
        const per = Math.max(1, Math.ceil(n / q.points));
        const nb = Math.ceil(n / per);
        const nc = reader.chambers.length;
        const sum = new Float64Array(nb * nc);
        const cnt = new Uint32Array(nb * nc);
        const min = new Float64Array(nb * nc).fill(Infinity);
        const max = new Float64Array(nb * nc).fill(-Infinity);
        const t0 = new Float64Array(nb);
        for (const chunk of reader.chunks(a, b)) {
          for (let k = 0; k < chunk.count; k++) {
            const r = chunk.start + k - a;
            const bi = Math.floor(r / per);
            if (r % per === 0) t0[bi] = chunk.time(k, time);
            for (let c = 0; c < nc; c++) {
              const x = chunk.value(k, v!, c);
              if (Number.isNaN(x)) continue;
              if (qcv && chunk.value(k, qcv, c) >= 2) continue; // bad or missing
              const j = bi * nc + c;
              sum[j] = sum[j]! + x;
              cnt[j] = cnt[j]! + 1;
              if (x < min[j]!) min[j] = x;
              if (x > max[j]!) max[j] = x;
            }
          }
        }
        const round = (x: number) => (v!.type === 'float' ? Number(fmt(x, v!)) : x);
        const chambers: Record<
          string,
          Array<{ t: string; n: number; mean: number | null; min: number | null; max: number | null }>
        > = {};
        reader.chambers.forEach((name, c) => {
          chambers[name] = Array.from({ length: nb }, (_, bi) => {
            const j = bi * nc + c;
            const k = cnt[j]!;
            return {
              t: isoOf(t0[bi]!),
              n: k,
              mean: k ? sum[j]! / k : null,
              min: k ? round(min[j]!) : null,
              max: k ? round(max[j]!) : null,
            };
          });
        });
        return {
          var: v!.name,
          units: v!.units ?? null,
          long_name: v!.longName ?? null,
          records: n,
          bucket_records: per,
          chambers,
        };
      } finally {
        reader.close();
      }
    },
  );

  app.get(
    '/api/experiments/:id/archive.zip',
    {
      onRequest: researcher,
      schema: {
        tags: ['downloads'],
        summary: 'The whole experiment folder as a zip (streamed): metadata, documents, manifest, runs',
        security,
        params: ExperimentParams,
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const e = o.store.get(id);
      o.audit.ensureWritable(`download of ${id}/archive.zip`);
      const entries = zipEntries(e.dir);
      // Runs whose file lives elsewhere while open (working folder) are taken from there.
      for (const run of e.runs) {
        const at = o.runFile?.(id, run);
        const rel = run.file.split('/').join(sep);
        if (at && at !== join(e.dir, rel) && existsSync(at)) {
          const i = entries.findIndex((x) => x.rel === rel);
          if (i >= 0) entries.splice(i, 1);
          entries.push({ rel, path: at });
        }
      }
      const zip = new ZipFile();
      for (const x of entries) {
        const st = statSync(x.path);
        const name = `${id}/${x.rel.split(sep).join('/')}`;
        // NetCDF is stored (fast, seekable in the zip); text is deflated. The size is fixed
        // now, so a file still growing is cut at what it had when the download started.
        zip.addReadStreamLazy(
          name,
          { size: st.size, mtime: st.mtime, compress: !x.rel.endsWith('.nc'), mode: st.mode },
          (cb) => cb(null, st.size ? createReadStream(x.path, { start: 0, end: st.size - 1 }) : Readable.from([])),
        );
      }
      zip.end();
      let bytes = 0;
      const out = zip.outputStream as Readable;
      out.on('data', (c: Buffer) => (bytes += c.length));
      let complete = false;
      out.on('end', () => (complete = true));
      out.on('close', () => audit(req, `${id}/archive.zip`, bytes, { files: entries.length, complete }));
      return reply
        .header('content-type', 'application/zip')
        .header('content-disposition', disposition(`${id}.zip`))
        .send(out);
    },
  );
};

/** Files of an experiment folder for the zip (temporary and partial files left out). */
export function zipEntries(dir: string): Array<{ rel: string; path: string }> {
  const transient = (name: string) =>
    name.includes('.tmp-') || name.endsWith('.part') || name.startsWith('.octopus-probe');
  return filesUnder(dir)
    .map((path) => ({ rel: relative(dir, path), path }))
    .filter((f) => !f.rel.split(sep).some(transient));
}

/** The `from`/`to` query parameters as ms, refusing an inverted range. */
function timeRange(q: { from?: string; to?: string }): { from?: number; to?: number } {
  const from = toMs(q.from);
  const to = toMs(q.to);
  if (from !== undefined && to !== undefined && from > to) throw new BadParam('to', q.to, `is before from (${q.from})`);
  return { from, to };
}

function pickVars(reader: NcRunReader, names: string[] | undefined, field: string): NcVariable[] {
  const all = reader.dataVariables();
  if (!names) return all;
  const unknown = names.filter((n) => !all.some((v) => v.name === n));
  if (unknown.length)
    throw new BadParam(
      field,
      names.join(','),
      `unknown variable${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (variables: ${all.map((v) => v.name).join(', ')})`,
    );
  return names.map((n) => all.find((v) => v.name === n)!);
}

function pickChambers(reader: NcRunReader, names: string[] | undefined): number[] {
  if (!names) return reader.chambers.map((_, i) => i);
  const unknown = names.filter((n) => !reader.chambers.includes(n));
  if (unknown.length)
    throw new BadParam(
      'chamber',
      names.join(','),
      `not in this run: ${unknown.join(', ')} (chambers: ${reader.chambers.join(', ')})`,
    );
  return names.map((n) => reader.chambers.indexOf(n));
}
