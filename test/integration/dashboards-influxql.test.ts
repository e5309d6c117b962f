/**
 * Every InfluxQL query of the generated dashboards (panels, annotations, variables), with
 * Grafana's macros expanded as its InfluxDB datasource does, runs on a real influxd 1.x
 * filled with six hours of data in the collector's schema (encoded by the collector's
 * own line-protocol encoder), and returns what the panel needs: series that are not
 * empty, grouped the way the panel shows them, with values in the panel's unit.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { continuousQuery, MEASUREMENT, ROLLUP, rollupStatement } from '../../dashboards/lib/influxql.ts';
import { expandMacros, intervalMs, type MacroContext } from '../../dashboards/lib/macros.ts';
import { queriesOf, type FoundQuery } from '../../dashboards/lib/queries.ts';
import {
  alarmLines,
  ALL_TAGS,
  chamberIds,
  deviationAlarm,
  encodeSamples,
  eventLines,
  samplesAt,
  SETPOINTS,
  writeLines,
  type Episode,
  type Run,
} from '../../dashboards/lib/sample-data.ts';
import { CLIMATE } from '../../dashboards/lib/variables.ts';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { Influxd, type InfluxQlSeries } from '../support/influxd.ts';

const DB = 'chambers';
const HOUR = 3_600_000;
const now = Math.floor(Date.now() / 1000) * 1000;
const from = now - 6 * HOUR;
const CHAMBERS = chamberIds(3);
// ch02's CO₂ sensor times out for 20 minutes; ch01's light and ch02's humidity sensors
// are uncertain for 10; ch03's temperature sensor has failed for the last two minutes.
const EPISODES: Episode[] = [
  {
    chamber: 'ch02',
    tag: 'co2',
    q: 'bad',
    from: now - 3 * HOUR,
    to: now - 3 * HOUR + 20 * 60_000,
    reason: 'timeout after 1000 ms reading input 0..11 unit 1',
  },
  {
    chamber: 'ch01',
    tag: 'par',
    q: 'uncertain',
    from: now - 2 * HOUR,
    to: now - 2 * HOUR + 10 * 60_000,
    reason: 'UncertainLastUsableValue',
  },
  {
    chamber: 'ch02',
    tag: 'relative_humidity',
    q: 'uncertain',
    from: now - HOUR,
    to: now - HOUR + 10 * 60_000,
    reason: 'UncertainSensorNotAccurate',
  },
  {
    chamber: 'ch03',
    tag: 'air_temperature',
    q: 'bad',
    from: now - 2 * 60_000,
    to: now + 60_000,
    reason: 'BadSensorFailure',
  },
];
const RUNS: Run[] = [
  { experiment: 'drought-2026', run: 'r1', chambers: ['ch01', 'ch02'], from: now - 5 * HOUR, to: now - 3 * HOUR },
  { experiment: 'drought-2026', run: 'r2', chambers: ['ch01', 'ch02', 'ch03'], from: now - 2 * HOUR },
];
const STEP = 10_000; // one sample per tag every 10 s: 3 chambers × 12 tags × 2,160 = 78k points

const dashboards = readdirSync(join(PROJECT_ROOT, 'dashboards/generated'))
  .sort()
  .map(
    (f) => JSON.parse(readFileSync(join(PROJECT_ROOT, 'dashboards/generated', f), 'utf8')) as Record<string, unknown>,
  );
const influxQueries = dashboards.flatMap(queriesOf).filter((q) => q.datasource === 'influxdb');

let influxd: Influxd;
beforeAll(async () => {
  influxd = await Influxd.start();
  await influxd.query('', `CREATE DATABASE ${DB}`);
  let body = '';
  for (let ts = from; ts <= now; ts += STEP) {
    CHAMBERS.forEach((c, i) => (body += encodeSamples(c, samplesAt(i, c, ts, ALL_TAGS, EPISODES, RUNS))));
    if (body.length > 4_000_000) {
      await writeLines(influxd.url, DB, body);
      body = '';
    }
  }
  // ch02's CO₂ excursion raised an alarm (raised, acknowledged, cleared).
  await writeLines(
    influxd.url,
    DB,
    body + eventLines(RUNS) + alarmLines(deviationAlarm('ch02', 'co2', now - 3 * HOUR, now - 3 * HOUR + 20 * 60_000)),
  );
  // The 1-minute rollup, as its continuous query (or 2.x task) keeps it.
  await influxd.query(DB, rollupStatement(`time >= ${from - 60_000}ms`));
});
afterAll(async () => influxd?.close());

/** The selection a user makes: all chambers, the running experiment's latest run. */
const ctx = (vars: Record<string, string | string[]> = {}): MacroContext => ({
  from,
  to: now,
  maxDataPoints: 1000,
  vars: { chamber: CHAMBERS, experiment: 'drought-2026', run: 'r2', source: MEASUREMENT, ...vars },
});

async function run(q: FoundQuery, c = ctx()): Promise<InfluxQlSeries[]> {
  const [series] = await influxd.query(DB, expandMacros(q.text, c));
  return series ?? [];
}

const find = (dashboard: string, where: string, refId = 'A') => {
  const q = influxQueries.find((x) => x.dashboard.includes(dashboard) && x.where === where && x.refId === refId);
  if (!q) throw new Error(`no query "${where}" ${refId} in ${dashboard}`);
  return q;
};
const numbers = (s: InfluxQlSeries, col = 1) =>
  s.values.map((v) => v[col]).filter((v): v is number => typeof v === 'number');
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('dashboard InfluxQL on influxd 1.x (collector schema)', () => {
  it('every panel, annotation and variable query runs and returns data, from the raw samples and from the rollup', async () => {
    expect(influxQueries.length).toBeGreaterThan(30);
    expect(influxQueries.filter((q) => q.text.includes('$source')).length).toBeGreaterThan(10);
    const empty: string[] = [];
    for (const source of [MEASUREMENT, ROLLUP]) {
      for (const q of influxQueries) {
        if (source === ROLLUP && !q.text.includes('$source')) continue;
        // The chamber detail shows one chamber.
        const c = q.dashboard.includes('Chamber detail') ? ctx({ chamber: 'ch02', source }) : ctx({ source });
        const series = await run(q, c);
        if (series.length === 0 || series.every((s) => s.values.length === 0))
          empty.push(`${source}: ${q.dashboard} / ${q.where} ${q.refId}: ${q.text}`);
      }
    }
    expect(empty).toEqual([]);
  });

  it('the continuous query documented for InfluxDB 1.x is accepted by influxd', async () => {
    await influxd.query(DB, continuousQuery(DB));
    const [cqs] = await influxd.query(DB, 'SHOW CONTINUOUS QUERIES');
    const [name, stored] = cqs!.find((s) => s.name === DB)!.values[0] as [string, string];
    expect(name).toBe(ROLLUP);
    expect(stored).toMatch(
      /RESAMPLE FOR 15m BEGIN SELECT mean\(value\) AS value INTO .*climate_1m FROM .*climate GROUP BY time\(1m\), \* END/,
    );
  });

  it('the 1-minute rollup keeps the chambers, tags and means of the raw samples', async () => {
    const q = find('Experiment run', 'CO₂ by chamber');
    // A 5-minute interval (a 100-point panel): whole minutes, so the means of minute means
    // (each of six 10 s samples) are the means of the samples. The range starts on a
    // 5-minute boundary (as the rollup's minutes do), whatever the time the test runs: a
    // start inside a minute would leave that minute's rollup point before the range and,
    // one start in five, empty the first bucket of the rollup only.
    const start = Math.ceil(from / 300_000) * 300_000;
    const at5m = (source: string) => ({ ...ctx({ source }), from: start, maxDataPoints: 100 });
    expect(intervalMs(at5m(ROLLUP))).toBe(300_000);
    const [raw, rollup] = [await run(q, at5m(MEASUREMENT)), await run(q, at5m(ROLLUP))];
    expect(rollup.map((s) => s.tags?.chamber)).toEqual(CHAMBERS);
    rollup.forEach((s, i) => {
      const [a, b] = [numbers(raw[i]!), numbers(s)];
      expect(b.length).toBe(a.length);
      // The range's last bucket holds a part minute; in the others a mean of minute means is
      // the mean of the samples, but for minutes thinned by bad samples (which then weigh as
      // whole minutes): equal within 0.1 %.
      expect(b.length).toBeGreaterThan(60);
      expect(raw[i]!.values.map((v) => v[0])).toEqual(s.values.map((v) => v[0]));
      for (let k = 0; k < b.length - 1; k++) expect(Math.abs(b[k]! - a[k]!) / a[k]!).toBeLessThan(1e-3);
    });
  });

  it('time series are grouped by $__interval: a 6-hour range gives ≈ 1000 points at 20 s', async () => {
    expect(intervalMs(ctx())).toBe(20_000);
    const [temp] = await run(find('Chamber detail', 'Temperature'), ctx({ chamber: 'ch01' }));
    expect(temp!.columns).toEqual(['time', 'mean', 'min', 'max']);
    const [rolled] = await run(find('Chamber detail', 'Temperature'), {
      ...ctx({ chamber: 'ch01', source: ROLLUP }),
      from: now - 30 * 86_400_000,
    });
    expect(rolled!.values.length).toBeLessThanOrEqual(721); // 30 days → 1 h buckets
    expect(temp!.values.length).toBeGreaterThanOrEqual(6 * 180);
    expect(temp!.values.length).toBeLessThanOrEqual(6 * 180 + 2);
  });

  it('climate panels are in the unit of the panel: °C around the setpoint, ppm, %', async () => {
    const units = Object.fromEntries(CLIMATE.map((v) => [v.title, v]));
    for (const title of ['Temperature', 'Humidity', 'CO₂']) {
      const q = find('Chamber detail', title);
      expect(q.unit).toBe(units[title]!.grafana);
      const [s] = await run(q, ctx({ chamber: 'ch02' }));
      const [sp] = await run(find('Chamber detail', title, 'B'), ctx({ chamber: 'ch02' }));
      const target = SETPOINTS(1)[units[title]!.tag as 'air_temperature' | 'relative_humidity' | 'co2'];
      expect(mean(numbers(sp!))).toBeCloseTo(target, 6);
      expect(Math.abs(mean(numbers(s!)) - target)).toBeLessThan(target * 0.05);
    }
  });

  it('treatment comparison: one series per chamber, each at its own CO₂ level', async () => {
    const series = await run(find('Experiment run', 'CO₂ by chamber'));
    expect(series.map((s) => s.tags?.chamber)).toEqual(CHAMBERS);
    series.forEach((s, i) => expect(mean(numbers(s))).toBeCloseTo(400 + 100 * i, -1));
  });

  it('the facility overview gives value and setpoint on the same buckets, so the deviation is computable', async () => {
    const c = ctx({ chamber: 'ch03' });
    const [value] = await run(find('Facility overview', 'Temperature', 'A'), c);
    const [setpoint] = await run(find('Facility overview', 'Temperature', 'B'), c);
    expect(value!.values.map((v) => v[0])).toEqual(setpoint!.values.map((v) => v[0]));
    expect(setpoint!.values.at(-1)![1]).toBe(22);
  });

  it('bad and uncertain periods are found: annotations per tag, the stale sensor in the overview', async () => {
    const bad = await run(find('Chamber detail', 'annotation: bad samples', 'Anno'), ctx({ chamber: 'ch02' }));
    expect(bad.map((s) => s.tags?.tag)).toEqual(['co2']);
    const times = bad[0]!.values.map((v) => v[0] as number);
    expect(Math.min(...times)).toBeGreaterThanOrEqual(EPISODES[0]!.from - 20_000);
    expect(Math.max(...times)).toBeLessThan(EPISODES[0]!.to);
    expect(bad[0]!.values[0]![2]).toMatch(/timeout/);
    const uncertain = await run(
      find('Chamber detail', 'annotation: uncertain samples', 'Anno'),
      ctx({ chamber: 'ch01' }),
    );
    expect(uncertain.map((s) => s.tags?.tag)).toEqual(['par']);
    const stale = await run(find('Facility overview', 'Stale or bad sensors (5 m)'), ctx({ chamber: 'ch03' }));
    expect(stale.map((s) => s.tags?.tag)).toEqual(['air_temperature']);
    expect(numbers(stale[0]!)[0]).toBeGreaterThan(0);
  });

  it('the experiment run: its events (whatever the range), run state per chamber, run annotations', async () => {
    const [events] = await run(find('Experiment run', 'Run events'), { ...ctx({ run: 'r1' }), from: now - 60_000 });
    expect(events!.values.map((v) => v[1])).toEqual(['start', 'stop']);
    expect(events!.values.map((v) => v[0])).toEqual([RUNS[0]!.from, RUNS[0]!.to]);
    const state = await run(find('Experiment run', 'Run state'));
    expect(state.map((s) => s.tags?.chamber)).toEqual(CHAMBERS);
    expect(numbers(state[2]!).at(-1)).toBe(1);
    const anno = await run(find('Experiment run', 'annotation: Run events', 'Anno'), ctx({ run: 'r2' }));
    expect(anno[0]!.values).toHaveLength(1);
    const runs = await run(find('Experiment run', 'variable: run', ''));
    expect(runs[0]!.values.map((v) => v[1])).toEqual(['r1', 'r2']);
  });

  it('state panels read 1/0 (door closed, no alarm, running during the run)', async () => {
    const q = influxQueries.filter(
      (x) => x.dashboard.includes('Facility overview') && ['Run state', 'Door', 'Alarm'].includes(x.where),
    );
    expect(q).toHaveLength(3);
    const got = await Promise.all(q.map(async (x) => numbers((await run(x, ctx({ chamber: 'ch01' })))[0]!)[0]));
    expect(got).toEqual([1, 0, 0]);
  });
});
