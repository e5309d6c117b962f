/**
 * The alarm page and the live banner's data against the real alarm engine (on a clock the
 * test moves) publishing through its MQTT bus to a real Mosquitto, read back by the live
 * view: the active list and the history, the filter by chamber, acknowledgement from the
 * page without script (comment required, audited with the operator's name) and from the
 * banner's API call (session cookie + x-csrf-token), refusals for viewers, forged requests
 * and an alarm already acknowledged, and the clear reaching the live view.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlarmsConfig } from '../../src/alarms/config.ts';
import { AlarmEngine } from '../../src/alarms/engine.ts';
import type { Alarm } from '../../src/alarms/model.ts';
import { AlarmBus } from '../../src/alarms/mqtt.ts';
import { planOf } from '../../src/alarms/plan.ts';
import { buildApp } from '../../src/api/app.ts';
import { MqttConfig } from '../../src/config/instance-schema.ts';
import { createLogger } from '../../src/core/log.ts';
import { LiveValues } from '../../src/web/live.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { eventually } from '../support/ports.ts';
import { form, webSignIn } from '../support/web.ts';
import { fixture, health, type Fixture } from './api-fixtures.ts';

const TAGS = [
  { name: 'air_temperature', unit: 'degree_Celsius' },
  { name: 'air_temperature_setpoint', role: 'setpoint', setpoint_of: 'air_temperature' },
  { name: 'co2', unit: 'umol mol-1' },
  { name: 'co2_setpoint', role: 'setpoint', setpoint_of: 'co2' },
];
const TOL = { air_temperature: { band: 0.5, min_duration_s: 30 }, co2: { band: 50, min_duration_s: 30 } };
const IN_BAND = { air_temperature: 22.1, air_temperature_setpoint: 22, co2: 420, co2_setpoint: 420 };

let f: Fixture;
let app: FastifyInstance;
let broker: Mosquitto;
let bus: AlarmBus;
let engine: AlarmEngine;
const dir = mkdtempSync(join(tmpdir(), 'octopus-web-alarms-'));
const live = new LiveValues(Date.now, { chambers: ['c1', 'c2'] });
let now = Date.parse('2026-03-01T10:00:00Z');
let seq = 0;

/** `s` seconds of 1 s samples (clock moved, engine ticked) with these values per chamber. */
function run(s: number, values: Record<string, Record<string, number>>) {
  for (let i = 0; i < s; i++) {
    now += 1000;
    for (const [chamber, v] of Object.entries(values))
      engine.accept({
        v: 1,
        gw: 'gw',
        seq: seq++,
        chamber,
        samples: Object.entries(v).map(([tag, value]) => ({ tag, ts: now, value, q: 'good' as const })),
      });
    engine.tick();
  }
}
const shown = (chamber: string): Alarm[] => live.snapshot().find((c) => c.chamber === chamber)?.alarms ?? [];
const postForm = (url: string, cookie: string, fields: Record<string, string>) =>
  app.inject({
    method: 'POST',
    url,
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: form(fields),
  });

beforeAll(async () => {
  broker = await Mosquitto.start();
  f = await fixture();
  await f.app.close();
  const mqtt = MqttConfig.parse({ url: broker.url, prefix: 'lab' });
  bus = new AlarmBus({ url: broker.url, mqtt, log: createLogger('alarm-bus-test') });
  engine = new AlarmEngine({
    config: AlarmsConfig.parse({}),
    plans: ['c1', 'c2'].map((c) => planOf(c, 1000, TAGS, TOL)),
    log: createLogger('alarms-test'),
    logFile: join(dir, 'alarms.jsonl'),
    audit: (e) => f.audit.write(e),
    now: () => now,
    publisher: bus,
  });
  bus.serve(engine);
  await live.connect(broker.url, 'lab');
  app = await buildApp({ health, experiments: f.store, users: f.users, audit: f.audit, live, alarms: engine });
  await f.users.setPassword('operator-user', 'operator-pass');
  await f.users.setPassword('viewer-user', 'viewer-pass');
  await eventually(() => bus.connected, 'alarm bus connected');
  engine.tick();
}, 60_000);

afterAll(async () => {
  engine?.stop();
  await bus?.close();
  await live.close();
  await app?.close();
  await f?.close();
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('alarm page and banner data with the real alarm engine', () => {
  it('lists the raised alarm; a viewer gets no acknowledge form; an operator acknowledges from the page with a comment', async () => {
    run(5, { c1: IN_BAND, c2: IN_BAND });
    run(31, { c1: { ...IN_BAND, air_temperature: 23.4 }, c2: IN_BAND });
    const [a] = engine.active();
    expect(a).toMatchObject({ chamber: 'c1', class: 'deviation', tag: 'air_temperature', state: 'raised' });
    // The retained state travelled through Mosquitto to the live view (what the banner shows).
    await eventually(() => shown('c1')[0]?.id === a!.id, 'c1 alarm in the live view');

    const viewer = await webSignIn(app, 'viewer-user', 'viewer-pass');
    const vp = await app.inject({ url: '/alarms', headers: { cookie: viewer.cookie } });
    expect(vp.body).toContain(`data-alarm="${a!.id}"`);
    expect(vp.body).toMatch(/<h2 id="active-h">Active alarms \(1\)<\/h2>/);
    expect(vp.body).toMatch(
      /<table id="alarm-history">[^]*<td>raised<\/td><td>c1<\/td><td>deviation<\/td><td>air_temperature<\/td>/,
    );
    expect(vp.body).not.toContain('name="comment"');
    expect(
      (await postForm(`/alarms/${a!.id}/ack`, viewer.cookie, { _csrf: viewer.csrf, comment: 'mine' })).statusCode,
    ).toBe(403);

    const op = await webSignIn(app, 'operator-user', 'operator-pass');
    const page = await app.inject({ url: '/alarms', headers: { cookie: op.cookie } });
    expect(page.body).toContain(`action="/alarms/${a!.id}/ack"`);
    const empty = await postForm(`/alarms/${a!.id}/ack`, op.cookie, { _csrf: op.csrf, comment: '  ' });
    expect(empty.statusCode).toBe(400);
    expect(empty.body).toContain('Write a comment to acknowledge an alarm');
    const forged = await postForm(`/alarms/${a!.id}/ack`, op.cookie, { comment: 'no token' });
    expect(forged.statusCode).toBe(403);
    expect(engine.active()[0]!.state).toBe('raised');

    const ok = await postForm(`/alarms/${a!.id}/ack`, op.cookie, {
      _csrf: op.csrf,
      comment: 'door <left> open, closed it',
      back: '/alarms?chamber=c1',
    });
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe(`/alarms?chamber=c1&acked=${encodeURIComponent(a!.id)}`);
    expect(engine.active()[0]).toMatchObject({
      state: 'acknowledged',
      acknowledged_by: 'web:operator-user',
      comment: 'door <left> open, closed it',
    });
    const after = await app.inject({ url: ok.headers.location as string, headers: { cookie: op.cookie } });
    expect(after.body).toContain('Acknowledged: deviation air_temperature in c1.');
    expect(after.body).toMatch(
      /<span class="alarm-state">acknowledged<\/span> by operator-user at [^:]+:[^<]*: “door &lt;left&gt; open, closed it”/,
    );
    expect(after.body).toMatch(
      /<td>acknowledged<\/td><td>c1<\/td><td>deviation<\/td><td>air_temperature<\/td><td>operator-user<\/td><td>door &lt;left&gt; open, closed it<\/td>/,
    );
    expect(after.body).not.toContain(`action="/alarms/${a!.id}/ack"`);
    expect(f.audit.read({ action: 'alarm_ack' })).toContainEqual(
      expect.objectContaining({
        who: 'web:operator-user',
        what: 'c1/deviation/air_temperature',
        detail: expect.objectContaining({ alarm: a!.id, comment: 'door <left> open, closed it' }),
      }),
    );
    // The banner follows: the acknowledged state reaches the live view.
    await eventually(() => shown('c1')[0]?.state === 'acknowledged', 'acknowledged state in the live view');
    expect(shown('c1')[0]).toMatchObject({ acknowledged_by: 'web:operator-user' });

    const again = await postForm(`/alarms/${a!.id}/ack`, op.cookie, { _csrf: op.csrf, comment: 'twice' });
    expect(again.statusCode).toBe(409);
    expect(again.body).toContain('was already acknowledged by web:operator-user');
    const unknown = await postForm('/alarms/nope/ack', op.cookie, { _csrf: op.csrf, comment: 'x' });
    expect(unknown.statusCode).toBe(404);
  });

  it("the banner's call: POST /api/alarms/:id/ack with the session cookie needs x-csrf-token; filter by chamber; the clear reaches the live view", async () => {
    run(31, { c1: { ...IN_BAND, air_temperature: 23.4 }, c2: { ...IN_BAND, co2: 600 } });
    const b = engine.active().find((x) => x.chamber === 'c2')!;
    expect(b).toMatchObject({ class: 'deviation', tag: 'co2', state: 'raised' });
    await eventually(() => shown('c2')[0]?.id === b.id, 'c2 alarm in the live view');
    const op = await webSignIn(app, 'operator-user', 'operator-pass');
    const viewer = await webSignIn(app, 'viewer-user', 'viewer-pass');
    const call = (s: { cookie: string }, headers: Record<string, string>) =>
      app.inject({
        method: 'POST',
        url: `/api/alarms/${encodeURIComponent(b.id)}/ack`,
        headers: { cookie: s.cookie, 'content-type': 'application/json', ...headers },
        payload: { comment: 'CO2 valve checked' },
      });
    expect((await call(op, {})).statusCode).toBe(401); // cookie without CSRF token: not a session for unsafe methods
    expect((await call(viewer, { 'x-csrf-token': viewer.csrf })).statusCode).toBe(403);
    const ok = await call(op, { 'x-csrf-token': op.csrf });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().alarm).toMatchObject({
      id: b.id,
      state: 'acknowledged',
      acknowledged_by: 'api:operator-user',
      comment: 'CO2 valve checked',
    });
    await eventually(() => shown('c2')[0]?.state === 'acknowledged', 'c2 acknowledged in the live view');

    const only2 = await app.inject({ url: '/alarms?chamber=c2', headers: { cookie: viewer.cookie } });
    expect(only2.body).toMatch(/Active alarms in c2 \(1\)/);
    expect(only2.body).not.toMatch(/<td>c1<\/td>/);
    expect(only2.body).toMatch(
      /<td>acknowledged<\/td><td>c2<\/td><td>deviation<\/td><td>co2<\/td><td>operator-user<\/td><td>CO2 valve checked<\/td>/,
    );

    run(3, { c1: IN_BAND, c2: IN_BAND });
    expect(engine.active()).toEqual([]);
    await eventually(() => live.alarms().length === 0, 'cleared in the live view');
    const all = await app.inject({ url: '/alarms', headers: { cookie: viewer.cookie } });
    expect(all.body).toContain('No active alarm.');
    const events = [
      ...all.body.matchAll(/<tr data-alarm="[^"]+" data-event="(\w+)"><td>[^<]*<\/td><td>\w+<\/td><td>(c\d)<\/td>/g),
    ].map((m) => `${m[2]} ${m[1]}`);
    expect(events.sort()).toEqual([
      'c1 acknowledged',
      'c1 cleared',
      'c1 raised',
      'c2 acknowledged',
      'c2 cleared',
      'c2 raised',
    ]);
  });
});
