/**
 * Alarm events reach Grafana: written through the collector's real InfluxDB sink (disk
 * buffer, retries) into a real influxd 1.x, kept on disk while the database answers 503
 * and across a restart of the sink, then read back by the "Alarms" annotation query of
 * the generated dashboards, with Grafana's macros expanded as its datasource does.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandMacros, type MacroContext } from '../../dashboards/lib/macros.ts';
import { queriesOf } from '../../dashboards/lib/queries.ts';
import { writeAlarmsToInflux } from '../../src/alarms/influx.ts';
import { InfluxSink } from '../../src/collector/sinks/influx/sink.ts';
import { InfluxConfig } from '../../src/config/instance-schema.ts';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { createLogger } from '../../src/core/log.ts';
import { alarmEvent, TestAlarmSource } from '../support/alarm-events.ts';
import { FaultProxy } from '../support/fault-proxy.ts';
import { Influxd } from '../support/influxd.ts';
import { eventually } from '../support/ports.ts';

const DB = 'chambers';
const log = createLogger('test:alarm-influx');
let influxd: Influxd;
let proxy: FaultProxy;
let dir: string;
beforeAll(async () => {
  influxd = await Influxd.start();
  await influxd.query('', `CREATE DATABASE ${DB}`);
  proxy = await FaultProxy.start(influxd.url);
  dir = mkdtempSync(join(tmpdir(), 'octopus-alarm-influx-'));
});
afterAll(async () => {
  await proxy?.close();
  await influxd?.close();
  rmSync(dir, { recursive: true, force: true });
});

const dashboards = readdirSync(join(PROJECT_ROOT, 'dashboards/generated'))
  .sort()
  .map(
    (f) => JSON.parse(readFileSync(join(PROJECT_ROOT, 'dashboards/generated', f), 'utf8')) as Record<string, unknown>,
  );
const annotation = (dashboard: string) => {
  const q = dashboards
    .flatMap(queriesOf)
    .find((x) => x.dashboard.includes(dashboard) && x.where === 'annotation: Alarms');
  if (!q) throw new Error(`no Alarms annotation in ${dashboard}`);
  return q;
};

describe('alarm measurement on influxd 1.x through the collector InfluxDB path', () => {
  it("kept on disk while the database is away and across a sink restart, then returned by the dashboards' annotation query", async () => {
    const cfg = InfluxConfig.parse({
      url: proxy.url,
      api: 'v1',
      database: DB,
      flush_interval_ms: 50,
      retry_min_ms: 50,
      retry_max_ms: 200,
      timeout_ms: 5000,
    });
    const t0 = Date.now() - 60_000;
    const events = [
      alarmEvent(1, { ts: t0, message: 'CO2 "high", 912 ppm = 112 above setpoint\\band' }),
      alarmEvent(1, { ts: t0 + 10_000, event: 'acknowledged', by: 'api:alice' }),
      alarmEvent(1, { ts: t0 + 20_000, event: 'cleared' }),
      alarmEvent(2, {
        ts: t0 + 5_000,
        chamber: 'ch02',
        class: 'offline',
        tag: undefined,
        message: 'ch02 offline',
        value: undefined,
        setpoint: undefined,
        band: undefined,
      }),
      alarmEvent(3, {
        ts: t0 + 6_000,
        chamber: 'ch03',
        class: 'door_open',
        tag: 'door_open',
        severity: 'warning',
        message: 'door open for 15 min',
      }),
    ];

    // The database answers 503 to everything for now.
    for (let i = 0; i < 10_000; i++) proxy.script.push({ status: 503, body: '{"error":"restarting"}' });
    const source = new TestAlarmSource();
    const first = new InfluxSink(cfg, dir, undefined, log.child('sink1'));
    const writer = writeAlarmsToInflux(source, first, log);
    first.start();
    for (const e of events) source.emit(e);
    expect(writer.health()).toEqual({ written: 5, held: 0, dropped: 0 });
    await eventually(() => first.health().state === 'retrying' && first.health().retries >= 2, 'the sink retrying');
    expect(first.health()).toMatchObject({ buffered: 5, extra_lines: 5, written: 0 });
    writer.close();
    await first.close(200);

    // The database is back; a new sink (a collector restart) sends what the first left on disk.
    proxy.script.length = 0;
    const second = new InfluxSink(cfg, dir, undefined, log.child('sink2'));
    second.start();
    await eventually(() => second.health().written === 5, 'the alarm lines written after the restart', 30_000);
    await second.close();

    const ctx = (chamber: string | string[]): MacroContext => ({
      from: t0 - 60_000,
      to: Date.now() + 60_000,
      maxDataPoints: 1000,
      vars: { chamber, experiment: 'x', run: 'r', source: 'climate' },
    });
    const run = async (dashboard: string, chamber: string | string[]) => {
      const [series] = await influxd.query(DB, expandMacros(annotation(dashboard).text, ctx(chamber)));
      return (series ?? []).flatMap((s) => s.values.map((v) => Object.fromEntries(s.columns.map((c, i) => [c, v[i]]))));
    };

    // Chamber detail of ch01: its three events, in time order, text and tags as Grafana maps them.
    const ch01 = await run('Chamber detail', 'ch01');
    expect(ch01).toEqual([
      {
        time: t0,
        message: 'CO2 "high", 912 ppm = 112 above setpoint\\band',
        tags: 'ch01,deviation,critical,raised,air_temperature',
        severity: 'critical',
        event: 'raised',
      },
      {
        time: t0 + 10_000,
        message: events[1]!.alarm.message,
        tags: 'ch01,deviation,critical,acknowledged,air_temperature',
        severity: 'critical',
        event: 'acknowledged',
      },
      {
        time: t0 + 20_000,
        message: events[2]!.alarm.message,
        tags: 'ch01,deviation,critical,cleared,air_temperature',
        severity: 'critical',
        event: 'cleared',
      },
    ]);
    // Every dashboard's Alarms annotation maps the text to `message` and the tags to `tags`.
    const alarmAnnotations = dashboards
      .flatMap(
        (d) =>
          (
            d.annotations as
              { list?: Array<{ name: string; mappings?: Record<string, { value: string }> }> } | undefined
          )?.list ?? [],
      )
      .filter((a) => a.name === 'Alarms');
    expect(alarmAnnotations).toHaveLength(3);
    for (const a of alarmAnnotations)
      expect([a.mappings!.text!.value, a.mappings!.tags!.value]).toEqual(['message', 'tags']);

    // The experiment run and the facility overview, chambers ch01 and ch02 selected: ch03's door is not among them.
    for (const dashboard of ['Experiment run', 'Facility overview']) {
      const rows = await run(dashboard, ['ch01', 'ch02']);
      expect(rows.map((r) => r.tags).sort()).toEqual([
        'ch01,deviation,critical,acknowledged,air_temperature',
        'ch01,deviation,critical,cleared,air_temperature',
        'ch01,deviation,critical,raised,air_temperature',
        'ch02,offline,critical,raised',
      ]);
    }

    // The fields beyond the annotation: who acknowledged with the comment, the value against its setpoint and band.
    const [detail] = await influxd.query(
      DB,
      `SELECT "by", "comment", "value", "setpoint", "band", "id" FROM "alarm" WHERE "event" = 'acknowledged'`,
    );
    expect(detail![0]!.values).toEqual([
      [t0 + 10_000, 'api:alice', 'door was open, closed it', 23.1, 22, 0.5, events[1]!.alarm.id],
    ]);
    const [tagKeys] = await influxd.query(DB, 'SHOW TAG KEYS FROM "alarm"');
    expect(tagKeys![0]!.values.map((v) => v[0])).toEqual(['chamber', 'class', 'event', 'severity', 'tag']);
  });
});
