/**
 * The alarm rules with a fake clock: minimum duration, hysteresis, each class, the
 * lifecycle and the event log that a restart rebuilds the state from.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AlarmsConfig } from '../../src/alarms/config.ts';
import { AlarmEngine, type AlarmPublisher } from '../../src/alarms/engine.ts';
import type { AlarmEvent, ChamberAlarmState } from '../../src/alarms/model.ts';
import { planOf } from '../../src/alarms/plan.ts';
import { Condition } from '../../src/alarms/condition.ts';
import type { DataMessage } from '../../src/bus/payload.ts';
import { createLogger } from '../../src/core/log.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const TAGS = [
  { name: 'air_temperature', unit: 'degree_Celsius' },
  { name: 'air_temperature_setpoint', role: 'setpoint', setpoint_of: 'air_temperature' },
  { name: 'co2', unit: 'umol mol-1' },
  { name: 'co2_setpoint', role: 'setpoint', setpoint_of: 'co2' },
  { name: 'alarm_word', role: 'alarm' },
  { name: 'door_open', role: 'state', door: true },
];

/** An engine on chamber c1 with a fake clock, recording what it publishes. */
function rig(
  o: {
    dir?: string;
    config?: Record<string, unknown>;
    chamberTol?: Record<string, { band?: number; min_duration_s?: number; hysteresis?: number }>;
    treatment?: Record<string, { band?: number; min_duration_s?: number }>;
    active?: () => boolean;
  } = {},
) {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'octopus-alarms-'));
  if (!o.dir) dirs.push(dir);
  let now = 1_800_000_000_000;
  const events: AlarmEvent[] = [];
  const states: ChamberAlarmState[] = [];
  const audit: Array<{ who: string; action: string; what: string }> = [];
  const publisher: AlarmPublisher = { event: (e) => events.push(e), state: (s) => states.push(s) };
  const plan = planOf(
    'c1',
    1000,
    TAGS,
    { air_temperature: { band: 0.5, min_duration_s: 60 }, co2: { band: 50, min_duration_s: 30 } },
    o.chamberTol ?? {},
  );
  const engine = new AlarmEngine({
    config: AlarmsConfig.parse({ door_open_max_s: 120, offline_delay_s: 10, stale_periods: 5, ...o.config }),
    plans: [plan],
    log: createLogger('alarms-test'),
    logFile: join(dir, 'state', 'alarms.jsonl'),
    audit: (e) => audit.push(e),
    now: () => now,
    publisher,
    ...(o.active ? { active: o.active } : {}),
    ...(o.treatment ? { treatment: () => o.treatment } : {}),
  });
  engine.tick();
  let seq = 0;
  const send = (values: Record<string, number | boolean | null>, q: 'good' | 'bad' = 'good') => {
    const msg: DataMessage = {
      v: 1,
      gw: 'gw',
      seq: seq++,
      chamber: 'c1',
      samples: Object.entries(values).map(([tag, value]) => ({ tag, ts: now, value, q })),
    };
    engine.accept(msg);
  };
  /** Advances the clock by `s` seconds in 1 s steps, with the given values each second and a tick. */
  const run = (s: number, values: Record<string, number | boolean | null> = {}) => {
    for (let i = 0; i < s; i++) {
      now += 1000;
      if (Object.keys(values).length) send(values);
      engine.tick();
    }
  };
  return {
    engine,
    events,
    states,
    audit,
    send,
    run,
    dir,
    now: () => now,
    raised: () => events.filter((e) => e.event === 'raised'),
  };
}

describe('Condition: minimum duration and hysteresis', () => {
  it('raises once after the minimum duration, ignores a shorter spike, clears only back inside band − hysteresis', () => {
    const c = new Condition(10_000);
    expect(c.update(true, false, 0)).toBeUndefined();
    expect(c.update(false, true, 5000)).toBeUndefined(); // spike of 5 s
    expect(c.phase).toBe('ok');
    expect(c.update(true, false, 6000)).toBeUndefined();
    expect(c.tick(15_999)).toBeUndefined();
    expect(c.tick(16_000)).toBe('raise');
    expect(c.tick(17_000)).toBeUndefined();
    expect(c.update(true, false, 18_000)).toBeUndefined();
    // Inside the band but not below band − hysteresis: still active.
    expect(c.update(false, false, 19_000)).toBeUndefined();
    expect(c.phase).toBe('active');
    expect(c.update(false, true, 20_000)).toBe('clear');
  });
});

describe('alarm engine (fake clock)', () => {
  const inBand = {
    air_temperature: 22.1,
    air_temperature_setpoint: 22,
    co2: 420,
    co2_setpoint: 420,
    alarm_word: 0,
    door_open: false,
  };

  it('a deviation beyond the band for longer than min_duration raises exactly one alarm; back within band − hysteresis clears it', () => {
    const r = rig();
    r.run(5, inBand);
    r.run(61, { ...inBand, air_temperature: 23.2 });
    expect(r.raised().map((e) => e.alarm.key)).toEqual(['c1/deviation/air_temperature']);
    const a = r.raised()[0]!.alarm;
    expect(a).toMatchObject({
      class: 'deviation',
      tag: 'air_temperature',
      severity: 'warning',
      state: 'raised',
      value: 23.2,
      setpoint: 22,
      band: 0.5,
      units: 'degree_Celsius',
    });
    expect(a.raised_at - a.since).toBeGreaterThanOrEqual(60_000);
    expect(a.raised_at - a.since).toBeLessThanOrEqual(61_000);
    r.run(30, { ...inBand, air_temperature: 23.2 });
    expect(r.raised()).toHaveLength(1);
    // 0.46 from the setpoint: inside the band, not below band − hysteresis (0.45): still active.
    r.run(5, { ...inBand, air_temperature: 22.46 });
    expect(r.engine.active()).toHaveLength(1);
    r.run(1, { ...inBand, air_temperature: 22.3 });
    expect(r.engine.active()).toHaveLength(0);
    expect(r.events.map((e) => e.event)).toEqual(['raised', 'cleared']);
    expect(r.states.at(-1)).toMatchObject({ chamber: 'c1', alarms: [] });
  });

  it('a spike shorter than min_duration raises nothing', () => {
    const r = rig();
    r.run(5, inBand);
    r.run(59, { ...inBand, air_temperature: 25 });
    r.run(120, inBand);
    expect(r.events).toEqual([]);
  });

  it('the treatment tolerance wins over chamber and profile', () => {
    const r = rig({ chamberTol: { co2: { band: 100 } }, treatment: { co2: { band: 20, min_duration_s: 5 } } });
    r.run(2, inBand);
    r.run(6, { ...inBand, co2: 450 });
    expect(r.raised().map((e) => [e.alarm.key, e.alarm.band])).toEqual([['c1/deviation/co2', 20]]);
  });

  it('PLC alarm words raise at once when non-zero and clear at zero; a door open longer than door_open_max_s raises door_open', () => {
    const r = rig();
    r.run(2, inBand);
    r.run(1, { ...inBand, alarm_word: 3 });
    expect(r.raised().map((e) => [e.alarm.key, e.alarm.severity, e.alarm.value])).toEqual([
      ['c1/plc_alarm/alarm_word', 'critical', 3],
    ]);
    r.run(1, inBand);
    r.run(119, { ...inBand, door_open: true });
    expect(r.raised()).toHaveLength(1);
    r.run(2, { ...inBand, door_open: true });
    expect(r.raised().map((e) => e.alarm.key)).toEqual(['c1/plc_alarm/alarm_word', 'c1/door_open/door_open']);
    r.run(1, inBand);
    expect(r.engine.active()).toEqual([]);
  });

  it('offline after offline_delay_s; stale after stale_periods without a good sample, not while offline', () => {
    const r = rig();
    r.run(2, inBand);
    r.engine.status('c1', { state: 'offline', ts: r.now(), reason: 'connection refused' });
    r.run(9);
    expect(r.raised()).toEqual([]);
    r.run(2);
    expect(r.raised().map((e) => e.alarm.key)).toEqual(['c1/offline']);
    expect(r.raised()[0]!.alarm.message).toContain('connection refused');
    r.engine.status('c1', { state: 'online', ts: r.now() });
    expect(r.engine.active()).toEqual([]);
    // Online again, but the temperature sensor only gives bad samples.
    r.run(5, { co2: 420, co2_setpoint: 420 });
    expect(r.raised()).toHaveLength(1);
    r.run(2, { co2: 420, co2_setpoint: 420 });
    expect(r.raised().map((e) => e.alarm.key)).toEqual(['c1/offline', 'c1/stale/air_temperature']);
    r.run(1, inBand);
    expect(r.engine.active()).toEqual([]);
  });

  it('acknowledge: operator identity and comment kept, audited, published; unknown 404, twice or cleared 409', async () => {
    const r = rig();
    r.run(2, inBand);
    r.run(1, { ...inBand, alarm_word: 1 });
    const id = r.engine.active()[0]!.id;
    expect(await r.engine.acknowledge('nope', 'api:olga', 'x')).toMatchObject({ ok: false, status: 404 });
    const ok = await r.engine.acknowledge(id, 'api:olga', 'filter changed');
    expect(ok).toMatchObject({
      ok: true,
      alarm: { state: 'acknowledged', acknowledged_by: 'api:olga', comment: 'filter changed' },
    });
    expect(r.audit).toEqual([
      expect.objectContaining({ who: 'api:olga', action: 'alarm_ack', what: 'c1/plc_alarm/alarm_word' }),
    ]);
    expect(await r.engine.acknowledge(id, 'api:olga', 'again')).toMatchObject({ ok: false, status: 409 });
    expect(r.states.at(-1)!.alarms[0]).toMatchObject({ id, state: 'acknowledged' });
    r.run(1, inBand);
    expect(await r.engine.acknowledge(id, 'api:olga', 'late')).toMatchObject({ ok: false, status: 409 });
    expect(r.events.map((e) => `${e.event} ${e.by}`)).toEqual([
      'raised octopus',
      'acknowledged api:olga',
      'cleared octopus',
    ]);
    expect(r.engine.history({ limit: 2 }).map((e) => e.event)).toEqual(['cleared', 'acknowledged']);
  });

  it('the event log is written and a restart keeps active alarms and acknowledgements without raising them again', async () => {
    const a = rig();
    a.run(2, inBand);
    a.run(1, { ...inBand, alarm_word: 1 });
    a.run(31, { ...inBand, alarm_word: 1, co2: 600 });
    const [plc, co2] = [
      a.engine.active().find((x) => x.class === 'plc_alarm')!,
      a.engine.active().find((x) => x.tag === 'co2')!,
    ];
    await a.engine.acknowledge(plc.id, 'mqtt:olga', 'seen');
    const lines = readFileSync(join(a.dir, 'state', 'alarms.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(lines).toHaveLength(3);
    a.engine.stop();

    const b = rig({ dir: a.dir });
    expect(
      b.engine
        .active()
        .map((x) => [x.id, x.state])
        .sort(),
    ).toEqual(
      [
        [co2.id, 'raised'],
        [plc.id, 'acknowledged'],
      ].sort(),
    );
    // Conditions persist: no second raise.
    b.run(40, { ...inBand, alarm_word: 1, co2: 600 });
    expect(b.raised()).toEqual([]);
    // And they clear when the condition goes.
    b.run(1, inBand);
    expect(b.events.map((e) => `${e.event} ${e.alarm.id}`).sort()).toEqual(
      [`cleared ${co2.id}`, `cleared ${plc.id}`].sort(),
    );
    expect(b.states.at(-1)!.alarms).toEqual([]);
  });

  it('a standby engine evaluates silently and, taking over, adopts the logged alarms and raises only what is new', () => {
    const writer = rig();
    writer.run(2, inBand);
    writer.run(1, { ...inBand, alarm_word: 1 });
    let active = false;
    const standby = rig({ dir: writer.dir, active: () => active });
    standby.run(2, { ...inBand, alarm_word: 1 });
    standby.run(31, { ...inBand, alarm_word: 1, co2: 600 });
    expect(standby.events).toEqual([]);
    active = true;
    standby.run(1, { ...inBand, alarm_word: 1, co2: 600 });
    expect(standby.events.map((e) => `${e.event} ${e.alarm.key}`)).toEqual(['raised c1/deviation/co2']);
    expect(standby.engine.active().find((x) => x.class === 'plc_alarm')!.id).toBe(writer.engine.active()[0]!.id);
  });
});

describe('alarm event log that cannot be written', () => {
  it('the alarm is still raised and published; health names the log and the error; nothing throws', async () => {
    const { writeFileSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'octopus-alarms-ro-'));
    dirs.push(dir);
    // "state" is a file: the log's folder cannot be made.
    writeFileSync(join(dir, 'state'), 'not a folder');
    const r = rig({ dir });
    r.run(2, { alarm_word: 0 });
    r.run(1, { alarm_word: 1 });
    expect(r.raised().map((e) => e.alarm.key)).toEqual(['c1/plc_alarm/alarm_word']);
    expect(r.engine.health()).toMatchObject({
      active: 1,
      log_error: expect.stringContaining(join(dir, 'state', 'alarms.jsonl')),
    });
  });
});

describe('treatment tolerances from the experiment store', () => {
  it('are those of the running run of the chamber, and gone when the run stops', async () => {
    const { ArchiveRoot } = await import('../../src/experiments/archive-root.ts');
    const { ExperimentStore } = await import('../../src/experiments/store.ts');
    const { TreatmentTolerances } = await import('../../src/alarms/treatments.ts');
    const { mkdirSync } = await import('node:fs');
    const base = mkdtempSync(join(tmpdir(), 'octopus-alarms-exp-'));
    dirs.push(base);
    mkdirSync(join(base, 'nas'));
    const store = new ExperimentStore(new ArchiveRoot(join(base, 'nas'), join(base, 'local')), {
      chambers: () => ['c1', 'c2'],
      variables: (chambers) => [
        {
          name: 'co2',
          unit: 'umol mol-1',
          standard_name: 'mole_fraction_of_carbon_dioxide_in_air',
          description: 'CO2',
          chambers,
        },
      ],
    });
    await store.create(
      {
        id: 'eco2-2026',
        title: 'Elevated CO2',
        principal_investigator: { name: 'Ada Lovelace' },
        chambers: ['c1', 'c2'],
        treatments: [
          {
            chamber: 'c2',
            name: 'elevated CO2',
            setpoints: { co2_setpoint: 800 },
            tolerances: { co2: { band: 30, min_duration_s: 120 } },
          },
        ],
      },
      'test',
    );
    let now = 0;
    const t = new TreatmentTolerances(store, () => now, 5000);
    expect(t.of('c2')).toBeUndefined();
    const run = store.startRun('eco2-2026', 'test');
    expect(t.of('c2')).toEqual({ co2: { band: 30, min_duration_s: 120 } });
    expect(t.of('c1')).toBeUndefined();
    store.stopRun('eco2-2026', run.id, 'test');
    now += 1;
    expect(t.of('c2')).toBeUndefined();
    t.close();
  });
});
