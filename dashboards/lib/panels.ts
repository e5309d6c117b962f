/** Small panel helpers shared by the dashboards: thresholds, mappings, legends. */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as StateTimelinePanel } from '@grafana/grafana-foundation-sdk/statetimeline';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';

export type Step = [value: number | null, color: string];

export const thresholds = (...steps: Step[]) =>
  new dashboard.ThresholdsConfigBuilder()
    .mode(dashboard.ThresholdsMode.Absolute)
    .steps(steps.map(([value, color]) => ({ value, color })));

/** Green inside ±tol of the setpoint, orange within ±2·tol, red beyond. */
export const deviationThresholds = (tol: number) =>
  thresholds([null, 'red'], [-2 * tol, 'orange'], [-tol, 'green'], [tol, 'orange'], [2 * tol, 'red']);

/** 1/0 → words and colours (door, alarm, run state). */
export function onOff(on: string, off: string, onColor: string, offColor: string): dashboard.ValueMapping[] {
  return [
    {
      type: dashboard.MappingType.ValueToText,
      options: { '1': { text: on, color: onColor, index: 0 }, '0': { text: off, color: offColor, index: 1 } },
    },
  ];
}

export const tableLegend = (calcs = ['mean', 'min', 'max', 'lastNotNull']) =>
  new common.VizLegendOptionsBuilder()
    .showLegend(true)
    .displayMode(common.LegendDisplayMode.Table)
    .placement(common.LegendPlacement.Bottom)
    .calcs(calcs);

export const stat = (title: string) =>
  new StatPanel()
    .title(title)
    .graphMode(common.BigValueGraphMode.None)
    .colorMode(common.BigValueColorMode.Background)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false));

export const timeseries = (title: string) =>
  new TimeseriesPanel()
    .title(title)
    .lineWidth(1)
    .fillOpacity(0)
    .spanNulls(false)
    .showPoints(common.VisibilityMode.Never)
    .legend(tableLegend());

export const stateTimeline = (title: string) =>
  new StateTimelinePanel()
    .title(title)
    .showValue(common.VisibilityMode.Never)
    .mergeValues(true)
    .legend(
      new common.VizLegendOptionsBuilder()
        .showLegend(false)
        .displayMode(common.LegendDisplayMode.List)
        .placement(common.LegendPlacement.Bottom),
    );
