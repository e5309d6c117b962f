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
/** Before sign-in: a random value bound to the sign-in and registration forms (login CSRF). */
export const PRE_COOKIE = 'octopus_presession';
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

export const csrfOf = (token: string): string =>
  createHmac('sha256', KEY).update(token).digest('base64url').slice(0, 32);

export function csrfOk(token: string, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(csrfOf(token));
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * `Secure` when the request came over TLS: directly, or through a proxy listed in
 * `http.trusted_proxies` that sent `X-Forwarded-Proto: https` (Fastify's trustProxy;
 * the header is ignored from anyone else).
 */
export const isSecure = (req: FastifyRequest): boolean => req.protocol === 'https';

function addCookie(reply: FastifyReply, cookie: string): void {
  const old = reply.getHeader('set-cookie');
  reply.header('set-cookie', [...(old === undefined ? [] : [old].flat().map(String)), cookie]);
}

export function setSession(reply: FastifyReply, token: string, secure: boolean): void {
  addCookie(
    reply,
    `${COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}; Max-Age=${Math.round(SESSION_TTL_MS / 1000)}`,
  );
}

export function clearSession(reply: FastifyReply, secure = false): void {
  addCookie(reply, `${COOKIE}=; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}; Max-Age=0`);
}

const PRE_RE = /^[A-Za-z0-9_-]{32}$/;

/**
 * The pre-session value of this browser for the sign-in/registration forms: the cookie's
 * when it has one, else a new one (set as an HttpOnly, SameSite=Strict cookie for 2 h).
 * The form carries `HMAC(key, value)`: a page on another site can neither read the
 * cookie nor compute the field, so it cannot sign a victim in to the attacker's account.
 */
export function preSession(req: FastifyRequest, reply: FastifyReply): string {
  const have = cookies(req)[PRE_COOKIE];
  if (have && PRE_RE.test(have)) return have;
  const v = randomBytes(24).toString('base64url');
  addCookie(
    reply,
    `${PRE_COOKIE}=${v}; Path=/; HttpOnly; SameSite=Strict${isSecure(req) ? '; Secure' : ''}; Max-Age=7200`,
  );
  return v;
}

export const preCsrfOf = (pre: string): string => csrfOf(`pre:${pre}`);

/** The form's `_csrf` matches this browser's pre-session cookie. */
export function preCsrfOk(req: FastifyRequest, given: unknown): boolean {
  const pre = cookies(req)[PRE_COOKIE];
  return !!pre && PRE_RE.test(pre) && csrfOk(`pre:${pre}`, given);
}

export interface Session {
  who: Principal;
  token: string;
  csrf: string;
}

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
