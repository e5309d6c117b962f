/**
 * Synthetic chamber data in the collector's schema, for the InfluxQL tests and the
 * benchmark: encoded by the collector's own line-protocol encoder, so what the
 * dashboards are tested on is exactly what `octopus collect` writes.
 *
 * Chamber i (0-based) holds its temperature at 20 + i °C (setpoint), humidity at 60 %,
 * CO₂ at 400 + 100·i µmol/mol, light on from 06:00 to 22:00 UTC; every value wobbles
 * around its setpoint by a known sine. Experiment events mark runs; alarm events (the
 * `alarm` measurement, encoded by the collector's alarm encoder) mark excursions.
 */
import { encodeAlarmLine } from '../../src/alarms/influx-lines.ts';
import type { AlarmEvent } from '../../src/alarms/model.ts';
import { encodeLines } from '../../src/collector/sinks/influx/line-protocol.ts';
import { EVENTS, MEASUREMENT } from './influxql.ts';

export const chamberIds = (n: number) => Array.from({ length: n }, (_, i) => `ch${String(i + 1).padStart(2, '0')}`);

export interface Sample {
  tag: string;
  ts: number;
  value: number | boolean | null;
  q: 'good' | 'uncertain' | 'bad';
  reason?: string;
}

export interface Episode {
  chamber: string;
  tag: string;
  q: 'uncertain' | 'bad';
  from: number;
  to: number;
  reason: string;
}

export interface Run {
  experiment: string;
  run: string;
  chambers: string[];
  from: number;
  to?: number;
}

export const SETPOINTS = (i: number) => ({
  air_temperature: 20 + i,
  relative_humidity: 60,
  co2: 400 + 100 * i,
  par: 800,
});

/** The samples of chamber `i` at time `ts` for the given tags. */
export function samplesAt(
  i: number,
  chamber: string,
  ts: number,
  tags: readonly string[],
  episodes: Episode[] = [],
  runs: Run[] = [],
): Sample[] {
  const sp = SETPOINTS(i);
  const hour = new Date(ts).getUTCHours();
  const light = hour >= 6 && hour < 22;
  const wobble = Math.sin(ts / 600_000 + i);
  const running = runs.some((r) => r.chambers.includes(chamber) && ts >= r.from && (r.to === undefined || ts < r.to));
  const value = (tag: string): number | boolean => {
    switch (tag) {
      case 'air_temperature':
        return sp.air_temperature + 0.2 * wobble;
      case 'air_temperature_setpoint':
        return sp.air_temperature;
      case 'relative_humidity':
        return sp.relative_humidity + 2 * wobble;
      case 'relative_humidity_setpoint':
        return sp.relative_humidity;
      case 'co2':
        return sp.co2 + 10 * wobble;
      case 'co2_setpoint':
        return sp.co2;
      case 'par':
        return light ? sp.par + 5 * wobble : 0;
      case 'par_setpoint':
        return light ? sp.par : 0;
      case 'soil_moisture':
        return 30 + wobble;
      case 'running':
        return running;
      case 'door_open':
        return false;
      case 'alarm_active':
        return false;
      default:
        return 0;
    }
  };
  return tags.map((tag) => {
    const e = episodes.find((x) => x.chamber === chamber && x.tag === tag && ts >= x.from && ts < x.to);
    if (e?.q === 'bad') return { tag, ts, value: null, q: 'bad', reason: e.reason };
    if (e) return { tag, ts, value: value(tag), q: 'uncertain', reason: e.reason };
    return { tag, ts, value: value(tag), q: 'good' };
  });
}

export function encodeSamples(chamber: string, samples: Sample[]): string {
  return encodeLines(MEASUREMENT, chamber, samples);
}

/** experiment_events lines: one `start` and (when stopped) one `stop` per run. */
export function eventLines(runs: Run[]): string {
  const esc = (s: string) => s.replace(/[ ,=]/g, '\\$&');
  return (
    runs
      .flatMap((r) => [
        `${EVENTS},event=start,experiment=${esc(r.experiment)},run=${esc(r.run)} message="run ${r.run} started on ${r.chambers.join(' ')}" ${r.from}`,
        ...(r.to === undefined
          ? []
          : [
              `${EVENTS},event=stop,experiment=${esc(r.experiment)},run=${esc(r.run)} message="run ${r.run} stopped" ${r.to}`,
            ]),
      ])
      .join('\n') + '\n'
  );
}

/** `alarm` lines, as the collector writes them for each alarm event. */
export function alarmLines(events: AlarmEvent[]): string {
  return events.map((e) => encodeAlarmLine(e)).join('');
}

/** A deviation alarm of `chamber`'s `tag` raised at `from`, acknowledged a minute later and cleared at `to`. */
export function deviationAlarm(chamber: string, tag: string, from: number, to: number): AlarmEvent[] {
  const alarm = {
    id: `${chamber}-deviation-${tag}-${from}`,
    key: `${chamber}/deviation/${tag}`,
    chamber,
    class: 'deviation' as const,
    tag,
    severity: 'warning' as const,
    message: `${tag} outside its band for 5 min`,
    since: from - 300_000,
    raised_at: from,
  };
  return [
    { event: 'raised', ts: from, by: 'octopus', alarm: { ...alarm, state: 'raised' } },
    {
      event: 'acknowledged',
      ts: from + 60_000,
      by: 'api:operator',
      alarm: {
        ...alarm,
        state: 'acknowledged',
        acknowledged_at: from + 60_000,
        acknowledged_by: 'api:operator',
        comment: 'looking',
      },
    },
    {
      event: 'cleared',
      ts: to,
      by: 'octopus',
      alarm: {
        ...alarm,
        state: 'cleared',
        acknowledged_at: from + 60_000,
        acknowledged_by: 'api:operator',
        comment: 'looking',
        cleared_at: to,
      },
    },
  ];
}

/** Posts line protocol to influxd 1.x's /write (precision ms). */
export async function writeLines(url: string, db: string, body: string): Promise<void> {
  const res = await fetch(`${url}/write?db=${encodeURIComponent(db)}&precision=ms`, { method: 'POST', body });
  if (res.status !== 204) throw new Error(`influxd /write: ${res.status} ${await res.text()}`);
}

export const ALL_TAGS = [
  'air_temperature',
  'air_temperature_setpoint',
  'relative_humidity',
  'relative_humidity_setpoint',
  'co2',
  'co2_setpoint',
  'par',
  'par_setpoint',
  'soil_moisture',
  'running',
  'door_open',
  'alarm_active',
] as const;
