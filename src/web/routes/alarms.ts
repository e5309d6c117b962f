import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Alarm, AlarmEvent, AlarmService } from '../../alarms/model.ts';
import { atLeast } from '../../auth/roles.ts';
import type { UserStore } from '../../auth/users.ts';
import { html, type Html } from '../html.ts';
import { csrfField, page } from '../layout.ts';
import type { LiveValues } from '../live.ts';
import type { Session } from '../session.ts';
import { formParser, need, needPost } from './experiments.ts';

export interface WebAlarmOptions {
  users: UserStore;
  /** The alarm engine of this process (collector in `octopus start`): active alarms, history, acknowledgement. */
  alarms?: AlarmService;
  /** Fallback for the active alarms when the engine runs in another process: the retained MQTT state the live view reads. */
  live: LiveValues;
  /** Events listed in the history (newest first). */
  historyLimit?: number;
}

/** Longest acknowledgement comment (the contract's limit, src/alarms/model.ts). */
export const ACK_COMMENT_MAX = 2000;

const utc = (ms: number | undefined): string =>
  ms === undefined ? '' : `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
/** `api:olga` → `olga`: the page shows the person; the audit log keeps the channel. */
const person = (by: string | undefined): string => (by ?? '').replace(/^(api|mqtt|web):/, '');
const one = (v: unknown): string => String([v].flat()[0] ?? '').trim();

/** Facility alarm list: `/alarms` (viewer and up), acknowledgement without script `POST /alarms/:id/ack` (operator and up). */
export const webAlarmRoutes: FastifyPluginAsync<WebAlarmOptions> = async (app, o) => {
  formParser(app);
  const limit = o.historyLimit ?? 200;
  const send = (reply: FastifyReply, body: string, code = 200) =>
    reply.code(code).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(body);
  const chambers = (): readonly string[] => o.live.configured ?? o.live.snapshot().map((c) => c.chamber);

  const ackForm = (
    s: Session,
    a: Alarm,
    back: string,
  ): Html => html`<form method="post" action="/alarms/${encodeURIComponent(a.id)}/ack" class="alarm-ack" aria-label="Acknowledge ${a.class} alarm${a.tag ? ` ${a.tag}` : ''} of ${a.chamber}">
    ${csrfField(s)}<input type="hidden" name="back" value="${back}">
    <label for="ack-${a.id}">Comment</label><input id="ack-${a.id}" name="comment" required maxlength="${ACK_COMMENT_MAX}" autocomplete="off">
    <button type="submit">Acknowledge</button></form>`;

  const render = (
    s: Session,
    chamber: string,
    o2: { notice?: Html; error?: string; errorField?: string } = {},
  ): string => {
    const known = chambers();
    const op = atLeast(s.who.role, 'operator');
    const back = chamber ? `/alarms?chamber=${encodeURIComponent(chamber)}` : '/alarms';
    const active = (o.alarms ? o.alarms.active() : o.live.alarms()).filter((a) => !chamber || a.chamber === chamber);
    const history: AlarmEvent[] | undefined = o.alarms?.history({ limit, ...(chamber ? { chamber } : {}) });
    const badChamber = o2.errorField === 'chamber';
    const body = html`
      <form method="get" action="/alarms" class="card grid" role="search" aria-label="Filter alarms" novalidate>
        <div class="field${badChamber ? ' invalid' : ''}"><label for="f-chamber">Chamber</label>
          <select id="f-chamber" name="chamber"${badChamber ? html` aria-invalid="true" aria-describedby="f-chamber-error"` : ''}><option value="">All chambers</option>${known.map((c) => html`<option${c === chamber ? html` selected` : ''}>${c}</option>`)}</select>
          ${badChamber ? html`<p class="error" id="f-chamber-error">${o2.error}</p>` : ''}</div>
        <button type="submit">Show</button></form>
      ${o2.notice ?? ''}${o2.error && !badChamber ? html`<div class="alert" role="alert"><p>${o2.error}</p></div>` : ''}
      <p id="alarms-refresh" role="status" aria-live="polite" class="sr-only"></p>
      <section class="card" id="alarms-active" aria-labelledby="active-h"><h2 id="active-h">Active alarms${chamber ? ` in ${chamber}` : ''} (${active.length})</h2>
        ${
          active.length
            ? html`<div class="scroll"><table id="active-alarms"><thead><tr><th scope="col">Chamber</th><th scope="col">Class</th><th scope="col">Tag</th><th scope="col">Severity</th><th scope="col">Message</th><th scope="col">Since</th><th scope="col">State</th>${op ? html`<th scope="col">Acknowledge</th>` : ''}</tr></thead><tbody>
          ${active.map(
            (
              a,
            ) => html`<tr class="st-${a.state}" data-alarm="${a.id}" data-state="${a.state}"><td>${a.chamber}</td><td>${a.class}</td><td>${a.tag ?? ''}</td><td>${a.severity}</td><td>${a.message}</td><td>${utc(a.since)}</td>
            <td><span class="alarm-state">${a.state}</span>${a.state === 'acknowledged' ? html` by ${person(a.acknowledged_by)} at ${utc(a.acknowledged_at)}${a.comment ? html`: “${a.comment}”` : ''}` : ''}</td>
            ${op ? html`<td>${a.state === 'raised' ? ackForm(s, a, back) : ''}</td>` : ''}</tr>`,
          )}</tbody></table></div>`
            : html`<p>No active alarm.</p>`
        }
        ${o.alarms ? '' : html`<p><small>The alarm engine runs in another process (the collector); this list is its retained MQTT state and acknowledging is done there.</small></p>`}
      </section>
      <section class="card" id="alarms-history" aria-labelledby="history-h"><h2 id="history-h">History${chamber ? ` of ${chamber}` : ''}</h2>
        ${
          history === undefined
            ? html`<p>The history is kept by the alarm engine, which does not run in this process.</p>`
            : history.length
              ? html`<p><small>Newest first, at most ${limit} events.</small></p><div class="scroll"><table id="alarm-history"><thead><tr><th scope="col">Time</th><th scope="col">Event</th><th scope="col">Chamber</th><th scope="col">Class</th><th scope="col">Tag</th><th scope="col">By</th><th scope="col">Message / comment</th></tr></thead><tbody>
          ${history.map((e) => html`<tr data-alarm="${e.alarm.id}" data-event="${e.event}"><td>${utc(e.ts)}</td><td>${e.event}</td><td>${e.alarm.chamber}</td><td>${e.alarm.class}</td><td>${e.alarm.tag ?? ''}</td><td>${person(e.by)}</td><td>${e.event === 'acknowledged' ? (e.alarm.comment ?? '') : e.alarm.message}</td></tr>`)}</tbody></table></div>`
              : html`<p>No alarm events${chamber ? ` for ${chamber}` : ''} yet.</p>`
        }
      </section>
      ${op ? html`<p><small>Acknowledging records your name and comment in the audit log; the alarm stays active until its condition clears.</small></p>` : html`<p><small>Operators and admins acknowledge alarms.</small></p>`}`;
    return page('Alarms', s, body);
  };

  app.get('/alarms', async (req, reply) => {
    const s = need(req, reply, o.users, 'viewer');
    if (!s) return reply;
    const q = req.query as Record<string, unknown>;
    const chamber = one(q.chamber);
    if (chamber && !chambers().includes(chamber)) {
      return send(
        reply,
        render(s, '', {
          error: `Unknown chamber "${chamber}" (known: ${chambers().join(', ') || 'none'}).`,
          errorField: 'chamber',
        }),
        400,
      );
    }
    const acked = one(q.acked);
    const a =
      acked && o.alarms
        ? (o.alarms.active().find((x) => x.id === acked) ??
          o.alarms.history({ limit }).find((e) => e.alarm.id === acked)?.alarm)
        : undefined;
    const notice = a
      ? html`<div class="ok" role="status"><p>Acknowledged: ${a.class}${a.tag ? ` ${a.tag}` : ''} in ${a.chamber}.</p></div>`
      : undefined;
    return send(reply, render(s, chamber, { notice }));
  });

  app.post('/alarms/:id/ack', async (req, reply) => {
    const s = needPost(req, reply, o.users, 'operator');
    if (!s) return reply;
    const id = (req.params as { id: string }).id;
    const f = (req.body ?? {}) as Record<string, unknown>;
    const comment = one(f.comment);
    const backRaw = one(f.back);
    const chamber = /^\/alarms\?chamber=([^&]+)$/.exec(backRaw)?.[1];
    const filter = chamber && chambers().includes(decodeURIComponent(chamber)) ? decodeURIComponent(chamber) : '';
    if (!o.alarms)
      return send(
        reply,
        render(s, filter, {
          error: 'The alarm engine does not run in this process; acknowledge where the collector runs.',
        }),
        503,
      );
    if (!comment)
      return send(
        reply,
        render(s, filter, { error: 'Write a comment to acknowledge an alarm (what you did or will do).' }),
        400,
      );
    if (comment.length > ACK_COMMENT_MAX)
      return send(
        reply,
        render(s, filter, { error: `The comment is longer than ${ACK_COMMENT_MAX} characters (${comment.length}).` }),
        400,
      );
    const r = await o.alarms.acknowledge(id, `web:${s.who.user}`, comment);
    if (!r.ok) return send(reply, render(s, filter, { error: r.error }), r.status);
    const qs = new URLSearchParams({ ...(filter ? { chamber: filter } : {}), acked: r.alarm.id });
    return reply.redirect(`/alarms?${qs}`, 303);
  });
};
