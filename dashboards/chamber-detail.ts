/**
 * Chamber detail (`$chamber`): every climate variable with its setpoint and min/max/mean
 * at the panel's resolution, the chamber's states, and its sample quality. Bad and
 * uncertain periods and the chamber's alarm events are annotations on every panel.
 */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as common from '@grafana/grafana-foundation-sdk/common';
import { alarmAnnotation, fields } from './lib/annotations.ts';
import { base, chamberVariable, sourceVariable } from './lib/common.ts';
import { INFLUX, influxql, lit, MEASUREMENT } from './lib/influxql.ts';
import { onOff, stateTimeline, thresholds, timeseries } from './lib/panels.ts';
import { CLIMATE, STATES } from './lib/variables.ts';

const CHAMBER = `"chamber" = '$chamber'`;
const where = (tag: string) => `FROM "$source" WHERE ${CHAMBER} AND "tag" = ${lit(tag)} AND $timeFilter`;

/** Periods with samples of a given quality, one annotation per interval and tag. */
function qualityAnnotation(q: 'bad' | 'uncertain', color: string) {
  return new dashboard.AnnotationQueryBuilder()
    .name(`${q} samples`)
    .datasource(INFLUX)
    .enable(true)
    .iconColor(color)
    .target(
      influxql(
        `SELECT count("reason") AS "samples", last("reason") AS "reason" FROM "${MEASUREMENT}` +
          `" WHERE ${CHAMBER} AND "q" = ${lit(q)} AND $timeFilter GROUP BY time($__interval), "tag" fill(none)`,
        'Anno',
      ).table(),
    )
    .mappings(fields({ text: 'reason', tags: 'tag' }));
}

export function chamberDetail(): dashboard.DashboardBuilder {
  const d = base('octopus-chamber', 'Octopus — Chamber detail', ['chamber'])
    .description('One chamber: every variable with its setpoint, min/max/mean, states and quality.')
    .withVariable(chamberVariable(false))
    .withVariable(sourceVariable(false))
    .annotation(qualityAnnotation('bad', 'red'))
    .annotation(qualityAnnotation('uncertain', 'orange'))
    .annotation(alarmAnnotation(CHAMBER));

  d.withRow(new dashboard.RowBuilder('Climate'));
  for (const v of CLIMATE) {
    // mean for the line, min and max as a band: a 30-day range keeps the extremes visible,
    // and the legend's table gives the range's mean, lowest min and highest max.
    const p = timeseries(v.title)
      .datasource(INFLUX)
      .unit(v.grafana)
      .height(8)
      .span(12)
      .withTarget(
        influxql(
          `SELECT mean("value") AS "mean", min("value") AS "min", max("value") AS "max" ${where(v.tag)} GROUP BY time($__interval) fill(null)`,
          'A',
        ).alias(`${v.tag} $col`),
      )
      .overrideByRegexp('.* (min|max)$', [
        { id: 'custom.lineWidth', value: 0 },
        { id: 'custom.fillOpacity', value: 12 },
      ])
      .overrideByName(`${v.tag} max`, [{ id: 'custom.fillBelowTo', value: `${v.tag} min` }]);
    if (v.setpoint) {
      p.withTarget(
        influxql(
          `SELECT last("value") AS "setpoint" ${where(v.setpoint)} GROUP BY time($__interval) fill(previous)`,
          'B',
        ).alias('setpoint'),
      ).overrideByName('setpoint', [
        { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
        { id: 'color', value: { mode: 'fixed', fixedColor: 'text' } },
      ]);
    }
    d.withPanel(p);
  }

  d.withRow(new dashboard.RowBuilder('State and quality'));
  for (const s of STATES) {
    d.withPanel(
      stateTimeline(s.title)
        .datasource(INFLUX)
        .height(3)
        .span(24)
        .mappings(onOff(s.on, s.off, s.onColor, s.offColor))
        // max: an alarm or an open door anywhere in the interval shows
        .withTarget(
          influxql(`SELECT max("value") ${where(s.tag)} GROUP BY time($__interval) fill(previous)`, 'A').alias(s.title),
        ),
    );
  }
  // Only uncertain and bad samples carry a reason: counting it reads those series alone,
  // so the panel stays cheap however many good samples the range holds.
  d.withPanel(
    timeseries('Uncertain and bad samples')
      .description('Samples of uncertain and bad quality per interval, all tags of the chamber.')
      .datasource(INFLUX)
      .unit('short')
      .height(8)
      .span(12)
      .drawStyle(common.GraphDrawStyle.Bars)
      .fillOpacity(80)
      .withTarget(
        influxql(
          `SELECT count("reason") AS "samples" FROM "${MEASUREMENT}" WHERE ${CHAMBER} AND "q" != 'good' AND $timeFilter GROUP BY time($__interval), "q" fill(0)`,
          'A',
        ).alias('$tag_q'),
      )
      .overrideByName('uncertain', [{ id: 'color', value: { mode: 'fixed', fixedColor: 'orange' } }])
      .overrideByName('bad', [{ id: 'color', value: { mode: 'fixed', fixedColor: 'red' } }]),
  );
  d.withPanel(
    timeseries('Bad samples by tag')
      .description('Which sensor fails: bad samples per tag and interval.')
      .datasource(INFLUX)
      .unit('short')
      .height(8)
      .span(12)
      .drawStyle(common.GraphDrawStyle.Bars)
      .fillOpacity(80)
      .thresholds(thresholds([null, 'red']))
      .withTarget(
        influxql(
          `SELECT count("reason") FROM "${MEASUREMENT}" WHERE ${CHAMBER} AND "q" = 'bad' AND $timeFilter GROUP BY time($__interval), "tag" fill(none)`,
          'A',
        ).alias('$tag_tag'),
      ),
  );
  return d;
}
