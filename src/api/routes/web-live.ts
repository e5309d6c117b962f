import type { FastifyPluginAsync } from 'fastify';
import type { UserStore } from '../../auth/users.ts';
import type { ExperimentStore } from '../../experiments/store.ts';
import type { GrafanaLinks } from '../../web/grafana.ts';
import { html } from '../../web/html.ts';
import { page } from '../../web/layout.ts';
import type { LiveChamber, LiveValues } from '../../web/live.ts';
import { requireRole } from '../plugins/auth.ts';
import { need } from './web-pages.ts';

export interface WebLiveOptions { live: LiveValues; users: UserStore; store?: ExperimentStore; grafana: GrafanaLinks }

/** Live facility view: the page (`/live`) and its server-sent event stream (`GET /api/live`, viewer and up). */
export const webLiveRoutes: FastifyPluginAsync<WebLiveOptions> = async (app, o) => {
  const view = (c: LiveChamber) => {
    const run = o.store?.openRuns().find((r) => r.chambers.includes(c.chamber));
    return { ...c, running: run ? { experiment: run.experiment, run: run.id } : null, grafana: o.grafana.chamber(c.chamber), now: Date.now() };
  };

  const open = new Set<import('node:http').ServerResponse>();
  app.addHook('onClose', async () => {
    for (const r of open) r.end();
  });

  app.get('/api/live', { onRequest: requireRole(o.users, 'viewer'), schema: { tags: ['live'], summary: 'Server-sent events: the latest values of each chamber (event "chamber")', security: [{ bearer: [] }] } }, (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
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
  });

  app.get('/live', async (req, reply) => {
    const s = need(req, reply, o.users, 'viewer');
    if (!s) return reply;
    const chambers = o.live.snapshot();
    const body = html`<p>Values update by themselves (server-sent events). <span id="live-state" role="status" aria-live="polite">connecting…</span></p>
      <div id="live" class="chambers">${chambers.length ? chambers.map((c) => html`<section class="card chamber" data-chamber="${c.chamber}" aria-label="Chamber ${c.chamber}"><h2>${c.chamber}</h2><p>Loading…</p></section>`) : html`<p id="live-empty">No values received yet.</p>`}</div>`;
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page('Live facility view', s, body));
  });
};
