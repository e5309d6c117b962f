/** Variables and settings every dashboard shares. */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { EVENTS, INFLUX, MEASUREMENT, ROLLUP } from './influxql.ts';

/** Auto-refresh: never below 5 s (a refresh re-runs every panel's query). */
export const REFRESH = '30s';
export const REFRESH_CHOICES = ['5s', '10s', '30s', '1m', '5m', '15m', '1h'];

export function base(uid: string, title: string, tags: string[], from = 'now-6h'): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(title)
    .uid(uid)
    .tags(['octopus', ...tags])
    .editable()
    .timezone('browser')
    .refresh(REFRESH)
    .time({ from, to: 'now' })
    .timepicker(new dashboard.TimePickerBuilder().refreshIntervals(REFRESH_CHOICES))
    .tooltip(dashboard.DashboardCursorSync.Crosshair);
}

/** `$chamber`: every chamber that wrote to the measurement (multi-select or single). */
export function chamberVariable(multi: boolean): dashboard.QueryVariableBuilder {
  const v = new dashboard.QueryVariableBuilder('chamber')
    .label('Chamber')
    .datasource(INFLUX)
    .query(`SHOW TAG VALUES FROM "${MEASUREMENT}" WITH KEY = "chamber"`)
    .refresh(dashboard.VariableRefresh.OnDashboardLoad)
    .sort(dashboard.VariableSort.AlphabeticalAsc)
    .multi(multi);
  return multi ? v.includeAll(true) : v;
}

/** `$experiment` and `$run`, from the experiments service's events. */
export function experimentVariables(): dashboard.QueryVariableBuilder[] {
  return [
    new dashboard.QueryVariableBuilder('experiment')
      .label('Experiment')
      .datasource(INFLUX)
      .query(`SHOW TAG VALUES FROM "${EVENTS}" WITH KEY = "experiment"`)
      .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
      .sort(dashboard.VariableSort.AlphabeticalAsc),
    new dashboard.QueryVariableBuilder('run')
      .label('Run')
      .datasource(INFLUX)
      .query(`SHOW TAG VALUES FROM "${EVENTS}" WITH KEY = "run" WHERE "experiment" = '$experiment'`)
      .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
      .sort(dashboard.VariableSort.AlphabeticalDesc),
  ];
}

/**
 * `$source`: the measurement the variable panels read: the raw samples (1 s) for hours,
 * the 1-minute rollup for days to months (min/max are then those of minute means).
 */
export function sourceVariable(defaultRollup: boolean): dashboard.CustomVariableBuilder {
  const raw = { text: 'raw samples', value: MEASUREMENT };
  const rollup = { text: '1-minute means', value: ROLLUP };
  const current = defaultRollup ? rollup : raw;
  return new dashboard.CustomVariableBuilder('source')
    .label('Resolution')
    .description('Raw samples for ranges up to a day; 1-minute means (rollup) for longer ranges.')
    .values(`${raw.text} : ${raw.value},${rollup.text} : ${rollup.value}`)
    .options([raw, rollup].map((o) => ({ ...o, selected: o === current })))
    .current({ ...current, selected: true });
}
