/**
 * The dashboards as code: the committed JSON in dashboards/generated/ is exactly what
 * `npm run dashboards` writes today, each dashboard has what Grafana needs (unique uid,
 * provisioned datasources, refresh ≥ 5 s, $__interval grouping, known unit ids), the
 * units match the device profiles, and every PromQL metric exists in our /metrics.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { renderDashboards } from '../../dashboards/index.ts';
import { queriesOf } from '../../dashboards/lib/queries.ts';
import { CLIMATE } from '../../dashboards/lib/variables.ts';
import { createMetrics } from '../../src/api/metrics.ts';
import type { HealthReport } from '../../src/core/health.ts';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';

const GENERATED = join(PROJECT_ROOT, 'dashboards/generated');
const rendered = renderDashboards();
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const dashboards = [...rendered.values()].map((t) => JSON.parse(t) as Json);
const panelsOf = (d: Json): Json[] => (d.panels as Json[]).filter((p) => p.type !== 'row');
const queries = dashboards.flatMap(queriesOf);

describe('generated dashboards', () => {
  it('dashboards/generated/ holds exactly what `npm run dashboards` writes (run it and commit when this fails)', () => {
    expect(
      readdirSync(GENERATED)
        .filter((f) => f.endsWith('.json'))
        .sort(),
    ).toEqual([...rendered.keys()].sort());
    for (const [file, json] of rendered) expect(readFileSync(join(GENERATED, file), 'utf8'), file).toBe(json);
  });

  it('generating twice gives the same bytes (no timestamps, no random ids)', () => {
    expect([...renderDashboards()]).toEqual([...rendered]);
  });

  it('there are the four dashboards, with unique uids and titles', () => {
    expect([...rendered.keys()].sort()).toEqual([
      'chamber-detail.json',
      'experiment-run.json',
      'facility-overview.json',
      'gateway-operations.json',
    ]);
    expect(new Set(dashboards.map((d) => d.uid)).size).toBe(4);
    expect(new Set(dashboards.map((d) => d.title)).size).toBe(4);
  });

  it('every panel queries a provisioned datasource and has at least one query', () => {
    const provisioned = YAML.parse(
      readFileSync(join(PROJECT_ROOT, 'dashboards/provisioning/datasources/octopus.yaml'), 'utf8'),
    ) as { datasources: Array<{ uid: string; type: string }> };
    const known = new Map(provisioned.datasources.map((d) => [d.uid, d.type]));
    for (const d of dashboards) {
      for (const p of panelsOf(d)) {
        expect(p.targets?.length, `${d.title} / ${p.title}`).toBeGreaterThan(0);
        expect(known.get(p.datasource.uid), `${d.title} / ${p.title}`).toBe(p.datasource.type);
        for (const t of p.targets)
          expect(known.get(t.datasource.uid), `${d.title} / ${p.title} ${t.refId}`).toBe(t.datasource.type);
      }
      for (const v of d.templating.list) if (v.datasource) expect(known.get(v.datasource.uid)).toBe(v.datasource.type);
      for (const a of d.annotations?.list ?? []) expect(known.get(a.datasource.uid)).toBe(a.datasource.type);
    }
  });

  it('refresh is at least 5 s, in the dashboard and in every choice offered', () => {
    const seconds = (s: string) => Number(s.slice(0, -1)) * { s: 1, m: 60, h: 3600, d: 86400 }[s.at(-1) as 's']!;
    for (const d of dashboards) {
      expect(seconds(d.refresh), d.title).toBeGreaterThanOrEqual(5);
      for (const r of d.timepicker.refresh_intervals) expect(seconds(r), `${d.title} ${r}`).toBeGreaterThanOrEqual(5);
    }
  });

  it('every InfluxQL query over the time range is grouped by $__interval or aggregates the range to one row', () => {
    for (const q of queries.filter((x) => x.datasource === 'influxdb' && x.text.includes('$timeFilter'))) {
      const label = `${q.dashboard} / ${q.where}: ${q.text}`;
      if (/^SELECT "/.test(q.text)) {
        expect(q.text, label).toMatch(/FROM "(experiment_events|alarm)"/); // a handful of run or alarm events, raw
        continue;
      }
      expect(q.text, label).toMatch(/^SELECT (mean|min|max|last|count)\(/);
      const byInterval = q.text.includes('GROUP BY time($__interval)');
      const oneRow = !/GROUP BY time/.test(q.text) && (q.panelType === 'stat' || q.panelType === 'table');
      expect(byInterval || oneRow, label).toBe(true);
    }
  });

  it('time series and state panels never fetch raw points', () => {
    for (const q of queries.filter(
      (x) => ['timeseries', 'state-timeline'].includes(x.panelType) && x.datasource === 'influxdb',
    )) {
      expect(q.text, `${q.dashboard} / ${q.where}`).toContain('GROUP BY time($__interval)');
    }
  });

  it('every unit is a Grafana unit id (or a custom suffix)', () => {
    const known = new Set(
      Object.values(units as Record<string, unknown>).filter((v): v is string => typeof v === 'string'),
    );
    for (const d of dashboards) {
      for (const p of panelsOf(d)) {
        const unit = p.fieldConfig?.defaults?.unit as string | undefined;
        if (unit === undefined) continue;
        expect(known.has(unit) || unit.startsWith('suffix:'), `${d.title} / ${p.title}: ${unit}`).toBe(true);
      }
    }
  });

  it('the units shown are the units of the device profiles (drivers/*/*.yaml)', () => {
    const profileUnits = new Map<string, Set<string>>();
    for (const kind of ['modbus', 'opcua']) {
      for (const f of readdirSync(join(PROJECT_ROOT, 'drivers', kind)).filter((x) => x.endsWith('.yaml'))) {
        const doc = YAML.parse(readFileSync(join(PROJECT_ROOT, 'drivers', kind, f), 'utf8')) as {
          tags: Array<{ name: string; unit?: string }>;
        };
        for (const t of doc.tags)
          if (t.unit) profileUnits.set(t.name, (profileUnits.get(t.name) ?? new Set()).add(t.unit));
      }
    }
    for (const v of CLIMATE) {
      expect([...(profileUnits.get(v.tag) ?? [])], v.tag).toEqual([v.udunits]);
      if (v.setpoint) expect([...(profileUnits.get(v.setpoint) ?? [])], v.setpoint).toEqual([v.udunits]);
    }
    // …and each panel about a variable carries its unit.
    for (const q of queries.filter(
      (x) => x.datasource === 'influxdb' && x.panelType !== 'annotation' && x.panelType !== 'variable',
    )) {
      const v = CLIMATE.find((c) => q.text.includes(`"tag" = '${c.tag}'`));
      if (v) expect(q.unit, `${q.dashboard} / ${q.where}`).toBe(v.grafana);
    }
  });

  it('the chamber detail has every climate variable with its setpoint and min/max/mean', () => {
    const d = dashboards.find((x) => x.uid === 'octopus-chamber')!;
    expect(d.templating.list.map((v: Json) => v.name)).toEqual(['chamber', 'source']);
    for (const v of CLIMATE) {
      const p = panelsOf(d).find((x) => x.title === v.title)!;
      expect(p.targets[0].query).toMatch(/mean\("value"\) AS "mean", min\("value"\) AS "min", max\("value"\) AS "max"/);
      if (v.setpoint) expect(p.targets[1].query).toContain(`'${v.setpoint}'`);
      expect(p.options.legend.calcs).toEqual(['mean', 'min', 'max', 'lastNotNull']);
    }
    expect(d.annotations.list.map((a: Json) => a.name)).toEqual(['bad samples', 'uncertain samples', 'Alarms']);
  });

  it('the facility overview repeats one row per chamber; the experiment run has $experiment and $run', () => {
    const overview = dashboards.find((x) => x.uid === 'octopus-facility')!;
    expect((overview.panels as Json[]).filter((p) => p.type === 'row' && p.repeat === 'chamber')).toHaveLength(1);
    const run = dashboards.find((x) => x.uid === 'octopus-experiment')!;
    expect(run.templating.list.map((v: Json) => v.name)).toEqual(['experiment', 'run', 'chamber', 'source']);
  });

  it('long-range panels can read the 1-minute rollup: `$source` is the raw measurement or climate_1m', () => {
    for (const d of dashboards.filter((x) => ['octopus-chamber', 'octopus-experiment'].includes(x.uid))) {
      const source = d.templating.list.find((v: Json) => v.name === 'source');
      expect(source.options.map((o: Json) => o.value)).toEqual(['climate', 'climate_1m']);
      const climatePanels = queries.filter(
        (q) => q.dashboard === d.title && /"tag" = '(air_temperature|co2|running)'/.test(q.text) && q.refId === 'A',
      );
      for (const q of climatePanels) expect(q.text, q.where).toContain('FROM "$source"');
    }
    // The live overview reads the raw samples: the rollup lags by up to a minute.
    expect(queries.filter((q) => q.dashboard.includes('Facility') && q.text.includes('$source'))).toEqual([]);
  });

  it('every PromQL expression uses metrics that the gateway and the collector export', async () => {
    const health: HealthReport = {
      status: 'ok',
      gateway: 'gw',
      version: '0',
      uptime_s: 1,
      problems: [],
      drivers: [
        {
          chamber: 'ch01',
          driver: 'modbus',
          endpoint: 'tcp://x:502',
          state: 'online',
          samples: 1,
          badSamples: 0,
          reconnects: 0,
          lastSampleTs: 1,
          requestsPerCycle: 1,
        },
      ],
      broker: { url: 'mqtt://x', embedded: false, connected: true, reconnects: 0 },
      spool: { messages: 0, bytes: 0, samples: 0, dropped_samples: 0 },
      published: { messages: 0, samples: 0 },
      sinks: {},
    };
    const exported = new Set((await createMetrics(() => health).getMetricsAsJSON()).map((m) => m.name));
    // Metrics registered outside metrics.ts (the InfluxDB sink's write-latency histogram).
    const sink = readFileSync(join(PROJECT_ROOT, 'src/collector/sinks/influx/sink.ts'), 'utf8');
    for (const m of sink.matchAll(/name: '(octopus_\w+)'/g))
      for (const s of ['_bucket', '_sum', '_count']) exported.add(m[1]! + s);
    expect(exported).toContain('octopus_influx_write_seconds_bucket');
    const promql = queries.filter((q) => q.datasource === 'prometheus');
    expect(promql.length).toBeGreaterThan(15);
    const used = new Set(promql.flatMap((q) => q.text.match(/\boctopus_\w+/g) ?? []));
    expect(used.size).toBeGreaterThan(15);
    expect([...used].filter((m) => !exported.has(m))).toEqual([]);
  });
});
