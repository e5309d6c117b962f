/**
 * Experiment run (`$experiment`, `$run`): the run's start/stop events, the run state of
 * each chamber, and every climate variable compared across the treatment's chambers.
 *
 * Run events come from the measurement `experiment_events` (tags experiment, run, event;
 * field message), which the experiments service writes at each start and stop; they are
 * shown as annotations and in a table whose times set the range to look at. Alarm events
 * of the selected chambers are annotations too.
 */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { alarmAnnotation, fields } from './lib/annotations.ts';
import { base, chamberVariable, experimentVariables, sourceVariable } from './lib/common.ts';
import { EVENTS, INFLUX, influxql, lit } from './lib/influxql.ts';
import { onOff, stateTimeline, timeseries } from './lib/panels.ts';
import { CLIMATE } from './lib/variables.ts';

const RUN = `"experiment" = '$experiment' AND "run" = '$run'`;

export function experimentRun(): dashboard.DashboardBuilder {
  const d = base('octopus-experiment', 'Octopus — Experiment run', ['experiment'], 'now-7d')
    .description('One run of one experiment: its events, the run state, and the treatments compared across chambers.')
    .withVariable(experimentVariables()[0]!)
    .withVariable(experimentVariables()[1]!)
    .withVariable(chamberVariable(true))
    .withVariable(sourceVariable(true))
    .annotation(
      new dashboard.AnnotationQueryBuilder()
        .name('Run events')
        .datasource(INFLUX)
        .enable(true)
        .iconColor('blue')
        .target(influxql(`SELECT "message", "event" FROM "${EVENTS}" WHERE ${RUN} AND $timeFilter`, 'Anno').table())
        .mappings(fields({ text: 'message', tags: 'event' })),
    )
    .annotation(alarmAnnotation(`"chamber" =~ /^$chamber$/`));

  d.withRow(new dashboard.RowBuilder('Run'));
  // No $timeFilter: the run's start and stop are listed whatever the range, so their
  // times tell which range to pick.
  d.withPanel(
    new TablePanel()
      .title('Run events')
      .datasource(INFLUX)
      .height(6)
      .span(12)
      .withTarget(influxql(`SELECT "event", "message" FROM "${EVENTS}" WHERE ${RUN}`, 'A').table()),
  );
  d.withPanel(
    stateTimeline('Run state')
      .datasource(INFLUX)
      .height(6)
      .span(12)
      .mappings(onOff('running', 'stopped', 'green', 'text'))
      .withTarget(
        influxql(
          `SELECT max("value") FROM "$source" WHERE "chamber" =~ /^$chamber$/ AND "tag" = 'running' AND $timeFilter GROUP BY time($__interval), "chamber" fill(previous)`,
          'A',
        ).alias('$tag_chamber'),
      ),
  );

  d.withRow(new dashboard.RowBuilder('Treatments compared'));
  for (const v of CLIMATE) {
    d.withPanel(
      timeseries(`${v.title} by chamber`)
        .datasource(INFLUX)
        .unit(v.grafana)
        .height(8)
        .span(12)
        .withTarget(
          influxql(
            `SELECT mean("value") FROM "$source" WHERE "chamber" =~ /^$chamber$/ AND "tag" = ${lit(v.tag)} AND $timeFilter GROUP BY time($__interval), "chamber" fill(null)`,
            'A',
          ).alias('$tag_chamber'),
        ),
    );
  }
  d.withPanel(
    new TablePanel()
      .title('Run means by chamber')
      .description('Mean of each variable over the selected range, per chamber.')
      .datasource(INFLUX)
      .height(8)
      .span(24)
      .withTarget(
        influxql(
          `SELECT mean("value") FROM "$source" WHERE "chamber" =~ /^$chamber$/ AND "tag" =~ /^(${CLIMATE.map((v) => v.tag).join('|')})$/ AND "q" = 'good' AND $timeFilter GROUP BY "chamber", "tag"`,
          'A',
        ).table(),
      ),
  );
  return d;
}
