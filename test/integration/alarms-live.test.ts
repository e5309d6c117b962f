/**
 * Live alarms end to end: simulated PLCs (real OPC UA and Modbus TCP servers, in this
 * process so the test can inject faults), `octopus start` as a user runs it (embedded
 * broker, gateway, collector with the alarm engine, HTTP API), an operator and a viewer
 * on MQTT and HTTP. Every fault goes through the whole chain: PLC → driver → MQTT →
 * collector → alarm → MQTT / HTTP / audit log / metrics.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlarmEvent, ChamberAlarmState } from '../../src/alarms/model.ts';
import { AlarmEvent as AlarmEventSchema, ChamberAlarmState as StateSchema } from '../../src/alarms/model.ts';
import { DataMessage } from '../../src/bus/payload.ts';
import { loadConfig } from '../../src/config/loader.ts';
import { createLogger } from '../../src/core/log.ts';
import { startSimulator, type RunningSimulator } from '../../src/sim/simulator.ts';
import { startOctopus, type RunningOctopus } from '../support/cli.ts';
import { probe, publishOrDrop, type Probe } from '../support/mqtt-probe.ts';
import { person } from '../support/people.ts';
import { eventually, freePort } from '../support/ports.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-alarms-live-'));
const dataDir = join(dir, 'data');
const config = join(dir, 'lab.yaml');
let sim: RunningSimulator;
let octopus: RunningOctopus;
let mqttUrl: string;
let http: string;
let olga: { username: string; password: string };
let vic: { username: string; password: string };
let obs: Probe;
const events: AlarmEvent[] = [];
/** What a facility's webhook receiver (a real HTTP server on loopback) got from the collector. */
const hooked: Array<AlarmEvent & { webhook: string }> = [];
let receiver: Server;
const states = new Map<string, ChamberAlarmState>();
/** Latest sample per chamber/tag (an OPC UA subscription sends only what changed), and the newest stamp per chamber. */
const latest = new Map<string, DataMessage['samples'][number]>();
const newest = new Map<string, number>();

/** Min duration of the CO2 deviation on c1 (chamber tolerance override in the test config). */
const MIN_S = 6;

/** Records what the probe received so far (retained messages come right after the subscription) and from now on. */
function observe(p: Probe): void {
  for (const m of p.got) handle(m.topic, Buffer.from(m.payload));
  p.client.on('message', handle);
}

function handle(topic: string, payload: Buffer): void {
  if (payload.length === 0) return;
  const body: unknown = JSON.parse(payload.toString());
  if (topic === 'lab/alarms/event') events.push(AlarmEventSchema.parse(body));
  else if (topic.endsWith('/alarm')) states.set(topic, StateSchema.parse(body));
  else if (topic.endsWith('/data')) {
    const m = DataMessage.parse(body);
    for (const x of m.samples) {
      latest.set(`${m.chamber}/${x.tag}`, x);
      newest.set(m.chamber, Math.max(newest.get(m.chamber) ?? 0, x.ts));
    }
  }
}

const api = (path: string, who: { password: string }, init: RequestInit = {}) =>
  fetch(`${http}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${who.password}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
  });
const raisedOf = (key: string) => events.filter((e) => e.event === 'raised' && e.alarm.key === key);
const valueOf = (chamber: string, tag: string) => latest.get(`${chamber}/${tag}`)?.value;

/** Waits until the data of `chamber` carry a sample stamped after `t` (so everything before it was evaluated). */
async function dataAfter(chamber: string, t: number): Promise<void> {
  await eventually(
    () => (newest.get(chamber) ?? 0) > t,
    `data of ${chamber} stamped after ${new Date(t).toISOString()}`,
    30_000,
  );
}

beforeAll(async () => {
  const ports = {
    opcua: await freePort(),
    modbus: await freePort(),
    mqtt: await freePort(),
    http: await freePort(),
    hook: await freePort(),
  };
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hooked.push(JSON.parse(body) as AlarmEvent & { webhook: string });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(ports.hook, '127.0.0.1', r));
  mqttUrl = `mqtt://127.0.0.1:${ports.mqtt}`;
  http = `http://127.0.0.1:${ports.http}`;
  writeFileSync(
    config,
    `
gateway: { id: alarms }
data_dir: ${JSON.stringify(dataDir)}
simulator: { enabled: false }
mqtt: { port: ${ports.mqtt}, prefix: lab }
http: { port: ${ports.http}, host: 127.0.0.1 }
alarms:
  stale_periods: 6
  offline_delay_s: 2
  door_open_max_s: 2
  evaluate_interval_ms: 200
  webhooks: [{ name: ops, url: "http://127.0.0.1:${ports.hook}/alarms", classes: [deviation], backoff_ms: 100 }]
chambers:
  - id: c1
    driver: opcua
    profile: ecotron-chamberctl
    endpoint: "opc.tcp://127.0.0.1:${ports.opcua}"
    interval_ms: 500
    # Wide bands (the simulated day programme must not alarm by itself); CO2 judged quickly.
    tolerances: { co2: { band: 100, min_duration_s: ${MIN_S}, hysteresis: 10 }, air_temperature: { band: 5 }, par: { band: 500 } }
  - id: c2
    driver: modbus
    profile: phytolab-gc2
    endpoint: "tcp://127.0.0.1:${ports.modbus}"
    interval_ms: 500
    modbus: { unit_id: 1, timeout_ms: 300, retries: 0 }
    tolerances: { co2: { band: 200 }, air_temperature: { band: 5 }, par: { band: 500 } }
`,
  );
  sim = await startSimulator(
    loadConfig(config, {
      ...process.env,
      OCTOPUS_CONFIG: '',
      OCTOPUS_DATA_DIR: '',
      OCTOPUS_MQTT_URL: '',
      OCTOPUS_HTTP_PORT: '',
    }),
    createLogger('sim'),
  );
  // The model's random door openings and spurious alarms stay out of the way.
  sim.faults.quiet('c1');
  sim.faults.quiet('c2');
  octopus = await startOctopus(config);
  olga = await person(dataDir, 'olga', 'operator');
  vic = await person(dataDir, 'vic', 'viewer');
  obs = await probe(mqttUrl, olga, {
    subscribe: ['lab/+/alarm', 'lab/alarms/event', 'lab/+/data', 'lab/results/olga'],
  });
  observe(obs);
  await eventually(
    () => valueOf('c1', 'co2') !== undefined && valueOf('c2', 'co2') !== undefined,
    'data of both chambers',
    40_000,
  );
}, 120_000);

afterAll(async () => {
  await obs?.end();
  await octopus?.stop();
  await sim?.stop();
  await new Promise((r) => receiver?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('live alarms on a running octopus', () => {
  let deviationId = '';

  it('every chamber gets a retained, empty alarm state at start', async () => {
    await eventually(() => states.get('lab/c1/alarm') && states.get('lab/c2/alarm'), 'retained alarm states', 20_000);
    expect(states.get('lab/c1/alarm')!.alarms).toEqual([]);
  });

  it('a CO2 spike shorter than the minimum duration raises nothing', async () => {
    const sp = Number(sim.models.get('c1')!.setpoint('co2'));
    sim.faults.drift('c1', 'co2', 400);
    const seen = await eventually(
      () => (Math.abs(Number(valueOf('c1', 'co2')) - sp) > 200 ? latest.get('c1/co2')!.ts : undefined),
      'drifted CO2 on MQTT',
      20_000,
      20,
    );
    sim.faults.drift('c1', 'co2', 0);
    await eventually(() => Math.abs(Number(valueOf('c1', 'co2')) - sp) < 100, 'CO2 back on MQTT', 20_000, 20);
    // Everything up to the minimum duration after the spike began has been evaluated.
    await dataAfter('c1', seen + MIN_S * 1000 + 1000);
    expect(raisedOf('c1/deviation/co2')).toEqual([]);
  }, 60_000);

  it('CO2 held beyond its band longer than the minimum duration raises exactly one deviation alarm, on MQTT with its state retained', async () => {
    sim.faults.drift('c1', 'co2', 400);
    const [e] = await eventually(
      () => (raisedOf('c1/deviation/co2').length ? raisedOf('c1/deviation/co2') : undefined),
      'deviation alarm event',
      40_000,
    );
    deviationId = e!.alarm.id;
    expect(e!.alarm).toMatchObject({
      chamber: 'c1',
      class: 'deviation',
      tag: 'co2',
      state: 'raised',
      severity: 'warning',
      band: 100,
      units: 'umol mol-1',
    });
    expect(e!.alarm.raised_at - e!.alarm.since).toBeGreaterThanOrEqual(MIN_S * 1000);
    expect(Math.abs(e!.alarm.value! - e!.alarm.setpoint!)).toBeGreaterThan(100);
    await eventually(
      () => states.get('lab/c1/alarm')?.alarms.some((a) => a.id === deviationId),
      'retained state with the alarm',
    );
    // A newcomer gets the retained state at once.
    const late = await probe(mqttUrl, vic, { subscribe: ['lab/c1/alarm'] });
    const got = await eventually(
      () => late.got.find((m) => m.topic === 'lab/c1/alarm'),
      'retained alarm state for a viewer',
    );
    await late.end();
    expect(got.retained).toBe(true);
    expect(StateSchema.parse(JSON.parse(got.payload)).alarms.map((a) => a.id)).toEqual([deviationId]);
    // The facility's webhook receiver got the same event from the collector.
    const delivered = await eventually(
      () => hooked.find((h) => h.event === 'raised' && h.alarm.id === deviationId),
      'the raised event at the webhook receiver',
    );
    expect(delivered).toMatchObject({ webhook: 'ops', alarm: { chamber: 'c1', class: 'deviation', tag: 'co2' } });
    // Still out of band for longer: no second alarm.
    await dataAfter('c1', e!.alarm.raised_at + 3000);
    expect(raisedOf('c1/deviation/co2')).toHaveLength(1);
  }, 90_000);

  it('the API lists it; a viewer may not acknowledge (403, audited); an operator does (200), once (409); unknown ids are 404', async () => {
    const list = (await (await api('/api/alarms', vic)).json()) as { alarms: Array<{ id: string }> };
    expect(list.alarms.map((a) => a.id)).toContain(deviationId);
    const refused = await api(`/api/alarms/${deviationId}/ack`, vic, {
      method: 'POST',
      body: JSON.stringify({ comment: 'me too' }),
    });
    expect(refused.status).toBe(403);
    const ok = await api(`/api/alarms/${deviationId}/ack`, olga, {
      method: 'POST',
      body: JSON.stringify({ comment: 'CO2 valve checked' }),
    });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { alarm: unknown }).alarm).toMatchObject({
      id: deviationId,
      state: 'acknowledged',
      acknowledged_by: 'api:olga',
      comment: 'CO2 valve checked',
    });
    expect(
      (
        await api(`/api/alarms/${deviationId}/ack`, olga, {
          method: 'POST',
          body: JSON.stringify({ comment: 'again' }),
        })
      ).status,
    ).toBe(409);
    expect(
      (
        await api('/api/alarms/c9.deviation.co2.1/ack', olga, {
          method: 'POST',
          body: JSON.stringify({ comment: 'x' }),
        })
      ).status,
    ).toBe(404);
    expect(
      (await api(`/api/alarms/${deviationId}/ack`, olga, { method: 'POST', body: JSON.stringify({ comment: '' }) }))
        .status,
    ).toBe(400);
    await eventually(
      () => events.find((e) => e.event === 'acknowledged' && e.alarm.id === deviationId),
      'acknowledged event on MQTT',
    );
    await eventually(
      () => states.get('lab/c1/alarm')?.alarms.find((a) => a.id === deviationId && a.state === 'acknowledged'),
      'retained state acknowledged',
    );
    const audit = readFileSync(join(dataDir, 'state', 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { who: string; action: string; what: string; detail?: Record<string, unknown> });
    expect(audit.filter((a) => a.action === 'alarm_ack')).toEqual([
      expect.objectContaining({
        who: 'api:vic',
        what: deviationId,
        detail: expect.objectContaining({ result: expect.stringContaining('refused') }),
      }),
      expect.objectContaining({
        who: 'api:olga',
        what: 'c1/deviation/co2',
        detail: expect.objectContaining({ alarm: deviationId, comment: 'CO2 valve checked' }),
      }),
    ]);
  }, 60_000);

  it('back inside the band the alarm clears; it stays in the history; /metrics and health count it', async () => {
    sim.faults.drift('c1', 'co2', 0);
    const cleared = await eventually(
      () => events.find((e) => e.event === 'cleared' && e.alarm.id === deviationId),
      'cleared event',
      30_000,
    );
    expect(cleared.alarm).toMatchObject({ state: 'cleared', acknowledged_by: 'api:olga' });
    await eventually(() => states.get('lab/c1/alarm')?.alarms.length === 0, 'retained state empty');
    expect(
      (await api(`/api/alarms/${deviationId}/ack`, olga, { method: 'POST', body: JSON.stringify({ comment: 'late' }) }))
        .status,
    ).toBe(409);
    const history = (await (await api('/api/alarms/history?chamber=c1&limit=10', vic)).json()) as {
      events: AlarmEvent[];
    };
    expect(history.events.filter((e) => e.alarm.id === deviationId).map((e) => e.event)).toEqual([
      'cleared',
      'acknowledged',
      'raised',
    ]);
    // The webhook got the whole lifecycle, in order, with who acknowledged.
    await eventually(
      () => hooked.some((h) => h.event === 'cleared' && h.alarm.id === deviationId),
      'the cleared event at the webhook receiver',
    );
    const lifecycle = hooked.filter((h) => h.alarm.id === deviationId);
    expect(lifecycle.map((h) => h.event)).toEqual(['raised', 'acknowledged', 'cleared']);
    expect(lifecycle[1]!.by).toBe('api:olga');
    const metrics = await (await fetch(`${http}/metrics`)).text();
    expect(metrics).toMatch(/octopus_alarms_raised_total\{class="deviation"\} 1\b/);
    expect(metrics).toMatch(/octopus_alarms_acknowledged_total 1\b/);
    const health = (await (await fetch(`${http}/api/health`)).json()) as {
      sinks: Record<string, { state: string; active?: number }>;
    };
    expect(health.sinks.alarms).toMatchObject({ state: 'writer', active: 0 });
  }, 60_000);

  it('an operator acknowledges over MQTT (answered on results/<user>); a PLC alarm bit raises plc_alarm', async () => {
    sim.faults.plcAlarm('c2', true);
    const e = await eventually(() => raisedOf('c2/plc_alarm/alarm_active')[0], 'plc_alarm event', 30_000);
    expect(e.alarm).toMatchObject({ severity: 'critical', class: 'plc_alarm' });
    const results: string[] = [];
    obs.client.on('message', (topic, payload) => topic === 'lab/results/olga' && results.push(payload.toString()));
    expect(
      await publishOrDrop(
        obs,
        'lab/alarms/ack/olga',
        JSON.stringify({ alarm: e.alarm.id, comment: 'called service', id: 'req-1' }),
      ),
    ).toBe(true);
    const r = await eventually(
      () => results.map((x) => JSON.parse(x) as Record<string, unknown>).find((x) => x.id === 'req-1'),
      'ack result',
    );
    expect(r).toMatchObject({ request: 'alarm_ack', status: 'accepted', alarm: e.alarm.id, by: 'olga' });
    await eventually(
      () => events.find((x) => x.event === 'acknowledged' && x.alarm.id === e.alarm.id && x.by === 'mqtt:olga'),
      'acknowledged by mqtt:olga',
    );
    // Refusals are answered with the reason: unknown alarm, no comment.
    await publishOrDrop(
      obs,
      'lab/alarms/ack/olga',
      JSON.stringify({ alarm: 'c9.offline.chamber.1', comment: 'x', id: 'req-2' }),
    );
    await publishOrDrop(obs, 'lab/alarms/ack/olga', JSON.stringify({ alarm: e.alarm.id, id: 'req-3' }));
    const refused = (id: string) =>
      results.map((x) => JSON.parse(x) as Record<string, unknown>).find((x) => x.id === id);
    expect(await eventually(() => refused('req-2'), 'refusal req-2')).toMatchObject({
      status: 'refused',
      reason: expect.stringContaining('no alarm'),
    });
    expect(await eventually(() => refused('req-3'), 'refusal req-3')).toMatchObject({
      status: 'refused',
      reason: expect.stringContaining('comment'),
    });
    // A viewer may not publish acknowledgements at all (broker ACL).
    const v = await probe(mqttUrl, vic);
    await publishOrDrop(v, 'lab/alarms/ack/vic', JSON.stringify({ alarm: e.alarm.id, comment: 'x' }));
    await v.end();
    sim.faults.plcAlarm('c2', false);
    await eventually(
      () => events.find((x) => x.event === 'cleared' && x.alarm.id === e.alarm.id),
      'plc alarm cleared',
      30_000,
    );
    expect(events.filter((x) => x.by === 'mqtt:vic')).toEqual([]);
  }, 60_000);

  it('a door held open longer than door_open_max_s raises door_open', async () => {
    sim.faults.door('c1', true);
    const e = await eventually(() => raisedOf('c1/door_open/door_open')[0], 'door_open event', 30_000);
    expect(e.alarm.raised_at - e.alarm.since).toBeGreaterThanOrEqual(2000);
    sim.faults.door('c1', false);
    await eventually(
      () => events.find((x) => x.event === 'cleared' && x.alarm.id === e.alarm.id),
      'door_open cleared',
      30_000,
    );
  }, 60_000);

  it('a failed CO2 sensor raises stale, on the OPC UA chamber (reports changes) and on the Modbus one (polled)', async () => {
    sim.faults.fail('c1', 'co2');
    sim.faults.fail('c2', 'co2');
    let e: AlarmEvent;
    let e2: AlarmEvent;
    try {
      e = await eventually(() => raisedOf('c1/stale/co2')[0], 'stale event c1', 30_000);
      e2 = await eventually(() => raisedOf('c2/stale/co2')[0], 'stale event c2', 30_000);
      expect(e.alarm.message).toContain('no good sample');
      expect(valueOf('c1', 'co2')).toBeNull();
    } finally {
      sim.faults.fail('c1', 'co2', false);
      sim.faults.fail('c2', 'co2', false);
    }
    // A partly failing PLC (status "error") is not offline.
    expect(raisedOf('c2/offline')).toEqual([]);
    await eventually(
      () => events.find((x) => x.event === 'cleared' && x.alarm.id === e.alarm.id),
      'stale cleared c1',
      30_000,
    );
    await eventually(
      () => events.find((x) => x.event === 'cleared' && x.alarm.id === e2.alarm.id),
      'stale cleared c2',
      30_000,
    );
  }, 60_000);

  it('a frozen value on the OPC UA chamber is a constant to its subscription: no stale alarm (documented limit)', async () => {
    sim.faults.freeze('c1', 'relative_humidity');
    const t = Date.now();
    await dataAfter('c1', t + 6 * 500 * 2);
    sim.faults.freeze('c1', 'relative_humidity', false);
    expect(raisedOf('c1/stale/relative_humidity')).toEqual([]);
  }, 60_000);

  it('a chamber whose PLC stops answering raises offline; a restart keeps the alarm and its acknowledgement without raising it again', async () => {
    await sim.faults.drop('c2');
    const e = await eventually(() => raisedOf('c2/offline')[0], 'offline event', 40_000);
    expect(e.alarm).toMatchObject({ severity: 'critical', chamber: 'c2' });
    expect(
      (
        await api(`/api/alarms/${e.alarm.id}/ack`, olga, {
          method: 'POST',
          body: JSON.stringify({ comment: 'network team on it' }),
        })
      ).status,
    ).toBe(200);

    await octopus.stop();
    events.length = 0;
    await obs.end();
    octopus = await startOctopus(config);
    obs = await probe(mqttUrl, olga, { subscribe: ['lab/+/alarm', 'lab/alarms/event', 'lab/+/data'] });
    observe(obs);
    const list = await eventually(
      async () => {
        const r = await api('/api/alarms', vic);
        return r.status === 200
          ? ((await r.json()) as { alarms: Array<{ id: string; state: string; acknowledged_by?: string }> })
          : undefined;
      },
      'alarms after restart',
      30_000,
    );
    expect(list.alarms).toEqual([
      expect.objectContaining({ id: e.alarm.id, state: 'acknowledged', acknowledged_by: 'api:olga' }),
    ]);
    // Still offline after the restart, for longer than offline_delay_s: no second raise.
    await eventually(
      async () => {
        const h = (await (await fetch(`${http}/api/health`)).json()) as {
          drivers: Array<{ chamber: string; state: string }>;
        };
        return h.drivers.find((d) => d.chamber === 'c2' && d.state === 'offline');
      },
      'c2 offline after restart',
      30_000,
    );
    await dataAfter('c1', Date.now() + 3000);
    expect(events.filter((x) => x.alarm.key === 'c2/offline' && x.event === 'raised')).toEqual([]);

    await sim.faults.drop('c2', false);
    const cleared = await eventually(
      () => events.find((x) => x.event === 'cleared' && x.alarm.id === e.alarm.id),
      'offline cleared after restart',
      40_000,
    );
    expect(cleared.alarm.acknowledged_by).toBe('api:olga');
  }, 150_000);
});
