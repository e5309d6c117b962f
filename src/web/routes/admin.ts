import type { FastifyPluginAsync } from 'fastify';
import type { AuditLog } from '../../auth/audit.ts';
import { ROLES, Role } from '../../auth/roles.ts';
import { AuthError, type UserStore } from '../../auth/users.ts';
import { html } from '../html.ts';
import { csrfField, page } from '../layout.ts';
import type { Session } from '../session.ts';
import { formParser, need, needPost } from './experiments.ts';

export interface WebAdminOptions {
  users: UserStore;
  audit: AuditLog;
}
type Form = Record<string, string | string[] | undefined>;
const one = (f: Form, k: string) => String([f[k]].flat()[0] ?? '').trim();

/** Admin page: approve or reject accounts, assign roles, disable/enable/delete users, revoke tokens, read the audit log. */
export const webAdminRoutes: FastifyPluginAsync<WebAdminOptions> = async (app, o) => {
  formParser(app);
  const roleSelect = (id: string, current: string, err?: string) =>
    html`<label for="${id}" class="sr-only">Role</label><select id="${id}" name="role"${err ? html` aria-invalid="true" aria-describedby="${id}-error"` : ''}>${ROLES.map((r) => html`<option${r === current ? html` selected` : ''}>${r}</option>`)}</select>${err ? html`<span class="error" id="${id}-error">${err}</span>` : ''}`;
  const deleteForm = (s: Session, name: string, label: string) =>
    html`<form method="post" action="/admin/users/${name}/delete" class="inline">${csrfField(s)}<button type="submit" class="danger">${label}</button></form>`;
  const adminPage = (s: Session, action: string, msg?: { user?: string; text: string; ok?: boolean }) => {
    const users = o.users.users();
    const tokens = o.users.tokens().filter((t) => !t.revoked);
    const actions = [
      'download',
      'setpoint',
      'run_start',
      'run_stop',
      'bundle_request',
      'bundle_refused',
      'login',
      'login_failed',
      'user_register',
      'user_register_exists',
      'user_approve',
      'user_add',
      'user_disable',
      'user_enable',
      'user_delete',
      'role_set',
      'token_revoke',
    ];
    const entries = o.audit.read({ limit: 200, ...(action ? { action } : {}) }).reverse();
    const err = msg && !msg.ok ? msg : undefined;
    return page(
      'Administration',
      s,
      html`
      ${msg ? html`<p class="${msg.ok ? 'ok' : 'alert'}" role="${msg.ok ? 'status' : 'alert'}">${msg.text}</p>` : ''}
      <section class="card" aria-labelledby="pending-h"><h2 id="pending-h">Accounts waiting for approval</h2>
      ${users.filter((u) => u.pending).length ? html`<ul>${users.filter((u) => u.pending).map((u) => html`<li><form method="post" action="/admin/users/${u.name}/approve" class="inline">${csrfField(s)}<strong>${u.name}</strong> (requested ${u.created}) ${roleSelect(`approve-${u.name}`, 'viewer', err?.user === u.name ? err.text : undefined)} <button type="submit">Approve ${u.name}</button></form> ${deleteForm(s, u.name, `Reject ${u.name}`)}</li>`)}</ul>` : html`<p>None.</p>`}</section>
      <section class="card" aria-labelledby="users-h"><h2 id="users-h">Users and roles</h2><div class="scroll"><table><thead><tr><th scope="col">User</th><th scope="col">Role</th><th scope="col">State</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead><tbody>
      ${users.filter((u) => !u.pending).map((u) => html`<tr><td>${u.name}</td><td><form method="post" action="/admin/users/${u.name}/role" class="inline">${csrfField(s)}${roleSelect(`role-${u.name}`, u.role, err?.user === u.name ? err.text : undefined)} <button type="submit">Set role of ${u.name}</button></form></td><td>${u.disabled ? 'disabled' : 'active'}</td><td><form method="post" action="/admin/users/${u.name}/${u.disabled ? 'enable' : 'disable'}" class="inline">${csrfField(s)}<button type="submit">${u.disabled ? 'Enable' : 'Disable'} ${u.name}</button></form> ${deleteForm(s, u.name, `Delete ${u.name}`)}</td></tr>`)}</tbody></table></div></section>
      <section class="card" aria-labelledby="tokens-h"><h2 id="tokens-h">Active tokens</h2><div class="scroll"><table><thead><tr><th scope="col">Id</th><th scope="col">User</th><th scope="col">Name</th><th scope="col">Created</th><th scope="col"><span class="sr-only">Revoke</span></th></tr></thead><tbody>
      ${tokens.map((t) => html`<tr><td><code>${t.id}</code></td><td>${t.user}</td><td>${t.name}</td><td>${t.created}</td><td><form method="post" action="/admin/tokens/${t.id}/revoke" class="inline">${csrfField(s)}<button type="submit">Revoke ${t.id}</button></form></td></tr>`)}</tbody></table></div></section>
      <section class="card" aria-labelledby="audit-h"><h2 id="audit-h">Audit log (newest first)</h2>
      <form method="get" action="/admin" class="inline"><label for="f-action">Action</label> <select id="f-action" name="action"><option value="">all</option>${actions.map((a) => html`<option${a === action ? html` selected` : ''}>${a}</option>`)}</select> <button type="submit">Filter</button></form>
      <div class="scroll"><table id="audit"><thead><tr><th scope="col">Time</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">What</th><th scope="col">Bytes</th><th scope="col">Detail</th></tr></thead><tbody>
      ${entries.map((e) => html`<tr><td>${e.ts}</td><td>${e.who}</td><td>${e.action}</td><td>${e.what}</td><td>${e.bytes ?? ''}</td><td><small>${e.detail ? JSON.stringify(e.detail) : ''}</small></td></tr>`)}</tbody></table></div></section>`,
    );
  };
  const send = (reply: import('fastify').FastifyReply, body: string, code = 200) =>
    reply.code(code).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(body);

  app.get('/admin', async (req, reply) => {
    const s = need(req, reply, o.users, 'admin');
    if (!s) return reply;
    const action = String((req.query as Form).action ?? '');
    return send(reply, adminPage(s, action));
  });

  const userAction =
    (kind: 'approve' | 'role') =>
    async (req: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
      const s = needPost(req, reply, o.users, 'admin');
      if (!s) return reply;
      const name = (req.params as { name: string }).name;
      const role = Role.safeParse(one((req.body ?? {}) as Form, 'role'));
      if (!role.success)
        return send(
          reply,
          adminPage(s, '', { user: name, text: `Choose one of the roles: ${ROLES.join(', ')}.` }),
          400,
        );
      try {
        const u = kind === 'approve' ? o.users.approve(name, role.data) : o.users.setRole(name, role.data);
        o.audit.write({
          who: `web:${s.who.user}`,
          action: kind === 'approve' ? 'user_approve' : 'role_set',
          what: u.name,
          detail: { role: u.role },
        });
        return send(reply, adminPage(s, '', { text: `${u.name} is now ${u.role}.`, ok: true }));
      } catch (e) {
        if (e instanceof AuthError) return send(reply, adminPage(s, '', { user: name, text: e.message }), e.status);
        throw e;
      }
    };
  app.post('/admin/users/:name/approve', userAction('approve'));
  app.post('/admin/users/:name/role', userAction('role'));
  // Disable / enable: revokes the user's tokens and sessions (disable); audited.
  for (const kind of ['disable', 'enable'] as const) {
    app.post(`/admin/users/:name/${kind}`, async (req, reply) => {
      const s = needPost(req, reply, o.users, 'admin');
      if (!s) return reply;
      const name = (req.params as { name: string }).name;
      try {
        const { user, revoked } = o.users.setDisabled(name, kind === 'disable');
        o.audit.write({
          who: `web:${s.who.user}`,
          action: `user_${kind}`,
          what: user.name,
          ...(revoked.length ? { detail: { revoked_tokens: revoked } } : {}),
        });
        return send(
          reply,
          adminPage(s, '', {
            text:
              kind === 'disable'
                ? `${user.name} is disabled; ${revoked.length} token(s) and session(s) revoked.`
                : `${user.name} is enabled again (old tokens stay revoked).`,
            ok: true,
          }),
        );
      } catch (e) {
        if (e instanceof AuthError) return send(reply, adminPage(s, '', { user: name, text: e.message }), e.status);
        throw e;
      }
    });
  }

  // Delete: a confirmation page first (no script needed), then the deletion.
  app.post('/admin/users/:name/delete', async (req, reply) => {
    const s = needPost(req, reply, o.users, 'admin');
    if (!s) return reply;
    const name = (req.params as { name: string }).name;
    const u = o.users.users().find((x) => x.name === name);
    if (!u) return send(reply, adminPage(s, '', { text: `No user "${name}".` }), 404);
    if (one((req.body ?? {}) as Form, 'confirm') !== 'yes') {
      return send(
        reply,
        page(
          `Delete ${name}?`,
          s,
          html`<div class="card"><p>Delete the account <strong>${name}</strong> (${u.pending ? 'waiting for approval' : u.role})? Its tokens and sessions are revoked at once; this cannot be undone.</p>
        <form method="post" action="/admin/users/${name}/delete" class="inline">${csrfField(s)}<input type="hidden" name="confirm" value="yes"><button type="submit" class="danger">Yes, delete ${name}</button></form> <a href="/admin">Cancel</a></div>`,
        ),
      );
    }
    try {
      const { user, revoked } = o.users.deleteUser(name);
      o.audit.write({
        who: `web:${s.who.user}`,
        action: 'user_delete',
        what: user.name,
        detail: { revoked_tokens: revoked, ...(user.pending ? { pending: true } : {}) },
      });
      return send(
        reply,
        adminPage(s, '', {
          text: `${user.name} deleted; ${revoked.length} token(s) and session(s) revoked.`,
          ok: true,
        }),
      );
    } catch (e) {
      if (e instanceof AuthError) return send(reply, adminPage(s, '', { user: name, text: e.message }), e.status);
      throw e;
    }
  });

  app.post('/admin/tokens/:id/revoke', async (req, reply) => {
    const s = needPost(req, reply, o.users, 'admin');
    if (!s) return reply;
    try {
      const t = o.users.revokeToken((req.params as { id: string }).id);
      o.audit.write({ who: `web:${s.who.user}`, action: 'token_revoke', what: t.id, detail: { user: t.user } });
      return send(reply, adminPage(s, '', { text: `Token ${t.id} of ${t.user} revoked.`, ok: true }));
    } catch (e) {
      if (e instanceof AuthError) return send(reply, adminPage(s, '', { text: e.message }), e.status);
      throw e;
    }
  });
};
