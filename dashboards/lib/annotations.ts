/**
 * Annotation queries shared by the dashboards. Alarm events come from the measurement
 * `alarm` (src/alarms/influx-lines.ts, docs/influxdb.md) that the collector writes for
 * every raised, acknowledged and cleared alarm; the annotation's text is the alarm's
 * message and its tags are the field `tags` (chamber, class, severity, event, tag), which
 * Grafana splits on commas.
 */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { ALARM_MEASUREMENT } from '../../src/alarms/influx-lines.ts';
import { INFLUX, influxql } from './influxql.ts';

export const ALARMS = ALARM_MEASUREMENT;

/** Which result columns Grafana makes the annotation's text and tags. */
export const fields = (map: Record<string, string>) =>
  Object.fromEntries(
    Object.entries(map).map(([k, col]) => [
      k,
      new dashboard.AnnotationEventFieldMappingBuilder().source(dashboard.AnnotationEventFieldSource.Field).value(col),
    ]),
  );

/** The alarm query of an annotation, for a chamber condition such as `"chamber" =~ /^$chamber$/`. */
export const alarmQuery = (chamber: string) =>
  `SELECT "message", "tags", "severity", "event" FROM "${ALARMS}" WHERE ${chamber} AND $timeFilter`;

/** Every alarm event (raised, acknowledged with its comment's author, cleared) of the selected chambers. */
export function alarmAnnotation(chamber: string) {
  return new dashboard.AnnotationQueryBuilder()
    .name('Alarms')
    .datasource(INFLUX)
    .enable(true)
    .iconColor('red')
    .target(influxql(alarmQuery(chamber), 'Alarms').table())
    .mappings(fields({ text: 'message', tags: 'tags' }));
}
