import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../../auth/audit.ts';
import { AuthError, prepareDummyHash, type UserStore } from '../../auth/users.ts';
import { html } from '../html.ts';
import { errorSummary, field, page, type FieldErrors } from '../layout.ts';
import { safeNext } from '../redirect.ts';
import {
  clearSession,
  csrfOk,
  isSecure,
  preCsrfOf,
  preCsrfOk,
  preSession,
  SESSION_TOKEN_NAME,
  SESSION_TTL_MS,
  sessionOf,
  setSession,
} from '../session.ts';
import { SignInGuard } from '../sign-in-guard.ts';
import { seconds } from '../throttle.ts';
import { formParser } from './experiments.ts';

export interface WebSignInOptions {
  users: UserStore;
  audit: AuditLog;
  guard: SignInGuard;
  maxPendingRegistrations: number;
}
type Form = Record<string, string | string[]>;
const one = (f: Form, k: string): string => {
  const v = f[k];
  return (Array.isArray(v) ? v[0] : v)?.trim() ?? '';
};

/** The same words everywhere a throttle refuses (pages, API). */
export const tooMany = (ms: number, what = 'sign-in attempts'): string =>
  `Too many ${what}: try again in ${seconds(ms)} s.`;
const EXPIRED =
  'This form expired or did not come from this site, so nothing was done. It has been reloaded: please try again.';
const WRONG = 'Wrong user name or password.';

/**
 * Sign-in, sign-out, registration and the first-admin set-up. Every answer about a user
 * name is the same whether it exists or not (status, words, scrypt work); failures are
 * throttled per account and per address (429 + Retry-After); the forms carry a
 * pre-session CSRF token; `next` is a same-origin path or `/`.
 */
export const webSignInRoutes: FastifyPluginAsync<WebSignInOptions> = async (app, o) => {
  formParser(app);
  await prepareDummyHash();
  const send = (reply: FastifyReply, body: string, code = 200) =>
    reply.code(code).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(body);
  const refuse = (reply: FastifyReply, ms: number) => reply.header('retry-after', String(seconds(ms)));
  const address = (req: FastifyRequest) => req.ip;
  const firstStart = () => o.users.bootstrapConfigured() && !o.users.hasAdmin();

  // ---- sign-in ---------------------------------------------------------------
  const loginPage = (
    req: FastifyRequest,
    reply: FastifyReply,
    next: string,
    errors: FieldErrors = {},
    values: Record<string, string> = {},
    general?: string,
  ) =>
    page(
      'Sign in',
      undefined,
      html`
    ${errorSummary(errors, general)}
    <form method="post" action="/login" novalidate class="card">
      <input type="hidden" name="_csrf" value="${preCsrfOf(preSession(req, reply))}">
      <input type="hidden" name="next" value="${next}">
      <fieldset><legend>With your user name and password</legend>
      ${field('username', 'User name', { value: values.username, errors, autocomplete: 'username' })}
      ${field('password', 'Password', { type: 'password', errors, autocomplete: 'current-password' })}
      </fieldset>
      <fieldset><legend>Or with an API token</legend>
      ${field('token', 'Token', { type: 'password', errors, hint: 'oct_… from an admin (octopus token create)', autocomplete: 'off' })}
      </fieldset>
      <button type="submit">Sign in</button>
    </form><p>No account? <a href="/register">Register</a>; an admin approves it.</p>
    ${firstStart() ? html`<p class="ok" role="status">No admin account yet: <a href="/setup">create the first admin</a> with the bootstrap token.</p>` : ''}`,
    );

  app.get('/login', async (req, reply) =>
    send(reply, loginPage(req, reply, safeNext((req.query as Record<string, unknown>).next))),
  );

  app.post('/login', async (req, reply) => {
    const f = (req.body ?? {}) as Form;
    const next = safeNext(one(f, 'next'));
    const username = one(f, 'username');
    const password = one(f, 'password');
    const token = one(f, 'token');
    if (!preCsrfOk(req, one(f, '_csrf')))
      return send(reply, loginPage(req, reply, next, {}, { username }, EXPIRED), 403);
    if (token) {
      const wait = o.guard.signInWait(req);
      if (wait) return send(refuse(reply, wait), loginPage(req, reply, next, {}, {}, tooMany(wait)), 429);
      const who = o.users.authenticate(token);
      if (!who) {
        const locked = o.guard.signInFailed(req);
        if (locked) return send(refuse(reply, locked), loginPage(req, reply, next, {}, {}, tooMany(locked)), 429);
        const msg = o.users.isBootstrapToken(token)
          ? 'This is the bootstrap token: it only creates the first admin account (/setup), it does not sign in.'
          : 'Unknown, malformed or revoked token.';
        return send(reply, loginPage(req, reply, next, { token: msg }), 400);
      }
      setSession(reply, token, isSecure(req));
      return reply.redirect(next, 303);
    }
    const errors: FieldErrors = {};
    if (!username) errors.username = 'Enter your user name (or a token below).';
    if (!password) errors.password = 'Enter your password.';
    if (Object.keys(errors).length) return send(reply, loginPage(req, reply, next, errors, { username }), 400);
    const wait = o.guard.signInWait(req, username);
    if (wait) return send(refuse(reply, wait), loginPage(req, reply, next, {}, { username }, tooMany(wait)), 429);
    const c = await o.users.checkPassword(username, password);
    if (c.result === 'wrong') {
      const locked = o.guard.signInFailed(req, username);
      o.audit.write({
        who: `web:${address(req)}`,
        action: 'login_failed',
        what: username.slice(0, 64),
        ...(locked ? { detail: { locked_s: seconds(locked) } } : {}),
      });
      if (locked)
        return send(refuse(reply, locked), loginPage(req, reply, next, {}, { username }, tooMany(locked)), 429);
      return send(reply, loginPage(req, reply, next, { password: WRONG }, { username }), 400);
    }
    // From here the password was right: saying why it cannot sign in reveals nothing new.
    if (c.result === 'pending')
      return send(
        reply,
        loginPage(req, reply, next, { password: 'This account is waiting for an admin’s approval.' }, { username }),
        400,
      );
    if (c.result !== 'ok')
      return send(
        reply,
        loginPage(req, reply, next, { password: 'This account is disabled; ask an admin.' }, { username }),
        400,
      );
    o.guard.signedIn(c.who.user);
    const t = o.users.createToken(c.who.user, SESSION_TOKEN_NAME, SESSION_TTL_MS);
    o.audit.write({ who: `web:${c.who.user}`, action: 'login', what: c.who.user, detail: { session: t.id } });
    setSession(reply, t.token, isSecure(req));
    return reply.redirect(next, 303);
  });

  app.post('/logout', async (req, reply) => {
    const s = sessionOf(req, o.users);
    if (s && csrfOk(s.token, one((req.body ?? {}) as Form, '_csrf'))) {
      const rec = o.users.token(s.who.token);
      if (rec?.name === SESSION_TOKEN_NAME) o.users.revokeToken(rec.id);
    }
    clearSession(reply, isSecure(req));
    return reply.redirect('/login', 303);
  });

  // ---- registration ------------------------------------------------------------
  const registerPage = (
    req: FastifyRequest,
    reply: FastifyReply,
    errors: FieldErrors = {},
    values: Record<string, string> = {},
    o2: { done?: string; general?: string } = {},
  ) =>
    page(
      'Register',
      undefined,
      o2.done
        ? html`<p class="ok" role="status">${o2.done}</p><p><a href="/login">Sign in</a> once approved.</p>`
        : html`${errorSummary(errors, o2.general)}<form method="post" action="/register" novalidate class="card">
      <input type="hidden" name="_csrf" value="${preCsrfOf(preSession(req, reply))}">
      ${field('username', 'User name', { value: values.username, errors, hint: '1–64 letters, digits, ".", "_", "@" or "-"', autocomplete: 'username' })}
      ${field('password', 'Password', { type: 'password', errors, hint: 'at least 8 characters', autocomplete: 'new-password' })}
      ${field('confirm', 'Repeat the password', { type: 'password', errors, autocomplete: 'new-password' })}
      <button type="submit">Request an account</button></form>`,
    );
  app.get('/register', async (req, reply) => send(reply, registerPage(req, reply)));
  app.post('/register', async (req, reply) => {
    const f = (req.body ?? {}) as Form;
    const username = one(f, 'username');
    const password = one(f, 'password');
    if (!preCsrfOk(req, one(f, '_csrf')))
      return send(reply, registerPage(req, reply, {}, { username }, { general: EXPIRED }), 403);
    const addr = SignInGuard.address(req);
    const wait = o.guard.registrations.retryAfterMs(addr);
    if (wait)
      return send(
        refuse(reply, wait),
        registerPage(req, reply, {}, { username }, { general: tooMany(wait, 'account requests from your address') }),
        429,
      );
    const errors: FieldErrors = {};
    if (!username) errors.username = 'Choose a user name.';
    if (password.length < 8) errors.password = 'Passwords are at least 8 characters.';
    else if (password !== one(f, 'confirm')) errors.confirm = 'The two passwords differ.';
    if (!Object.keys(errors).length) {
      const pending = o.users.pendingCount();
      if (pending >= o.maxPendingRegistrations) {
        return send(
          reply,
          registerPage(
            req,
            reply,
            {},
            { username },
            {
              general: `Registration is closed for now: ${pending} account requests are waiting for an admin’s approval (the limit is ${o.maxPendingRegistrations}). Please try again later or ask an admin.`,
            },
          ),
          503,
        );
      }
      try {
        o.guard.registrations.fail([addr]);
        const u = await o.users.register(username, password);
        o.audit.write({
          who: `web:${address(req)}`,
          action: u ? 'user_register' : 'user_register_exists',
          what: username,
        });
        // The same answer whether the name was free or taken: registration does not tell who has an account.
        return send(
          reply,
          registerPage(
            req,
            reply,
            {},
            {},
            {
              done: `Request for “${username}” received. An admin reviews every request; you can sign in once it is approved.`,
            },
          ),
          201,
        );
      } catch (e) {
        if (!(e instanceof AuthError)) throw e;
        errors[e.field === 'name' ? 'username' : (e.field ?? 'username')] = e.message;
      }
    }
    return send(reply, registerPage(req, reply, errors, { username }), 400);
  });

  // ---- first admin (bootstrap token) ----------------------------------------------
  const setupPage = (
    req: FastifyRequest,
    reply: FastifyReply,
    errors: FieldErrors = {},
    values: Record<string, string> = {},
    general?: string,
  ) =>
    page(
      'Create the first admin',
      undefined,
      html`
    ${errorSummary(errors, general)}
    <p>The bootstrap token (<code>OCTOPUS_ADMIN_TOKEN</code>) creates one admin account, once; it is not accepted for anything else. Unset it afterwards.</p>
    <form method="post" action="/setup" novalidate class="card">
      <input type="hidden" name="_csrf" value="${preCsrfOf(preSession(req, reply))}">
      ${field('token', 'Bootstrap token', { type: 'password', errors, autocomplete: 'off' })}
      ${field('username', 'Admin user name', { value: values.username, errors, autocomplete: 'username' })}
      ${field('password', 'Password', { type: 'password', errors, hint: 'at least 8 characters', autocomplete: 'new-password' })}
      ${field('confirm', 'Repeat the password', { type: 'password', errors, autocomplete: 'new-password' })}
      <button type="submit">Create the admin account</button></form>`,
    );
  const setupClosed = (reply: FastifyReply) =>
    send(
      reply,
      page(
        'Set-up',
        undefined,
        o.users.hasAdmin()
          ? html`<p class="alert" role="alert">Set-up is done: an admin account exists, and the bootstrap token is no longer accepted. <a href="/login">Sign in</a>.</p>`
          : html`<p class="alert" role="alert">No bootstrap token is configured. Set <code>OCTOPUS_ADMIN_TOKEN</code> and restart, or run <code>octopus user add &lt;name&gt; --role admin --password-stdin</code>.</p>`,
      ),
      404,
    );

  app.get('/setup', async (req, reply) => (firstStart() ? send(reply, setupPage(req, reply)) : setupClosed(reply)));
  app.post('/setup', async (req, reply) => {
    if (!firstStart()) return setupClosed(reply);
    const f = (req.body ?? {}) as Form;
    const username = one(f, 'username');
    const password = one(f, 'password');
    if (!preCsrfOk(req, one(f, '_csrf'))) return send(reply, setupPage(req, reply, {}, { username }, EXPIRED), 403);
    const wait = o.guard.signInWait(req);
    if (wait) return send(refuse(reply, wait), setupPage(req, reply, {}, { username }, tooMany(wait)), 429);
    const errors: FieldErrors = {};
    if (!o.users.isBootstrapToken(one(f, 'token'))) {
      const locked = o.guard.signInFailed(req);
      if (locked) return send(refuse(reply, locked), setupPage(req, reply, {}, { username }, tooMany(locked)), 429);
      errors.token = 'Wrong bootstrap token.';
    }
    if (!username) errors.username = 'Choose a user name.';
    if (password.length < 8) errors.password = 'Passwords are at least 8 characters.';
    else if (password !== one(f, 'confirm')) errors.confirm = 'The two passwords differ.';
    if (!Object.keys(errors).length) {
      try {
        const u = await o.users.bootstrapAdmin(one(f, 'token'), username, password);
        o.audit.write({
          who: `setup:${address(req)}`,
          action: 'user_add',
          what: u.name,
          detail: { role: u.role, via: 'OCTOPUS_ADMIN_TOKEN' },
        });
        const t = o.users.createToken(u.name, SESSION_TOKEN_NAME, SESSION_TTL_MS);
        o.audit.write({ who: `web:${u.name}`, action: 'login', what: u.name, detail: { session: t.id } });
        setSession(reply, t.token, isSecure(req));
        return reply.redirect('/admin', 303);
      } catch (e) {
        if (!(e instanceof AuthError)) throw e;
        errors[e.field === 'name' ? 'username' : (e.field ?? 'username')] = e.message;
      }
    }
    return send(reply, setupPage(req, reply, errors, { username }), 400);
  });
};
