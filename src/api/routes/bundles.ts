import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ZipFile } from 'yazl';
import type { AuditLog } from '../../auth/audit.ts';
import { atLeast } from '../../auth/roles.ts';
import { contentDisposition } from '../../core/escape.ts';
import { zipEntries } from './downloads.ts';
import type { UserStore } from '../../auth/users.ts';
import { ExperimentError, type ExperimentStore } from '../../experiments/store.ts';
import { ExperimentParams } from '../api-schemas.ts';
import { parseRange } from '../range.ts';
import { actor, requireRole } from '../hooks/auth.ts';
import type { RunFileResolver } from './downloads.ts';

export type BundleState = 'running' | 'done' | 'failed';
export interface BundleJob {
  job: string;
  experiment: string;
  user: string;
  state: BundleState;
  /** Bytes of the experiment's files read into the zip so far / in all. */
  bytes_done: number;
  bytes_total: number;
  /** Percent, 0–100. */
  progress: number;
  size?: number;
  created: string;
  finished?: string;
  expires?: string;
  error?: string;
}

/** A user's bundles are at their quota (429; `retryAfterS` when a wait will help). */
export class BundleQuotaError extends Error {
  constructor(
    message: string,
    readonly retryAfterS: number,
  ) {
    super(message);
  }
}

/**
 * Whole-experiment zips prepared in the background: `<dir>/<job>.zip.part` while being
 * written, renamed to `<job>.zip` when complete, deleted `ttlMs` after completion (and
 * any stray file older than that at start-up). Per user: at most `maxRunningPerUser`
 * being prepared, and at most `maxBytesPerUser` in bundles kept (running + ready).
 */
export class BundleJobs {
  private readonly jobs = new Map<string, BundleJob>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly dir: string,
    private readonly store: ExperimentStore,
    private readonly o: {
      ttlMs: number;
      runFile?: RunFileResolver;
      audit: AuditLog;
      throttleMs?: number;
      maxRunningPerUser?: number;
      maxBytesPerUser?: number;
    },
  ) {
    this.timer = setInterval(() => this.cleanup(), Math.min(60_000, Math.max(1000, o.ttlMs / 2)));
    this.timer.unref();
    this.cleanup();
  }

  get(job: string): BundleJob | undefined {
    return this.jobs.get(job);
  }

  file(job: string): string {
    return join(this.dir, `${job}.zip`);
  }

  start(experimentId: string, user: string): BundleJob {
    const e = this.store.get(experimentId);
    const entries = zipEntries(e.dir);
    for (const run of e.runs) {
      const at = this.o.runFile?.(experimentId, run);
      const rel = run.file.split('/').join(sep);
      if (at && at !== join(e.dir, rel) && existsSync(at)) {
        const i = entries.findIndex((x) => x.rel === rel);
        if (i >= 0) entries.splice(i, 1);
        entries.push({ rel, path: at });
      }
    }
    const sized = entries.map((x) => ({ ...x, st: statSync(x.path) }));
    const total = sized.reduce((s, x) => s + x.st.size, 0);
    this.checkQuota(user, total);
    const job: BundleJob = {
      job: randomBytes(8).toString('hex'),
      experiment: experimentId,
      user,
      state: 'running',
      bytes_done: 0,
      bytes_total: total,
      progress: 0,
      created: new Date().toISOString(),
    };
    this.jobs.set(job.job, job);
    const zip = new ZipFile();
    const throttle = this.o.throttleMs ?? 0;
    for (const x of sized) {
      const name = `${experimentId}/${x.rel.split(sep).join('/')}`;
      zip.addReadStreamLazy(
        name,
        { size: x.st.size, mtime: x.st.mtime, compress: !x.rel.endsWith('.nc'), mode: x.st.mode },
        (cb) => {
          const src: Readable = x.st.size
            ? createReadStream(x.path, { start: 0, end: x.st.size - 1, highWaterMark: 256 * 1024 })
            : Readable.from([]);
          src.on('data', (c: Buffer) => {
            job.bytes_done += c.length;
            job.progress = total ? Math.min(99, Math.floor((100 * job.bytes_done) / total)) : 99;
            if (throttle) {
              src.pause();
              setTimeout(() => src.resume(), throttle);
            }
          });
          cb(null, src);
        },
      );
    }
    zip.end();
    const part = `${this.file(job.job)}.part`;
    const out = createWriteStream(part);
    const fail = (err: Error) => {
      if (job.state !== 'running') return;
      job.state = 'failed';
      job.error = err.message;
      job.finished = new Date().toISOString();
      try {
        rmSync(part, { force: true });
      } catch {
        // An unwritable bundles folder: the stray .part is removed by cleanup() later.
      }
    };
    (zip.outputStream as Readable).on('error', fail).pipe(out).on('error', fail);
    out.on('finish', () => {
      if (job.state !== 'running') return;
      try {
        renameSync(part, this.file(job.job));
        job.size = statSync(this.file(job.job)).size;
      } catch (err) {
        return fail(err as Error);
      }
      job.state = 'done';
      job.progress = 100;
      job.finished = new Date().toISOString();
      job.expires = new Date(Date.now() + this.o.ttlMs).toISOString();
      this.o.audit.record({
        who: user,
        action: 'bundle_ready',
        what: `${experimentId}/archive.zip`,
        bytes: job.size,
        detail: { job: job.job, files: sized.length },
      });
    });
    return job;
  }

  /** Throws BundleQuotaError when `user` may not start a bundle of `total` bytes now. */
  private checkQuota(user: string, total: number): void {
    const mine = [...this.jobs.values()].filter((j) => j.user === user && j.state !== 'failed');
    const running = mine.filter((j) => j.state === 'running').length;
    const maxRunning = this.o.maxRunningPerUser ?? Infinity;
    if (running >= maxRunning) {
      throw new BundleQuotaError(
        `${running} of your bundles are being prepared, the most allowed at once: wait until one is ready, then ask again`,
        10,
      );
    }
    const maxBytes = this.o.maxBytesPerUser ?? Infinity;
    const kept = mine.reduce((s, j) => s + (j.size ?? j.bytes_total), 0);
    if (kept + total > maxBytes) {
      const next = mine
        .map((j) => j.expires)
        .filter((x): x is string => !!x)
        .sort()[0];
      const wait = next ? Math.max(1, Math.ceil((Date.parse(next) - Date.now()) / 1000)) : 60;
      throw new BundleQuotaError(
        `this bundle (${total} bytes) would bring your bundles to ${kept + total} bytes, over the limit of ${maxBytes} bytes per user: delete one you no longer need (DELETE /api/bundles/<job>)${next ? ` or wait until ${next}, when the oldest expires` : ' or wait until one is ready and downloaded'}`,
        wait,
      );
    }
  }

  /** Removes a bundle (its file, and the job; a running one is abandoned). */
  remove(job: string): void {
    const j = this.jobs.get(job);
    if (!j) return;
    if (j.state === 'running') {
      j.state = 'failed';
      j.error = 'deleted';
    }
    this.jobs.delete(job);
    rmSync(this.file(job), { force: true });
    rmSync(`${this.file(job)}.part`, { force: true });
  }

  /** Deletes expired bundles (jobs and files) and stray files older than the TTL. */
  cleanup(now = Date.now()): void {
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch {
      // Not writable now: bundle requests fail with the reason (503) until it is.
      return;
    }
    for (const [id, j] of this.jobs) {
      if (j.expires && Date.parse(j.expires) <= now) {
        try {
          rmSync(this.file(id), { force: true });
          this.jobs.delete(id);
        } catch {
          // Kept until the folder is writable again.
        }
      }
    }
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const id = name.replace(/\.zip(\.part)?$/, '');
      if (this.jobs.has(id)) continue;
      const p = join(this.dir, name);
      try {
        if (statSync(p).mtimeMs + this.o.ttlMs <= now) rmSync(p, { force: true });
      } catch {
        // gone already
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}

export interface BundleRouteOptions {
  jobs: BundleJobs;
  users: UserStore;
  audit: AuditLog;
}
const security = [{ bearer: [] }];
const JobParams = z.object({ job: z.string().regex(/^[a-f0-9]{16}$/, 'bundle job ids are 16 hex digits') });
const view = (j: BundleJob) => ({
  ...j,
  status_url: `/api/bundles/${j.job}`,
  download: j.state === 'done' ? `/api/bundles/${j.job}/download` : null,
});

/** Background zip bundles (researcher and up): request, poll progress, download with Range. */
export const bundleRoutes: FastifyPluginAsync<BundleRouteOptions> = async (base, o) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const researcher = requireRole(o.users, 'researcher');
  const jobOf = (job: string, who: string, role: Parameters<typeof atLeast>[0]) => {
    const j = o.jobs.get(job);
    // Someone else's bundle is reported as unknown (ids are not guessable anyway).
    if (!j || (j.user !== who && !atLeast(role, 'admin')))
      throw new ExperimentError(404, `no bundle "${job}" (expired, or never requested)`);
    return j;
  };

  app.post(
    '/api/experiments/:id/bundles',
    {
      onRequest: researcher,
      schema: {
        tags: ['downloads'],
        summary: 'Prepare the whole experiment as a zip in the background → 202 {job, progress}',
        security,
        params: ExperimentParams,
      },
    },
    async (req, reply) => {
      o.audit.ensureWritable(`bundle of ${req.params.id}`);
      let j: BundleJob;
      try {
        j = o.jobs.start(req.params.id, actor(req));
      } catch (e) {
        if (!(e instanceof BundleQuotaError)) throw e;
        o.audit.record({
          who: actor(req),
          action: 'bundle_refused',
          what: `${req.params.id}/archive.zip`,
          detail: { reason: e.message },
        });
        return reply.code(429).header('retry-after', String(e.retryAfterS)).send({ error: e.message });
      }
      o.audit.record({
        who: actor(req),
        action: 'bundle_request',
        what: `${req.params.id}/archive.zip`,
        detail: { job: j.job, bytes_total: j.bytes_total },
      });
      return reply.code(202).header('location', `/api/bundles/${j.job}`).send(view(j));
    },
  );

  app.get(
    '/api/bundles/:job',
    {
      onRequest: researcher,
      schema: { tags: ['downloads'], summary: 'State and progress (percent) of a bundle', security, params: JobParams },
    },
    async (req) => view(jobOf(req.params.job, actor(req), req.principal!.role)),
  );

  app.delete(
    '/api/bundles/:job',
    {
      onRequest: researcher,
      schema: {
        tags: ['downloads'],
        summary: 'Delete a bundle (frees your bundle quota)',
        security,
        params: JobParams,
      },
    },
    async (req) => {
      const j = jobOf(req.params.job, actor(req), req.principal!.role);
      o.jobs.remove(j.job);
      o.audit.write({
        who: actor(req),
        action: 'bundle_delete',
        what: `${j.experiment}/archive.zip`,
        detail: { job: j.job },
      });
      return { ...view(j), deleted: true };
    },
  );

  app.get(
    '/api/bundles/:job/download',
    {
      onRequest: researcher,
      schema: {
        tags: ['downloads'],
        summary: 'The finished zip; Range requests → 206 (resumable)',
        security,
        params: JobParams,
      },
    },
    async (req, reply) => {
      const j = jobOf(req.params.job, actor(req), req.principal!.role);
      if (j.state !== 'done') throw new ExperimentError(409, `bundle ${j.job} is ${j.state} (${j.progress} %)`);
      const path = o.jobs.file(j.job);
      const st = statSync(path);
      const size = st.size;
      const etag = `"${j.job}-${size.toString(16)}"`;
      reply
        .header('accept-ranges', 'bytes')
        .header('etag', etag)
        .header('content-type', 'application/zip')
        .header('content-disposition', contentDisposition(`${j.experiment}.zip`));
      const ifRange = [req.headers['if-range']].flat()[0];
      const range = !ifRange || ifRange === etag ? parseRange(req.headers.range, size) : { kind: 'none' as const };
      if (range.kind === 'unsatisfiable')
        return reply
          .code(416)
          .header('content-range', `bytes */${size}`)
          .send({ error: `range not satisfiable (file has ${size} bytes)` });
      const [start, end] = range.kind === 'range' ? [range.start, range.end] : [0, size - 1];
      if (range.kind === 'range') reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
      reply.header('content-length', end - start + 1);
      if (req.method === 'HEAD') return reply.send(Readable.from([]));
      o.audit.ensureWritable(`download of ${j.experiment}/archive.zip`);
      const stream = createReadStream(path, { start, end });
      stream.on('close', () =>
        o.audit.record({
          who: actor(req),
          action: 'download',
          what: `${j.experiment}/archive.zip`,
          bytes: stream.bytesRead,
          detail: { job: j.job, size, ...(range.kind === 'range' ? { range: `bytes=${start}-${end}` } : {}) },
        }),
      );
      return reply.send(stream);
    },
  );
};
