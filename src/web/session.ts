import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal, UserStore } from '../auth/users.ts';

/**
 * Web sessions reuse API tokens: signing in with a password creates a token named
 * `web-session` (revoked at sign-out); signing in with a token keeps that token. The
 * token lives in an HttpOnly, SameSite=Strict cookie. Forms and the page's fetch calls
 * also carry a CSRF token derived from the session token (HMAC with a per-process key).
 */
export const COOKIE = 'octopus_session';
export const SESSION_TOKEN_NAME = 'web-session';
/** A password sign-in lasts this long (OCTOPUS_SESSION_HOURS, default 12). */
export const SESSION_TTL_MS = Number(process.env.OCTOPUS_SESSION_HOURS ?? 12) * 3_600_000;
const KEY = randomBytes(32);

export function cookies(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    try {
      out[k] = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      // malformed: ignore
    }
  }
  return out;
}

export const sessionToken = (req: FastifyRequest): string | undefined => cookies(req)[COOKIE] || undefined;

export const csrfOf = (token: string): string => createHmac('sha256', KEY).update(token).digest('base64url').slice(0, 32);

export function csrfOk(token: string, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(csrfOf(token));
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function setSession(reply: FastifyReply, token: string, secure: boolean): void {
  reply.header('set-cookie', `${COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}; Max-Age=${Math.round(SESSION_TTL_MS / 1000)}`);
}

export function clearSession(reply: FastifyReply): void {
  reply.header('set-cookie', `${COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
}

export interface Session { who: Principal; token: string; csrf: string }

export function sessionOf(req: FastifyRequest, users: UserStore): Session | undefined {
  const token = sessionToken(req);
  if (!token) return undefined;
  const who = users.authenticate(token);
  return who ? { who, token, csrf: csrfOf(token) } : undefined;
}

/**
 * onRequest hook for the whole app: an API request without `Authorization` but with a
 * session cookie is authenticated with the session's token. Unsafe methods also need
 * the `x-csrf-token` header (the page's scripts send it), so another site cannot use
 * the cookie even in browsers that ignore SameSite.
 */
export function cookieToBearer(req: FastifyRequest): void {
  if (req.headers.authorization || !req.url.startsWith('/api/')) return;
  const token = sessionToken(req);
  if (!token) return;
  const safe = req.method === 'GET' || req.method === 'HEAD';
  if (!safe && !csrfOk(token, req.headers['x-csrf-token'])) return;
  req.headers.authorization = `Bearer ${token}`;
}
