import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AuditLog } from '../../auth/audit.ts';
import { Role } from '../../auth/roles.ts';
import { UserName, type UserStore } from '../../auth/users.ts';
import { actor, requireRole } from '../plugins/auth.ts';

export interface AdminRouteOptions { users: UserStore; audit: AuditLog }

const security = [{ bearer: [] }];
const publicUser = (u: { name: string; role: string; created: string; password?: string; disabled?: boolean }) =>
  ({ name: u.name, role: u.role, created: u.created, password: u.password !== undefined, disabled: u.disabled ?? false });

/** Accounts, tokens and the audit log (admin only), and `GET /api/me` for anyone signed in. */
export const adminRoutes: FastifyPluginAsync<AdminRouteOptions> = async (base, o) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const admin = requireRole(o.users, 'admin');

  app.get('/api/me', {
    onRequest: requireRole(o.users, 'viewer'),
    schema: { tags: ['auth'], summary: 'Who the token belongs to', security },
  }, async (req) => req.principal);

  app.get('/api/admin/users', { onRequest: admin, schema: { tags: ['admin'], summary: 'List users', security } },
    async () => ({ users: o.users.users().map(publicUser) }));

  app.post('/api/admin/users', {
    onRequest: admin,
    schema: {
      tags: ['admin'], summary: 'Create a user', security,
      body: z.object({ name: UserName, role: Role, password: z.string().min(8).max(1024).optional() }).strict(),
    },
  }, async (req, reply) => {
    const u = await o.users.addUser(req.body.name, req.body.role, req.body.password);
    o.audit.write({ who: actor(req), action: 'user_add', what: u.name, detail: { role: u.role } });
    return reply.code(201).send(publicUser(u));
  });

  app.get('/api/admin/tokens', { onRequest: admin, schema: { tags: ['admin'], summary: 'List tokens (ids, never the secrets)', security } },
    async () => ({ tokens: o.users.tokens() }));

  app.post('/api/admin/tokens', {
    onRequest: admin,
    schema: {
      tags: ['admin'], summary: 'Create a token for a user; the token is in this reply only', security,
      body: z.object({ user: UserName, name: z.string().min(1).max(100).default('api') }).strict(),
    },
  }, async (req, reply) => {
    const t = o.users.createToken(req.body.user, req.body.name);
    o.audit.write({ who: actor(req), action: 'token_create', what: t.id, detail: { user: t.user, name: t.name } });
    return reply.code(201).send(t);
  });

  app.delete('/api/admin/tokens/:tokenId', {
    onRequest: admin,
    schema: { tags: ['admin'], summary: 'Revoke a token', security, params: z.object({ tokenId: z.string().regex(/^[a-f0-9]{12}$/, 'token ids are 12 hex digits') }) },
  }, async (req) => {
    const t = o.users.revokeToken(req.params.tokenId);
    o.audit.write({ who: actor(req), action: 'token_revoke', what: t.id, detail: { user: t.user } });
    return t;
  });

  app.get('/api/admin/audit', {
    onRequest: admin,
    schema: {
      tags: ['admin'], summary: 'Newest audit entries (downloads, runs, setpoints, accounts)', security,
      querystring: z.object({ limit: z.coerce.number().int().min(1).max(100_000).default(1000), action: z.string().optional(), who: z.string().optional() }).strict(),
    },
  }, async (req) => ({ entries: o.audit.read(req.query) }));
};
