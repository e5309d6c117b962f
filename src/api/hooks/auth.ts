import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { atLeast, type Role } from '../../auth/roles.ts';
import type { Principal, UserStore } from '../../auth/users.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** `Authorization: Bearer <token>` → the token, else undefined. */
export function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

function deny(reply: FastifyReply, status: 401 | 403, error: string): FastifyReply {
  if (status === 401) reply.header('www-authenticate', 'Bearer realm="octopus"');
  return reply.code(status).send({ error });
}

/**
 * onRequest hook requiring a role (or stronger). Runs before body parsing and
 * validation, so an anonymous request learns nothing about the parameters: 401
 * without or with an unknown token, 403 when the role is too weak.
 */
export function requireRole(users: UserStore, min: Role): onRequestHookHandler {
  return function (req, reply, done) {
    const token = bearer(req);
    if (!token) {
      deny(reply, 401, 'authentication required: send "Authorization: Bearer <token>"');
      return;
    }
    const who = users.authenticate(token);
    if (!who) {
      deny(reply, 401, 'unknown, malformed or revoked token');
      return;
    }
    if (!atLeast(who.role, min)) {
      deny(reply, 403, `needs role ${min} or higher (user "${who.user}" is ${who.role})`);
      return;
    }
    req.principal = who;
    done();
  };
}

/** The caller as written to run files and the audit log: `api:<user>`. */
export const actor = (req: FastifyRequest): string => `api:${req.principal?.user ?? 'anonymous'}`;
