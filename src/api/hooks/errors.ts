import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AuthError } from '../../auth/users.ts';
import { ExperimentError } from '../../experiments/store.ts';
import { WriteFailedError } from '../../core/write-faults.ts';
import { isSystemError } from '../../core/unexpected.ts';

/** `chambers/0/name` → `chambers[0].name` (as configuration errors name fields). */
function fieldOf(instancePath: string): string {
  const parts = instancePath.split('/').filter(Boolean);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

function valueAt(root: unknown, instancePath: string): unknown {
  let node = root;
  for (const p of instancePath.split('/').filter(Boolean)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[p];
  }
  return node;
}

/**
 * Errors as JSON `{error, field?, value?}`: parameter validation → 400 naming the field
 * and the value received; experiment store errors keep their status (400/404/409).
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const where = (err.validationContext ?? 'body') as 'body' | 'querystring' | 'params' | 'headers';
      const source =
        where === 'querystring'
          ? req.query
          : where === 'params'
            ? req.params
            : where === 'headers'
              ? req.headers
              : req.body;
      const issues = err.validation.map((v) => {
        const field = fieldOf(v.instancePath) || where;
        return { field, value: valueAt(source, v.instancePath) ?? null, message: v.message ?? 'invalid' };
      });
      const first = issues[0]!;
      return reply
        .code(400)
        .send({ error: `${first.field}: ${first.message}`, field: first.field, value: first.value, issues });
    }
    if (err instanceof ExperimentError) {
      const first = err.issues[0];
      return reply.code(err.status).send({
        error: err.message,
        ...(first
          ? {
              field: first.path,
              value: first.got ?? null,
              issues: err.issues.map((i) => ({ field: i.path, value: i.got ?? null, message: i.message })),
            }
          : {}),
      });
    }
    if (err instanceof AuthError) {
      return reply
        .code(err.status)
        .send({ error: err.message, ...(err.field ? { field: err.field, value: err.value ?? null } : {}) });
    }
    if (err instanceof BadParam)
      return reply.code(400).send({ error: err.message, field: err.field, value: err.value });
    // A write that failed (audit log, bundles, temporary files): 503 with what, where and why.
    if (err instanceof WriteFailedError)
      return reply.code(503).send({ error: err.message, path: err.path, errno: err.errno });
    if (isSystemError(err)) {
      const e = err as unknown as NodeJS.ErrnoException;
      req.log.error(err);
      return reply.code(503).send({
        error: `${e.syscall ?? 'write'} ${e.path ?? ''} failed: ${e.code}`.replace('  ', ' '),
        ...(e.path ? { path: e.path } : {}),
        errno: e.code,
      });
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: err.message });
    }
    req.log.error(err);
    return reply.code(500).send({ error: 'internal error' });
  });
}

/** A parameter that passed the schema but not a check that needs data (e.g. an unknown variable). */
export class BadParam extends Error {
  constructor(
    readonly field: string,
    readonly value: unknown,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}
