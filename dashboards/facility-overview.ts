/**
 * Facility overview: one row per chamber (a row repeated over `$chamber`) with the current
 * climate against its setpoints, the chamber's state, data freshness and driver health.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import { alarmAnnotation } from './lib/annotations.ts';
import { base, chamberVariable } from './lib/common.ts';
import { INFLUX, influxql, lit, MEASUREMENT, PROMETHEUS } from './lib/influxql.ts';
import { deviationThresholds, onOff, stat, thresholds } from './lib/panels.ts';
import { CLIMATE, STATES } from './lib/variables.ts';

const CHAMBER = `"chamber" =~ /^$chamber$/`;

/** Value and setpoint at the panel's resolution; fill(previous) lines both up on the same buckets. */
const stepped = (tag: string) =>
  `SELECT last("value") FROM "${MEASUREMENT}" WHERE ${CHAMBER} AND "tag" = ${lit(tag)} AND $timeFilter GROUP BY time($__interval) fill(previous)`;

function climateStat(v: (typeof CLIMATE)[number]) {
  const p = stat(v.title)
    .datasource(INFLUX)
    .unit(v.grafana)
    .decimals(1)
    .height(4)
    .span(3)
    .textMode(common.BigValueTextMode.ValueAndName)
    .thresholds(thresholds([null, 'blue']))
    .withTarget(influxql(stepped(v.tag), 'A').alias('value'));
  if (!v.setpoint || v.tolerance === undefined) return p;
  // Grafana joins the two series on time and computes the deviation, which carries the
  // thresholds: green within the tolerance, orange within twice, red beyond.
  return p
    .withTarget(influxql(stepped(v.setpoint), 'B').alias('setpoint'))
    .withTransformation({ id: 'joinByField', options: { byField: 'Time', mode: 'outer' } })
    .withTransformation({
      id: 'calculateField',
      options: {
        mode: 'binary',
        binary: { left: 'value', operator: '-', right: 'setpoint' },
        alias: 'deviation',
        replaceFields: false,
      },
    })
    .overrideByName('deviation', [{ id: 'thresholds', value: deviationThresholds(v.tolerance).build() }]);
}

function stateStat(s: (typeof STATES)[number]) {
  return stat(s.title)
    .datasource(INFLUX)
    .height(4)
    .span(2)
    .mappings(onOff(s.on, s.off, s.onColor, s.offColor))
    .withTarget(
      influxql(
        `SELECT last("value") FROM "${MEASUREMENT}" WHERE ${CHAMBER} AND "tag" = ${lit(s.tag)} AND $timeFilter`,
        'A',
      ),
    );
}

export function facilityOverview(): dashboard.DashboardBuilder {
  const d = base('octopus-facility', 'Octopus — Facility overview', ['overview'], 'now-1h')
    .description('Every chamber at a glance: climate against setpoints, state, data freshness and health.')
    .withVariable(chamberVariable(true))
    .annotation(alarmAnnotation(CHAMBER));

  // Gateway-wide health first, then one repeated row per chamber.
  d.withRow(new dashboard.RowBuilder('Gateway'))
    .withPanel(
      stat('Gateway')
        .datasource(PROMETHEUS)
        .height(3)
        .span(4)
        .mappings(onOff('ok', 'degraded', 'green', 'red'))
        .withTarget(
          new prometheus.DataqueryBuilder().datasource(PROMETHEUS).expr('min(octopus_up)').instant().refId('A'),
        ),
    )
    .withPanel(
      stat('MQTT broker')
        .datasource(PROMETHEUS)
        .height(3)
        .span(4)
        .mappings(onOff('connected', 'disconnected', 'green', 'red'))
        .withTarget(
          new prometheus.DataqueryBuilder()
            .datasource(PROMETHEUS)
            .expr('min(octopus_mqtt_connected)')
            .instant()
            .refId('A'),
        ),
    )
    .withPanel(
      stat('Samples stuck in spool')
        .datasource(PROMETHEUS)
        .height(3)
        .span(4)
        .unit('short')
        .thresholds(thresholds([null, 'green'], [10000, 'orange'], [1000000, 'red']))
        .withTarget(
          new prometheus.DataqueryBuilder()
            .datasource(PROMETHEUS)
            .expr('sum(octopus_spool_samples)')
            .instant()
            .refId('A'),
        ),
    )
    .withPanel(
      stat('InfluxDB buffer')
        .datasource(PROMETHEUS)
        .height(3)
        .span(4)
        .unit('short')
        .thresholds(thresholds([null, 'green'], [10000, 'orange'], [1000000, 'red']))
        .withTarget(
          new prometheus.DataqueryBuilder()
            .datasource(PROMETHEUS)
            .expr('sum(octopus_influx_buffered)')
            .instant()
            .refId('A'),
        ),
    )
    .withPanel(
      stat('Bad samples (5 m)')
        .datasource(INFLUX)
        .height(3)
        .span(8)
        .unit('short')
        .thresholds(thresholds([null, 'green'], [1, 'red']))
        .withTarget(
          influxql(`SELECT count("reason") FROM "${MEASUREMENT}" WHERE "q" = 'bad' AND time > now() - 5m`, 'A'),
        ),
    );

  d.withRow(new dashboard.RowBuilder('Chamber $chamber').repeat('chamber'));
  for (const v of CLIMATE.filter((c) => c.setpoint)) d.withPanel(climateStat(v));
  for (const s of STATES) d.withPanel(stateStat(s));
  d.withPanel(
    stat('Data freshness')
      .description(
        'Seconds since the newest sample of the chamber (driver source time). Red past a minute: a stale sensor or a dead link.',
      )
      .datasource(PROMETHEUS)
      .unit('s')
      .decimals(0)
      .height(4)
      .span(3)
      .thresholds(thresholds([null, 'green'], [15, 'orange'], [60, 'red']))
      .withTarget(
        new prometheus.DataqueryBuilder()
          .datasource(PROMETHEUS)
          .expr('time() - max by (chamber) (octopus_driver_last_sample_timestamp_seconds{chamber=~"$chamber"})')
          .instant()
          .legendFormat('{{chamber}}')
          .refId('A'),
      ),
  );
  d.withPanel(
    stat('Driver')
      .datasource(PROMETHEUS)
      .height(4)
      .span(3)
      .mappings(onOff('online', 'offline', 'green', 'red'))
      .withTarget(
        new prometheus.DataqueryBuilder()
          .datasource(PROMETHEUS)
          .expr('min by (chamber) (octopus_driver_up{chamber=~"$chamber"})')
          .instant()
          .legendFormat('{{chamber}}')
          .refId('A'),
      ),
  );
  d.withPanel(
    stat('Stale or bad sensors (5 m)')
      .description(
        'Samples of bad quality per tag over the last five minutes: a failing sensor reports bad samples, never a made-up value.',
      )
      .datasource(INFLUX)
      .unit('short')
      .height(4)
      .span(6)
      .textMode(common.BigValueTextMode.ValueAndName)
      .thresholds(thresholds([null, 'green'], [1, 'red']))
      .withTarget(
        influxql(
          `SELECT count("reason") FROM "${MEASUREMENT}" WHERE ${CHAMBER} AND "q" = 'bad' AND time > now() - 5m GROUP BY "tag"`,
          'A',
        ).alias('$tag_tag'),
      ),
  );
  return d;
}
