/**
 * Alarm events as InfluxDB line protocol: measurement `alarm` (docs/influxdb.md), one
 * line per event, in the database of `climate`, read by the dashboards' "Alarms"
 * annotation query (docs/grafana.md).
 *
 *     alarm,chamber=ch01,class=deviation,event=raised,severity=critical,tag=air_temperature band=0.5,by="octopus",id="…",key="…",message="…",setpoint=22,since=1764071400000,tags="ch01,deviation,critical,raised,air_temperature",units="degree_Celsius",value=23.1 1764072000000
 *
 * - tags (sorted): `chamber`, `class`, `event` (raised, acknowledged, cleared; the alarm's
 *   state after the event), `severity`, `tag` (absent for offline alarms);
 * - fields (sorted): `band`, `setpoint`, `value` (floats, deviation alarms, when finite),
 *   `by`, `comment` (acknowledged), `id` (the occurrence), `key` (the condition),
 *   `message`, `since` (epoch ms the condition began, float), `tags` (the annotation tags
 *   Grafana shows, comma-separated: InfluxQL cannot concatenate columns), `units`;
 * - timestamp: the event's `ts` in ms.
 *
 * Escaping is the collector's (line-protocol.ts), so a hostile chamber, tag or message
 * cannot break the line.
 */
import { escapeMeasurement, escapeTag, quoteString } from '../collector/sinks/influx/line-protocol.ts';
import type { AlarmEvent } from './model.ts';

export const ALARM_MEASUREMENT = 'alarm';

/** The annotation tags of an event: chamber, class, severity, event and the tag concerned. */
export function annotationTags(e: AlarmEvent): string {
  const a = e.alarm;
  // A comma inside one of them would split it in Grafana: written as a space.
  return [a.chamber, a.class, a.severity, e.event, ...(a.tag ? [a.tag] : [])]
    .map((s) => s.replace(/,/g, ' '))
    .join(',');
}

/** One line (ending with `\n`) for an alarm event. */
export function encodeAlarmLine(e: AlarmEvent, measurement = ALARM_MEASUREMENT): string {
  const a = e.alarm;
  const tags = `chamber=${escapeTag(a.chamber)},class=${escapeTag(a.class)},event=${escapeTag(e.event)},severity=${escapeTag(a.severity)}${a.tag ? `,tag=${escapeTag(a.tag)}` : ''}`;
  const num = (k: string, v: number | undefined) => (v !== undefined && Number.isFinite(v) ? [`${k}=${v}`] : []);
  const str = (k: string, v: string | undefined) => (v !== undefined ? [`${k}=${quoteString(v)}`] : []);
  const fields = [
    ...num('band', a.band),
    ...str('by', e.by),
    ...str('comment', e.event === 'acknowledged' ? a.comment : undefined),
    ...str('id', a.id),
    ...str('key', a.key),
    ...str('message', a.message),
    ...num('setpoint', a.setpoint),
    ...num('since', a.since),
    ...str('tags', annotationTags(e)),
    ...str('units', a.units),
    ...num('value', a.value),
  ].join(',');
  return `${escapeMeasurement(measurement)},${tags} ${fields} ${Math.round(e.ts)}\n`;
}
