/**
 * The live view's alarm banners, fed by the retained alarm state on a real Mosquitto
 * (`<prefix>/<chamber>/alarm`, docs/alarms.md): the state reaches browsers over
 * `GET /api/live`, follows an acknowledgement and a clear, and the pages render it
 * escaped; operators get the acknowledge control, viewers do not. Without an alarm
 * engine in the process, the alarm page lists the retained state and says that the
 * history and acknowledgement live with the collector.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alarm, ChamberAlarmState } from '../../src/alarms/model.ts';
import { buildApp } from '../../src/api/app.ts';
import { LiveValues } from '../../src/web/live.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { probe, publishOrDrop, type Probe } from '../support/mqtt-probe.ts';
import { eventually } from '../support/ports.ts';
import { form, webSignIn } from '../support/web.ts';
import { fixture, health, type Fixture } from './api-fixtures.ts';

let f: Fixture;
let app: FastifyInstance;
let broker: Mosquitto;
let pub: Probe;
let base = '';
const live = new LiveValues(Date.now, { chambers: ['c1', 'c2'] });

const alarm = (o: Partial<Alarm> = {}): Alarm => ({
  id: 'c1-deviation-air_temperature-1',
  key: 'c1/deviation/air_temperature',
  chamber: 'c1',
  class: 'deviation',
  tag: 'air_temperature',
  severity: 'warning',
  state: 'raised',
  message: 'air_temperature 23.1 degree_Celsius is 1.1 from setpoint 22 (band ±0.5) for 1 min <b>x</b>',
  since: Date.parse('2026-03-01T10:00:00Z'),
  raised_at: Date.parse('2026-03-01T10:01:00Z'),
  ...o,
});
const publishState = (chamber: string, alarms: Alarm[], ts: number) =>
  publishOrDrop(pub, `lab/${chamber}/alarm`, JSON.stringify({ chamber, ts, alarms } satisfies ChamberAlarmState), {
    retain: true,
  });

/** Reads `GET /api/live` until `until` matches a `chamber` event's data; returns it. */
async function sseUntil(
  cookieOrToken: { authorization: string },
  until: (c: { chamber: string; alarms: Alarm[] }) => boolean,
  timeoutMs = 20_000,
) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const res = await fetch(`${base}/api/live`, { headers: cookieOrToken, signal: ctl.signal });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      buf += new TextDecoder().decode(value);
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const m = /^event: chamber\ndata: (.*)$/m.exec(block);
        if (!m) continue;
        const c = JSON.parse(m[1]!) as { chamber: string; alarms: Alarm[] };
        if (until(c)) return c;
      }
    }
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
}

beforeAll(async () => {
  broker = await Mosquitto.start();
  f = await fixture();
  await f.app.close();
  await live.connect(broker.url, 'lab');
  app = await buildApp({ health, experiments: f.store, users: f.users, audit: f.audit, live });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  await f.users.setPassword('operator-user', 'operator-pass');
  await f.users.setPassword('viewer-user', 'viewer-pass');
  pub = await probe(broker.url);
}, 60_000);

afterAll(async () => {
  await pub?.end();
  await live.close();
  await app?.close();
  await f?.close();
  await broker?.close();
});

describe('alarm banners in the live view (retained MQTT alarm state)', () => {
  it('streams the raised alarm, its acknowledgement and its clear to a viewer', async () => {
    const t0 = Date.now();
    expect(await publishState('c1', [alarm()], t0)).toBe(true);
    const raised = await sseUntil(
      { authorization: `Bearer ${f.tokens.viewer}` },
      (c) => c.chamber === 'c1' && c.alarms.length === 1,
    );
    expect(raised.alarms[0]).toMatchObject({
      id: 'c1-deviation-air_temperature-1',
      class: 'deviation',
      tag: 'air_temperature',
      state: 'raised',
    });

    expect(
      await publishState(
        'c1',
        [
          alarm({
            state: 'acknowledged',
            acknowledged_by: 'api:olga',
            acknowledged_at: t0 + 1000,
            comment: 'door was open',
          }),
        ],
        t0 + 1000,
      ),
    ).toBe(true);
    const acked = await sseUntil(
      { authorization: `Bearer ${f.tokens.viewer}` },
      (c) => c.chamber === 'c1' && c.alarms[0]?.state === 'acknowledged',
    );
    expect(acked.alarms[0]).toMatchObject({ acknowledged_by: 'api:olga', comment: 'door was open' });

    // An older state arriving late (a retained replay) does not bring the alarm back.
    live.alarmState('c1', { chamber: 'c1', ts: t0, alarms: [alarm()] });
    expect(live.snapshot().find((c) => c.chamber === 'c1')!.alarms[0]!.state).toBe('acknowledged');

    expect(await publishState('c1', [], t0 + 2000)).toBe(true);
    await sseUntil({ authorization: `Bearer ${f.tokens.viewer}` }, (c) => c.chamber === 'c1' && c.alarms.length === 0);
    // An empty retained message (the state removed) means no alarm either.
    expect(
      await publishState(
        'c2',
        [alarm({ id: 'c2-stale-co2-1', chamber: 'c2', class: 'stale', tag: 'co2', key: 'c2/stale/co2' })],
        t0,
      ),
    ).toBe(true);
    await eventually(() => live.alarms().length === 1, 'c2 alarm');
    expect(await publishOrDrop(pub, 'lab/c2/alarm', '', { retain: true })).toBe(true);
    await eventually(() => live.alarms().length === 0, 'c2 alarm removed');
    // Alarms of chambers that are not configured, and malformed states, are ignored.
    expect(await publishState('c9', [alarm({ chamber: 'c9' })], t0)).toBe(true);
    expect(await publishOrDrop(pub, 'lab/c1/alarm', '{"chamber":"c1","alarms":"nope"}', { retain: true })).toBe(true);
    expect(
      await publishState(
        'c2',
        [
          alarm({
            id: 'c2-door-1',
            chamber: 'c2',
            class: 'door_open',
            tag: 'door_open',
            key: 'c2/door_open/door_open',
          }),
        ],
        t0 + 3000,
      ),
    ).toBe(true);
    await eventually(() => live.alarms().length === 1, 'c2 door alarm after the ignored ones');
    expect(live.alarms().map((a) => a.chamber)).toEqual(['c2']);
    expect(live.snapshot().map((c) => c.chamber)).toEqual(['c1', 'c2']);
  });

  it('live page: operators get the acknowledge control, viewers do not; both see the alarm summary and the Alarms link', async () => {
    const op = await webSignIn(app, 'operator-user', 'operator-pass');
    const viewer = await webSignIn(app, 'viewer-user', 'viewer-pass');
    const a = await app.inject({ url: '/live', headers: { cookie: op.cookie } });
    expect(a.body).toContain('data-can-ack="true"');
    expect(a.body).toContain('id="alarm-summary"');
    expect(a.body).toMatch(/<nav[^]*href="\/alarms"[^]*<\/nav>/);
    const v = await app.inject({ url: '/live', headers: { cookie: viewer.cookie } });
    expect(v.body).toContain('data-can-ack="false"');
    expect(v.body).toContain('href="/alarms"');
    expect(a.body + v.body).not.toMatch(/<script(?![^>]*src="\/static\/app\.js")/);
  });

  it('alarm page without an engine in the process: the retained state, escaped; no history; acknowledging is refused with the reason', async () => {
    const t = Date.now() + 10_000;
    expect(await publishState('c1', [alarm({ id: 'c1-x', message: '<img src=x onerror=alert(1)> drift' })], t)).toBe(
      true,
    );
    await eventually(() => live.alarms().some((x) => x.id === 'c1-x'), 'c1-x listed');
    const viewer = await webSignIn(app, 'viewer-user', 'viewer-pass');
    const p = await app.inject({ url: '/alarms', headers: { cookie: viewer.cookie } });
    expect(p.statusCode).toBe(200);
    expect(p.body).toContain('&lt;img src=x onerror=alert(1)&gt; drift');
    expect(p.body).not.toContain('<img src=x');
    expect(p.body).toMatch(
      /<tr class="st-raised" data-alarm="c1-x" data-state="raised"><td>c1<\/td><td>deviation<\/td><td>air_temperature<\/td>/,
    );
    expect(p.body).toContain('The history is kept by the alarm engine, which does not run in this process.');
    expect(p.body).not.toContain('name="comment"');
    const only2 = await app.inject({ url: '/alarms?chamber=c2', headers: { cookie: viewer.cookie } });
    expect(only2.body).not.toContain('data-alarm="c1-x"');
    expect(only2.body).toContain('data-alarm="c2-door-1"');
    const bad = await app.inject({ url: '/alarms?chamber=%3Cc9%3E', headers: { cookie: viewer.cookie } });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/id="f-chamber-error">Unknown chamber &quot;&lt;c9&gt;&quot; \(known: c1, c2\)/);
    const anon = await app.inject({ url: '/alarms' });
    expect(anon.statusCode).toBe(303);
    expect(anon.headers.location).toBe('/login?next=%2Falarms');

    const op = await webSignIn(app, 'operator-user', 'operator-pass');
    const forged = await app.inject({
      method: 'POST',
      url: '/alarms/c1-x/ack',
      headers: { cookie: op.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ comment: 'x' }),
    });
    expect(forged.statusCode).toBe(403);
    expect(forged.body).toContain('security token');
    const noEngine = await app.inject({
      method: 'POST',
      url: '/alarms/c1-x/ack',
      headers: { cookie: op.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ _csrf: op.csrf, comment: 'checked' }),
    });
    expect(noEngine.statusCode).toBe(503);
    expect(noEngine.body).toContain('The alarm engine does not run in this process');
    const asViewer = await app.inject({
      method: 'POST',
      url: '/alarms/c1-x/ack',
      headers: { cookie: viewer.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ _csrf: viewer.csrf, comment: 'mine' }),
    });
    expect(asViewer.statusCode).toBe(403);
  });
});
