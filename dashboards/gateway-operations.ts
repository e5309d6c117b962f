/**
 * Gateway operations: ingest rates, spool and buffer depth, dropped counts, InfluxDB write
 * latency and reconnects, from the Prometheus metrics of the gateway (/metrics on 8080)
 * and the collector (on 8081), which Prometheus scrapes as jobs `gateway` and `collector`.
 * Counters are exported as gauges of running totals with `_total` names, so `rate` and
 * `increase` apply (src/api/metrics.ts).
 */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import { base } from './lib/common.ts';
import { PROMETHEUS } from './lib/influxql.ts';
import { timeseries } from './lib/panels.ts';

const promql = (expr: string, legend: string, refId = 'A') =>
  new prometheus.DataqueryBuilder().datasource(PROMETHEUS).expr(expr).legendFormat(legend).range().refId(refId);

const RATE = '$__rate_interval';

export function gatewayOperations(): dashboard.DashboardBuilder {
  const d = base('octopus-operations', 'Octopus — Gateway operations', ['operations'], 'now-24h')
    .description('Gateway and collector internals: throughput, queues, losses, latency, reconnects (Prometheus).')
    .withVariable(
      new dashboard.QueryVariableBuilder('job')
        .label('Process')
        .datasource(PROMETHEUS)
        .query({ query: 'label_values(octopus_up, job)', refId: 'PrometheusVariableQueryEditor-VariableQuery' })
        .refresh(dashboard.VariableRefresh.OnDashboardLoad)
        .multi(true)
        .includeAll(true),
    );
  const sel = '{job=~"$job"}';

  d.withRow(new dashboard.RowBuilder('Throughput'));
  d.withPanel(
    timeseries('Ingest rate')
      .datasource(PROMETHEUS)
      .unit('cps')
      .height(8)
      .span(12)
      .withTarget(promql(`sum(rate(octopus_driver_samples_total${sel}[${RATE}]))`, 'read from PLCs', 'A'))
      .withTarget(
        promql(`sum(rate(octopus_published_samples_total${sel}[${RATE}]))`, 'published (acked by broker)', 'B'),
      )
      .withTarget(promql(`sum(rate(octopus_collector_samples_total${sel}[${RATE}]))`, 'received by collector', 'C'))
      .withTarget(promql(`sum(rate(octopus_influx_written_total${sel}[${RATE}]))`, 'written to InfluxDB', 'D')),
  );
  d.withPanel(
    timeseries('Samples read per chamber')
      .datasource(PROMETHEUS)
      .unit('cps')
      .height(8)
      .span(12)
      .withTarget(promql(`sum by (chamber) (rate(octopus_driver_samples_total${sel}[${RATE}]))`, '{{chamber}}')),
  );

  d.withRow(new dashboard.RowBuilder('Queues and losses'));
  d.withPanel(
    timeseries('Spool and buffer depth')
      .datasource(PROMETHEUS)
      .unit('short')
      .height(8)
      .span(12)
      .withTarget(promql(`sum(octopus_spool_samples${sel})`, 'spool (gateway, waiting for broker)', 'A'))
      .withTarget(promql(`sum(octopus_influx_buffered${sel})`, 'InfluxDB buffer (collector)', 'B')),
  );
  d.withPanel(
    timeseries('Bytes on disk')
      .datasource(PROMETHEUS)
      .unit('bytes')
      .height(8)
      .span(12)
      .withTarget(promql(`sum(octopus_spool_bytes${sel})`, 'spool', 'A'))
      .withTarget(promql(`sum(octopus_influx_buffered_bytes${sel})`, 'InfluxDB buffer', 'B')),
  );
  d.withPanel(
    timeseries('Dropped and refused samples')
      .datasource(PROMETHEUS)
      .description(
        'Samples lost to a full spool or buffer, refused by InfluxDB (dead letters), or invalid messages: should stay at 0.',
      )
      .unit('short')
      .height(8)
      .span(12)
      .withTarget(promql(`sum(increase(octopus_spool_dropped_samples_total${sel}[${RATE}]))`, 'spool dropped', 'A'))
      .withTarget(promql(`sum(increase(octopus_influx_dropped_total${sel}[${RATE}]))`, 'InfluxDB buffer dropped', 'B'))
      .withTarget(promql(`sum(increase(octopus_influx_dead_lettered_total${sel}[${RATE}]))`, 'dead-lettered', 'C'))
      .withTarget(promql(`sum(increase(octopus_collector_invalid_total${sel}[${RATE}]))`, 'invalid messages', 'D'))
      .withTarget(promql(`sum(increase(octopus_driver_bad_samples_total${sel}[${RATE}]))`, 'bad-quality samples', 'E')),
  );
  d.withPanel(
    timeseries('InfluxDB write latency')
      .datasource(PROMETHEUS)
      .unit('s')
      .height(8)
      .span(12)
      .withTarget(
        promql(
          `histogram_quantile(0.5, sum by (le) (rate(octopus_influx_write_seconds_bucket${sel}[${RATE}])))`,
          'p50',
          'A',
        ),
      )
      .withTarget(
        promql(
          `histogram_quantile(0.95, sum by (le) (rate(octopus_influx_write_seconds_bucket${sel}[${RATE}])))`,
          'p95',
          'B',
        ),
      )
      .withTarget(promql(`sum(rate(octopus_influx_retries_total${sel}[${RATE}]))`, 'retries/s', 'C')),
  );

  d.withRow(new dashboard.RowBuilder('Connections'));
  d.withPanel(
    timeseries('Reconnects')
      .datasource(PROMETHEUS)
      .unit('short')
      .height(8)
      .span(12)
      .withTarget(promql(`sum(increase(octopus_mqtt_reconnects_total${sel}[${RATE}]))`, 'MQTT broker', 'A'))
      .withTarget(
        promql(
          `sum by (chamber) (increase(octopus_driver_reconnects_total${sel}[${RATE}]))`,
          'driver {{chamber}}',
          'B',
        ),
      ),
  );
  d.withPanel(
    timeseries('Up')
      .datasource(PROMETHEUS)
      .unit('bool_on_off')
      .height(8)
      .span(12)
      .withTarget(promql(`min by (job) (octopus_up${sel})`, '{{job}} status ok', 'A'))
      .withTarget(promql(`min by (job) (octopus_mqtt_connected${sel})`, '{{job}} MQTT connected', 'B'))
      .withTarget(promql(`min by (chamber) (octopus_driver_up${sel})`, 'driver {{chamber}}', 'C')),
  );
  d.withPanel(
    timeseries('Duplicates and memory')
      .datasource(PROMETHEUS)
      .unit('short')
      .height(8)
      .span(24)
      .withTarget(
        promql(
          `sum(rate(octopus_collector_duplicates_total${sel}[${RATE}]))`,
          'duplicate messages/s (redelivered)',
          'A',
        ),
      )
      .withTarget(
        promql(`sum by (job) (rate(octopus_process_process_cpu_seconds_total${sel}[${RATE}]))`, '{{job}} CPU s/s', 'C'),
      )
      .withTarget(
        promql(`sum by (job) (octopus_process_process_resident_memory_bytes${sel}) / 1e6`, '{{job}} RSS MB', 'B'),
      ),
  );
  return d;
}
