/**
 * Dashboard query times: every InfluxQL query of the generated dashboards, macros expanded
 * as Grafana does for a 30-day range (so `$__interval` = 1h on a 1000-point panel), run
 * on influxd 1.x holding a 30-day, 16-chamber dataset in the collector's schema and its
 * 1-minute rollup (`climate_1m`, backfilled with the continuous query's statement).
 * Panels with `$source` are timed on the rollup (what a 30-day view selects) and, for
 * comparison, on the raw samples. Goal: < 500 ms per panel. Baseline (same run): the
 * Temperature panel fetching raw points instead of grouping by `$__interval`.
 *
 * Dataset, honestly: the full facility at 1 Hz would be 16 chambers × 12 tags × 2.6 M s
 * = 498 M points, over half an hour of ingest into influxd on a 2-core machine (it takes
 * about 250 k points/s). So `air_temperature` is written at the real 1 Hz for every
 * chamber (41.5 M points) and the other eleven tags at 1/60 Hz (0.7 M each). Every panel
 * on another tag is timed a second time on `air_temperature` ("at 1 Hz"), which is what
 * that variable costs at the real rate, and the worse figure counts against the goal;
 * panels counting over all tags of a chamber (quality) see the reduced volume of the
 * other tags and are marked so. A repeated overview row queries one chamber per panel,
 * as Grafana does; the chamber detail shows one chamber; comparisons show all.
 *
 * Every query must return rows (a query timed on nothing proves nothing): the dataset ends
 * two hours after the bench starts, so panels over the last five minutes (`now() - 5m`)
 * find samples whenever they are timed; one chamber's soil-moisture sensor has been failing
 * for the last three hours and each chamber has an hour of uncertain light readings, so the
 * quality panels and annotations have something to show; each CO₂ outage raised an alarm
 * (the `alarm` measurement), for the Alarms annotations. A query with no rows fails the bench.
 *
 *   npm run bench -- dashboards            (OCTOPUS_BENCH_DAYS=30, OCTOPUS_BENCH_CHAMBERS=16)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MEASUREMENT, ROLLUP, rollupStatement } from '../dashboards/lib/influxql.ts';
import { expandMacros, intervalMs, type MacroContext } from '../dashboards/lib/macros.ts';
import { queriesOf, type FoundQuery } from '../dashboards/lib/queries.ts';
import {
  alarmLines,
  ALL_TAGS,
  chamberIds,
  deviationAlarm,
  encodeSamples,
  eventLines,
  samplesAt,
  type Episode,
  type Run,
  type Sample,
} from '../dashboards/lib/sample-data.ts';
import { PROJECT_ROOT } from '../src/config/profiles.ts';
import { Influxd } from '../test/support/influxd.ts';
import type { BenchSummary } from './modbus.ts';

const DB = 'chambers';
const GOAL_MS = 500;
const FULL_RATE = ['air_temperature'];

async function post(url: string, body: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${url}/write?db=${DB}&precision=ms`, { method: 'POST', body });
    if (res.status === 204) return;
    const text = await res.text();
    // influxd answers 500 "cache-max-memory-size exceeded" while it snapshots: wait, retry.
    if (attempt < 50 && (res.status >= 500 || /cache/.test(text))) {
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      continue;
    }
    throw new Error(`influxd /write: ${res.status} ${text}`);
  }
}

async function fill(
  influxd: Influxd,
  chambers: string[],
  from: number,
  to: number,
  runs: Run[],
  episodes: Episode[],
  log: (l: string) => void,
): Promise<number> {
  let points = 0;
  const inflight: Promise<void>[] = [];
  const send = async (body: string) => {
    inflight.push(post(influxd.url, body));
    if (inflight.length >= 2) await inflight.shift();
  };
  const HOUR = 3_600_000;
  const slow = ALL_TAGS.filter((t) => !FULL_RATE.includes(t));
  const t0 = performance.now();
  for (let h = from; h < to; h += HOUR) {
    let body = '';
    for (const [i, c] of chambers.entries()) {
      const samples: Sample[] = [];
      for (let ts = h; ts < Math.min(h + HOUR, to); ts += 1000) {
        samples.push(...samplesAt(i, c, ts, FULL_RATE, [], runs));
        if (ts % 60_000 === 0) samples.push(...samplesAt(i, c, ts, slow, episodes, runs));
      }
      body += encodeSamples(c, samples);
      points += samples.length;
    }
    await send(body);
    if ((h - from) % (24 * HOUR) === 0 && h > from)
      log(
        `  … ${((h - from) / (24 * HOUR)).toFixed(0)} days, ${(points / 1e6).toFixed(1)} M points, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
      );
  }
  await Promise.all(inflight);
  // Each CO₂ outage raised an alarm (raised, acknowledged, cleared): the Alarms annotations.
  await post(
    influxd.url,
    eventLines(runs) +
      alarmLines(
        episodes.filter((e) => e.tag === 'co2').flatMap((e) => deviationAlarm(e.chamber, e.tag, e.from, e.to)),
      ),
  );
  return points;
}

async function time(influxd: Influxd, q: string): Promise<{ ms: number; rows: number }> {
  let best = Infinity;
  let rows = 0;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const [series] = await influxd.query(DB, q);
    best = Math.min(best, performance.now() - t);
    rows = (series ?? []).reduce((n, s) => n + s.values.length, 0);
    if (best > 1000) break; // slow enough that noise does not matter
  }
  return { ms: best, rows };
}

export async function benchDashboards(): Promise<{ name: string; lines: string[]; summary: BenchSummary }> {
  const days = Number(process.env.OCTOPUS_BENCH_DAYS ?? 30);
  const chambers = chamberIds(Number(process.env.OCTOPUS_BENCH_CHAMBERS ?? 16));
  const lines: string[] = [];
  const log = (l: string) => {
    lines.push(l);
    console.log(l);
  };
  const to = Math.floor(Date.now() / 3_600_000) * 3_600_000 + 2 * 3_600_000;
  const from = to - days * 86_400_000;
  const at = (fraction: number) => from + Math.round(((to - from) * fraction) / 60_000) * 60_000;
  const runs: Run[] = [
    {
      experiment: 'drought-2026',
      run: 'r1',
      chambers: chambers.slice(0, Math.max(1, chambers.length / 2)),
      from: at(1 / 30),
      to: at(15 / 30),
    },
    { experiment: 'drought-2026', run: 'r2', chambers, from: at(16 / 30) },
  ];
  const influxd = await Influxd.start();
  try {
    await influxd.query('', `CREATE DATABASE ${DB}`);
    log(
      `dataset: ${days} days × ${chambers.length} chambers; ${FULL_RATE.join(', ')} at 1 Hz, ${ALL_TAGS.length - FULL_RATE.length} other tags at 1/60 Hz`,
    );
    const t0 = performance.now();
    // One hour of CO₂ timeouts per chamber, so the quality panels have something to count.
    const episodes: Episode[] = [
      ...chambers.map((c, i): Episode => ({
        chamber: c,
        tag: 'co2',
        q: 'bad',
        from: at((i + 1) / (chambers.length + 2)),
        to: at((i + 1) / (chambers.length + 2)) + 3_600_000,
        reason: 'timeout',
      })),
      ...chambers.map((c, i): Episode => ({
        chamber: c,
        tag: 'par',
        q: 'uncertain',
        from: at((i + 1.5) / (chambers.length + 2)),
        to: at((i + 1.5) / (chambers.length + 2)) + 3_600_000,
        reason: 'UncertainLastUsableValue',
      })),
      {
        chamber: chambers[0]!,
        tag: 'soil_moisture',
        q: 'bad',
        from: to - 3 * 3_600_000,
        to,
        reason: 'BadSensorFailure',
      },
    ];
    const points = await fill(influxd, chambers, from, to, runs, episodes, log);
    log(
      `dataset: ${points.toLocaleString('en')} points written in ${((performance.now() - t0) / 1000).toFixed(0)} s (full facility at 1 Hz would be ${(chambers.length * ALL_TAGS.length * days * 86400).toLocaleString('en')})`,
    );

    const t1 = performance.now();
    for (let d = from; d < to; d += 86_400_000)
      await influxd.query(DB, rollupStatement(`time >= ${d}ms AND time < ${d + 86_400_000}ms`));
    const [rolled] = await influxd.query(DB, `SELECT count("value") FROM "${ROLLUP}"`);
    log(
      `rollup ${ROLLUP}: ${Number(rolled![0]!.values[0]![1]).toLocaleString('en')} points, backfilled in ${((performance.now() - t1) / 1000).toFixed(0)} s`,
    );

    const ctx = (vars: Record<string, string | string[]>): MacroContext => ({
      from,
      to,
      maxDataPoints: 1000,
      vars: { chamber: chambers, experiment: 'drought-2026', run: 'r2', source: ROLLUP, ...vars },
    });
    log(`range ${days} d, $__interval = ${intervalMs(ctx({})) / 1000} s; best of 3 per query (1 when over a second)`);
    const dir = join(PROJECT_ROOT, 'dashboards/generated');
    const all: FoundQuery[] = readdirSync(dir)
      .sort()
      .flatMap((f) => queriesOf(JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>))
      .filter((q) => q.datasource === 'influxdb');
    let worst = 0;
    let worstName = '';
    /** The query's time on the dataset; for a tag written at 1/60 Hz, also on the 1 Hz tag. */
    const measure = async (text: string): Promise<{ ms: number; rows: number; note: string }> => {
      const r = await time(influxd, text);
      const tag = /"tag" = '(\w+)'/.exec(text)?.[1];
      if (!tag || FULL_RATE.includes(tag)) return { ...r, note: '' };
      const full = await time(influxd, text.replace(`"tag" = '${tag}'`, `"tag" = 'air_temperature'`));
      if (full.rows === 0) return { ...full, note: ' (no rows at 1 Hz)' };
      return { ms: Math.max(r.ms, full.ms), rows: r.rows, note: ` (at 1 Hz ${full.ms.toFixed(0)} ms)` };
    };
    let slowestRaw = 0;
    const empty: string[] = [];
    for (const q of all) {
      const perChamber =
        q.dashboard.includes('Chamber detail') || (q.dashboard.includes('Facility') && !q.where.startsWith('variable'));
      const c = perChamber ? ctx({ chamber: 'ch01' }) : ctx({});
      const r = await measure(expandMacros(q.text, c));
      let raw = '';
      if (q.text.includes('$source')) {
        const rr = await measure(expandMacros(q.text, { ...c, vars: { ...c.vars, source: MEASUREMENT } }));
        slowestRaw = Math.max(slowestRaw, rr.ms);
        raw = `; raw samples ${rr.ms.toFixed(0)} ms${rr.note}`;
      } else if (!q.where.startsWith('variable')) slowestRaw = Math.max(slowestRaw, r.ms);
      const scope =
        !/"tag" = '/.test(q.text) && q.text.includes('FROM "climate"') && !q.text.startsWith('SHOW')
          ? ' [several tags: 1/60 Hz volume for 11 of 12]'
          : '';
      const name = `${q.dashboard.replace('Octopus — ', '')} / ${q.where}`;
      if (r.rows === 0) {
        empty.push(`${name} ${q.refId}`);
        continue;
      }
      if (r.ms > worst && !q.where.startsWith('variable')) [worst, worstName] = [r.ms, name];
      log(
        `${name} ${q.refId}: ${r.ms.toFixed(0)} ms, ${r.rows} rows${r.note}${q.text.includes('$source') ? ' from the rollup' : ''}${raw}${scope}${r.ms < GOAL_MS ? '' : '  MISSED'}`,
      );
    }
    if (empty.length) throw new Error(`queries that returned no rows (not timed): ${empty.join('; ')}`);
    const temp = all.find(
      (q) => q.dashboard.includes('Chamber detail') && q.where === 'Temperature' && q.refId === 'A',
    )!;
    const grouped = await time(influxd, expandMacros(temp.text, ctx({ chamber: 'ch01', source: MEASUREMENT })));
    const rollupTemp = await time(influxd, expandMacros(temp.text, ctx({ chamber: 'ch01' })));
    const raw = await time(
      influxd,
      expandMacros(
        `SELECT "value" FROM "climate" WHERE "chamber" = '$chamber' AND "tag" = 'air_temperature' AND $timeFilter`,
        ctx({ chamber: 'ch01' }),
      ),
    );
    if (!(raw.rows > 0 && grouped.rows > 0 && rollupTemp.rows > 0))
      throw new Error(
        `baseline queries returned no rows (raw ${raw.rows}, grouped ${grouped.rows}, rollup ${rollupTemp.rows})`,
      );
    log(
      `baseline: Temperature panel (one chamber, ${days} d) fetching raw points: ${raw.ms.toFixed(0)} ms, ${raw.rows.toLocaleString('en')} rows; grouped by $__interval on raw samples: ${grouped.ms.toFixed(0)} ms; on the rollup: ${rollupTemp.ms.toFixed(0)} ms`,
    );
    const ok = worst < GOAL_MS;
    log(
      `slowest panel: ${worstName} ${worst.toFixed(0)} ms (goal < ${GOAL_MS} ms: ${ok ? 'ok' : 'MISSED'}); on raw samples only, the slowest would take ${slowestRaw.toFixed(0)} ms`,
    );
    return {
      name: 'dashboards',
      lines,
      summary: {
        figure: `slowest panel ${worst.toFixed(0)} ms`,
        baseline: `raw-point ${days} d panel ${raw.ms.toFixed(0)} ms`,
        ratio: `${(raw.ms / rollupTemp.ms).toFixed(0)}x`,
        goal: `< ${GOAL_MS} ms per panel`,
        ok,
      },
    };
  } finally {
    await influxd.close();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const r = await benchDashboards();
  process.exit(r.summary.ok ? 0 : 1);
}
