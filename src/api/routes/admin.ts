import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AuditLog } from '../../auth/audit.ts';
import { Role } from '../../auth/roles.ts';
import { UserName, type UserStore } from '../../auth/users.ts';
import { actor, bearer, requireRole } from '../hooks/auth.ts';
import type { SignInGuard } from '../../web/sign-in-guard.ts';
import { seconds } from '../../web/throttle.ts';

export interface AdminRouteOptions {
  users: UserStore;
  audit: AuditLog;
  guard: SignInGuard;
}

const security = [{ bearer: [] }];
const publicUser = (u: { name: string; role: string; created: string; password?: string; disabled?: boolean }) => ({
  name: u.name,
  role: u.role,
  created: u.created,
  password: u.password !== undefined,
  disabled: u.disabled ?? false,
});

/** Accounts, tokens and the audit log (admin only), and `GET /api/me` for anyone signed in. */
export const adminRoutes: FastifyPluginAsync<AdminRouteOptions> = async (base, o) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const admin = requireRole(o.users, 'admin');

  app.get(
    '/api/me',
    {
      onRequest: requireRole(o.users, 'viewer'),
      schema: { tags: ['auth'], summary: 'Who the token belongs to', security },
    },
    async (req) => req.principal,
  );

  app.get(
    '/api/admin/users',
    { onRequest: admin, schema: { tags: ['admin'], summary: 'List users', security } },
    async () => ({ users: o.users.users().map(publicUser) }),
  );

  app.post(
    '/api/admin/users',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Create a user',
        security,
        body: z.object({ name: UserName, role: Role, password: z.string().min(8).max(1024).optional() }).strict(),
      },
    },
    async (req, reply) => {
      const u = await o.users.addUser(req.body.name, req.body.role, req.body.password);
      o.audit.write({ who: actor(req), action: 'user_add', what: u.name, detail: { role: u.role } });
      return reply.code(201).send(publicUser(u));
    },
  );

  const UserParams = z.object({ name: UserName });
  app.delete(
    '/api/admin/users/:name',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Delete a user; revokes all its tokens and web sessions (not the last active admin)',
        security,
        params: UserParams,
      },
    },
    async (req) => {
      const { user, revoked } = o.users.deleteUser(req.params.name);
      o.audit.write({ who: actor(req), action: 'user_delete', what: user.name, detail: { revoked_tokens: revoked } });
      return { ...publicUser(user), deleted: true, revoked_tokens: revoked };
    },
  );

  for (const kind of ['disable', 'enable'] as const) {
    app.post(
      `/api/admin/users/:name/${kind}`,
      {
        onRequest: admin,
        schema: {
          tags: ['admin'],
          security,
          params: UserParams,
          summary:
            kind === 'disable'
              ? 'Disable a user: refused at sign-in, all its tokens and sessions revoked (not the last active admin)'
              : 'Enable a disabled user (its old tokens stay revoked)',
        },
      },
      async (req) => {
        const { user, revoked } = o.users.setDisabled(req.params.name, kind === 'disable');
        o.audit.write({
          who: actor(req),
          action: `user_${kind}`,
          what: user.name,
          ...(revoked.length ? { detail: { revoked_tokens: revoked } } : {}),
        });
        return { ...publicUser(user), revoked_tokens: revoked };
      },
    );
  }

  app.post(
    '/api/setup/admin',
    {
      schema: {
        tags: ['auth'],
        security,
        summary:
          'Create the first admin with OCTOPUS_ADMIN_TOKEN (only while no active admin exists) → 201 {user, token}',
        body: z.object({ name: UserName, password: z.string().min(8).max(1024).optional() }).strict(),
      },
      // The token is checked before the body: a caller without it learns nothing.
      onRequest: (req, reply, done) => {
        const wait = o.guard.signInWait(req);
        if (wait) {
          void reply
            .code(429)
            .header('retry-after', String(seconds(wait)))
            .send({ error: `too many attempts: try again in ${seconds(wait)} s` });
          return;
        }
        if (!o.users.isBootstrapToken(bearer(req))) {
          const locked = o.guard.signInFailed(req);
          if (locked)
            void reply
              .code(429)
              .header('retry-after', String(seconds(locked)))
              .send({ error: `too many attempts: try again in ${seconds(locked)} s` });
          else
            void reply
              .code(401)
              .header('www-authenticate', 'Bearer realm="octopus"')
              .send({ error: 'send the bootstrap token: "Authorization: Bearer <OCTOPUS_ADMIN_TOKEN>"' });
          return;
        }
        done();
      },
    },
    async (req, reply) => {
      const u = await o.users.bootstrapAdmin(bearer(req), req.body.name, req.body.password);
      o.audit.write({
        who: `setup:${req.ip}`,
        action: 'user_add',
        what: u.name,
        detail: { role: u.role, via: 'OCTOPUS_ADMIN_TOKEN' },
      });
      const t = o.users.createToken(u.name, 'setup');
      o.audit.write({
        who: `setup:${req.ip}`,
        action: 'token_create',
        what: t.id,
        detail: { user: t.user, name: t.name },
      });
      return reply.code(201).send({ user: publicUser(u), token: t });
    },
  );

  app.get(
    '/api/admin/tokens',
    { onRequest: admin, schema: { tags: ['admin'], summary: 'List tokens (ids, never the secrets)', security } },
    async () => ({ tokens: o.users.tokens() }),
  );

  app.post(
    '/api/admin/tokens',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Create a token for a user; the token is in this reply only',
        security,
        body: z.object({ user: UserName, name: z.string().min(1).max(100).default('api') }).strict(),
      },
    },
    async (req, reply) => {
      const t = o.users.createToken(req.body.user, req.body.name);
      o.audit.write({ who: actor(req), action: 'token_create', what: t.id, detail: { user: t.user, name: t.name } });
      return reply.code(201).send(t);
    },
  );

  app.delete(
    '/api/admin/tokens/:tokenId',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Revoke a token',
        security,
        params: z.object({ tokenId: z.string().regex(/^[a-f0-9]{12}$/, 'token ids are 12 hex digits') }),
      },
    },
    async (req) => {
      const t = o.users.revokeToken(req.params.tokenId);
      o.audit.write({ who: actor(req), action: 'token_revoke', what: t.id, detail: { user: t.user } });
      return t;
    },
  );

  app.get(
    '/api/admin/audit',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Newest audit entries (downloads, runs, setpoints, accounts)',
        security,
        querystring: z
          .object({
            limit: z.coerce.number().int().min(1).max(100_000).default(1000),
            action: z.string().optional(),
            who: z.string().optional(),
          })
          .strict(),
      },
    },
    async (req) => ({ entries: o.audit.read(req.query) }),
  );
};
