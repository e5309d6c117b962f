import type { FastifyPluginAsync } from 'fastify';
import type { UserStore } from '../../auth/users.ts';
import type { ExperimentStore } from '../../experiments/store.ts';
import type { GrafanaLinks } from '../grafana.ts';
import { html } from '../html.ts';
import { page } from '../layout.ts';
import type { LiveChamber, LiveValues } from '../live.ts';
import { atLeast } from '../../auth/roles.ts';
import { requireRole } from '../../api/hooks/auth.ts';
import type { SetpointControl } from '../../api/routes/setpoints.ts';
import { need } from './experiments.ts';

export interface WebLiveOptions {
  live: LiveValues;
  users: UserStore;
  store?: ExperimentStore;
  grafana: GrafanaLinks;
  /** Writable tags per chamber: operators get a setpoint form for them (POST /api/chambers/…/setpoints/…). */
  controls?: Record<string, SetpointControl[]>;
}

/** Live facility view: the page (`/live`) and its server-sent event stream (`GET /api/live`, viewer and up). */
export const webLiveRoutes: FastifyPluginAsync<WebLiveOptions> = async (app, o) => {
  const view = (c: LiveChamber) => {
    const run = o.store?.openRuns().find((r) => r.chambers.includes(c.chamber));
    return {
      ...c,
      running: run ? { experiment: run.experiment, run: run.id } : null,
      grafana: o.grafana.chamber(c.chamber),
      now: Date.now(),
    };
  };

  const open = new Set<import('node:http').ServerResponse>();
  app.addHook('onClose', async () => {
    for (const r of open) r.end();
  });

  app.get(
    '/api/live',
    {
      onRequest: requireRole(o.users, 'viewer'),
      schema: {
        tags: ['live'],
        summary: 'Server-sent events: the latest values and active alarms of each chamber (event "chamber")',
        security: [{ bearer: [] }],
      },
    },
    (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      const send = (c: LiveChamber) => res.write(`event: chamber\ndata: ${JSON.stringify(view(c))}\n\n`);
      res.write('retry: 2000\n\n');
      for (const c of o.live.snapshot()) send(c);
      // At most one event per chamber per 500 ms: a fast PLC cycle must not flood phones.
      const pending = new Map<string, LiveChamber>();
      let timer: NodeJS.Timeout | undefined;
      const onUpdate = (c: LiveChamber) => {
        pending.set(c.chamber, c);
        timer ??= setTimeout(() => {
          timer = undefined;
          for (const x of pending.values()) send(x);
          pending.clear();
        }, 500);
      };
      const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
      o.live.on('update', onUpdate);
      const close = () => {
        o.live.off('update', onUpdate);
        clearInterval(ping);
        if (timer) clearTimeout(timer);
      };
      open.add(res);
      req.raw.on('close', () => {
        open.delete(res);
        close();
      });
    },
  );

  app.get('/live', async (req, reply) => {
    const s = need(req, reply, o.users, 'viewer');
    if (!s) return reply;
    const chambers = o.live.configured ?? o.live.snapshot().map((c) => c.chamber);
    const controls =
      o.controls && atLeast(s.who.role, 'operator') ? Object.entries(o.controls).filter(([, tags]) => tags.length) : [];
    // Operators and admins acknowledge alarms from the banner (POST /api/alarms/:id/ack); the API enforces the role too.
    const canAck = atLeast(s.who.role, 'operator');
    const body = html`<p>Values update by themselves (server-sent events). <span id="live-state" role="status" aria-live="polite">connecting…</span></p>
      <p id="alarm-summary" class="alarm-summary" aria-live="polite"><a href="/alarms">Alarms</a>: waiting for the first update…</p>
      <div id="live" class="chambers" data-can-ack="${canAck ? 'true' : 'false'}">${chambers.length ? chambers.map((c) => html`<section class="card chamber" data-chamber="${c}" aria-label="Chamber ${c}"><h2>${c}</h2><p>Loading…</p></section>`) : html`<p id="live-empty">No values received yet.</p>`}</div>
      ${
        controls.length
          ? html`<h2>Setpoints</h2><p>Writes go to the PLC at once and are audited with your name.</p>
      <div class="chambers" id="setpoint-controls">${controls.map(
        ([
          chamber,
          tags,
        ]) => html`<form class="card setpoint" data-chamber="${chamber}" aria-label="Setpoint for chamber ${chamber}">
        <h3>${chamber}</h3>
        <div class="field"><label for="sp-tag-${chamber}">Tag</label><select id="sp-tag-${chamber}" name="tag">${tags.map((t) => html`<option value="${t.tag}" data-type="${t.type}">${t.tag}${t.unit ? ` (${t.unit})` : ''}${t.min !== undefined || t.max !== undefined ? ` ${t.min ?? '…'}–${t.max ?? '…'}` : ''}</option>`)}</select></div>
        <div class="field"><label for="sp-value-${chamber}">Value</label><input id="sp-value-${chamber}" name="value" required autocomplete="off"></div>
        <button type="submit">Set</button>
        <p class="setpoint-result" role="status" aria-live="polite"></p>
      </form>`,
      )}</div>`
          : ''
      }`;
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(page('Live facility view', s, body));
  });
};
