import { collectDefaultMetrics, Gauge, Registry, type Metric } from '../core/metrics.ts';
import type { HealthReport } from '../core/health.ts';

/**
 * Prometheus metrics derived from the health report at scrape time, so there is one
 * source of truth for both endpoints. Counters exported as gauges of running totals
 * keep the `_total` suffix (prom-client counters cannot be set to absolute values).
 */
export function createMetrics(health: () => HealthReport, extra: Metric[] = []): Registry {
  const registry = new Registry();
  for (const m of extra) registry.registerMetric(m);
  collectDefaultMetrics({ register: registry, prefix: 'octopus_process_' });
  const gauge = (
    name: string,
    help: string,
    labelNames: string[],
    collect: (g: Gauge<string>, h: HealthReport) => void,
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        collect(this, health());
      },
    });
  const perDriver =
    (pick: (d: HealthReport['drivers'][number]) => number | undefined) => (g: Gauge<string>, h: HealthReport) => {
      for (const d of h.drivers) {
        const v = pick(d);
        if (v !== undefined) g.set({ chamber: d.chamber, driver: d.driver }, v);
      }
    };
  gauge(
    'octopus_driver_up',
    '1 when the chamber driver is online',
    ['chamber', 'driver'],
    perDriver((d) => (d.state === 'online' ? 1 : 0)),
  );
  gauge(
    'octopus_driver_samples_total',
    'Samples emitted by the driver',
    ['chamber', 'driver'],
    perDriver((d) => d.samples),
  );
  gauge(
    'octopus_driver_bad_samples_total',
    'Bad-quality samples emitted by the driver',
    ['chamber', 'driver'],
    perDriver((d) => d.badSamples),
  );
  gauge(
    'octopus_driver_reconnects_total',
    'Reconnections of the driver',
    ['chamber', 'driver'],
    perDriver((d) => d.reconnects),
  );
  gauge(
    'octopus_driver_last_sample_timestamp_seconds',
    'Source time of the newest sample',
    ['chamber', 'driver'],
    perDriver((d) => (d.lastSampleTs === undefined ? undefined : d.lastSampleTs / 1000)),
  );
  gauge(
    'octopus_modbus_requests_per_cycle',
    'Modbus requests in the last poll cycle',
    ['chamber', 'driver'],
    perDriver((d) => d.requestsPerCycle),
  );
  gauge(
    'octopus_opcua_monitored_items',
    'OPC UA monitored items',
    ['chamber', 'driver'],
    perDriver((d) => d.monitoredItems),
  );
  gauge('octopus_mqtt_connected', '1 when connected to the MQTT broker', [], (g, h) =>
    g.set(h.broker.connected ? 1 : 0),
  );
  gauge('octopus_mqtt_reconnects_total', 'Reconnections to the MQTT broker', [], (g, h) => g.set(h.broker.reconnects));
  gauge('octopus_spool_messages', 'Messages in the on-disk spool waiting for PUBACK', [], (g, h) =>
    g.set(h.spool.messages),
  );
  gauge('octopus_spool_bytes', 'Bytes in the on-disk spool', [], (g, h) => g.set(h.spool.bytes));
  gauge('octopus_spool_samples', 'Samples in the on-disk spool', [], (g, h) => g.set(h.spool.samples));
  gauge('octopus_spool_dropped_samples_total', 'Samples dropped because the spool bound was hit', [], (g, h) =>
    g.set(h.spool.dropped_samples),
  );
  gauge('octopus_published_messages_total', 'MQTT messages acknowledged by the broker', [], (g, h) =>
    g.set(h.published.messages),
  );
  gauge('octopus_published_samples_total', 'Samples acknowledged by the broker', [], (g, h) =>
    g.set(h.published.samples),
  );
  const sink = (name: string, field: string) => (g: Gauge<string>, h: HealthReport) => {
    const v = (h.sinks[name] as Record<string, unknown> | undefined)?.[field];
    if (typeof v === 'number') g.set(v);
  };
  gauge(
    'octopus_collector_messages_total',
    'Data messages received by the collector (after dedupe)',
    [],
    sink('collector', 'messages'),
  );
  gauge('octopus_collector_samples_total', 'Samples received by the collector', [], sink('collector', 'samples'));
  gauge('octopus_collector_invalid_total', 'Messages refused by payload validation', [], sink('collector', 'invalid'));
  gauge(
    'octopus_collector_duplicates_total',
    'Duplicate messages dropped by (gw, ep, seq)',
    [],
    sink('collector', 'duplicates'),
  );
  gauge(
    'octopus_collector_stale_dropped_total',
    'Messages dropped as older than the dedupe window of their (gw, ep) stream',
    [],
    sink('collector', 'stale_dropped'),
  );
  gauge(
    'octopus_collector_seq_jumps_total',
    'Messages far ahead of their (gw, ep) numbering (delivered, window not moved until confirmed)',
    [],
    sink('collector', 'seq_jumps'),
  );
  gauge('octopus_influx_in_flight', 'InfluxDB write requests running now', [], sink('influx', 'in_flight'));
  gauge('octopus_influx_received_total', 'Samples accepted by the InfluxDB sink', [], sink('influx', 'received'));
  gauge('octopus_influx_written_total', 'Samples written to InfluxDB', [], sink('influx', 'written'));
  gauge('octopus_influx_buffered', 'Samples waiting in the InfluxDB disk buffer', [], sink('influx', 'buffered'));
  gauge('octopus_influx_buffered_bytes', 'Bytes in the InfluxDB disk buffer', [], sink('influx', 'buffered_bytes'));
  gauge(
    'octopus_influx_dropped_total',
    'Samples dropped because the InfluxDB buffer bound was hit',
    [],
    sink('influx', 'dropped'),
  );
  gauge(
    'octopus_influx_dead_lettered_total',
    'Samples refused by InfluxDB (4xx) and moved to the dead-letter file',
    [],
    sink('influx', 'dead_lettered'),
  );
  gauge('octopus_influx_retries_total', 'Failed InfluxDB writes that were retried', [], sink('influx', 'retries'));
  gauge(
    'octopus_write_fault',
    '1 per write target failing now (audit log, spool, working folder, NAS…)',
    ['target', 'errno'],
    (g, h) => {
      for (const f of h.write_faults ?? []) g.set({ target: f.target, errno: f.errno }, 1);
    },
  );
  gauge('octopus_unexpected_errors_total', 'Unhandled rejections and uncaught exceptions since start', [], (g, h) =>
    g.set(h.unexpected_errors?.count ?? 0),
  );
  gauge('octopus_up', '1 when the gateway reports status ok', [], (g, h) => g.set(h.status === 'ok' ? 1 : 0));
  return registry;
}
