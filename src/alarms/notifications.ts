/**
 * The alarm engine's outputs beyond MQTT, wired in one call: the webhooks (webhook.ts)
 * and the `alarm` measurement in InfluxDB (influx.ts), with their health section and
 * metrics. `src/cli/start.ts` (or `octopus collect`) calls `startAlarmNotifications`
 * once the engine and the collector exist (docs/alarms.md, "Webhooks").
 */
import type { HealthReport } from '../core/health.ts';
import type { Logger } from '../core/log.ts';
import type { Metric } from '../core/metrics.ts';
import type { WriteFaults } from '../core/write-faults.ts';
import { writeAlarmsToInflux, type AlarmInflux, type LineSink } from './influx.ts';
import type { AlarmEventSource } from './source.ts';
import type { Webhook } from './webhook-config.ts';
import { webhookMetrics } from './webhook-metrics.ts';
import { WebhookNotifier, type Clock } from './webhook.ts';

export interface AlarmNotificationsOptions {
  /** `alarms.webhooks` of the parsed instance configuration. */
  webhooks: readonly Webhook[];
  /** The resolved data_dir. */
  dataDir: string;
  /** The collector's InfluxDB sink (`collector.influx`), when InfluxDB is configured. */
  influx?: LineSink;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  writeFaults?: WriteFaults;
}

export interface AlarmNotifications {
  readonly notifier: WebhookNotifier;
  readonly influx?: AlarmInflux;
  /** For createMetrics(…, extra): per-webhook delivered / retried / dead-lettered / pending. */
  readonly metrics: Metric[];
  /** Adds `sinks.alarm_webhooks` (and `sinks.alarm_influx`) to a health report; a webhook retrying degrades it. */
  withHealth(report: HealthReport): HealthReport;
  /** Stops listening; pending deliveries stay on disk for the next start. Call before the InfluxDB sink closes. */
  close(): Promise<void>;
}

/** Throws (naming the webhook and variable) when a webhook's `secret_env` is not set. */
export function startAlarmNotifications(source: AlarmEventSource, o: AlarmNotificationsOptions): AlarmNotifications {
  const notifier = new WebhookNotifier({
    webhooks: o.webhooks,
    dataDir: o.dataDir,
    log: o.log.child('webhooks'),
    ...(o.env ? { env: o.env } : {}),
    ...(o.clock ? { clock: o.clock } : {}),
    ...(o.writeFaults ? { writeFaults: o.writeFaults } : {}),
  }).attach(source);
  const influx = o.influx ? writeAlarmsToInflux(source, o.influx, o.log.child('influx')) : undefined;
  return {
    notifier,
    influx,
    metrics: webhookMetrics(() => notifier.health()),
    withHealth(report) {
      const sinks: HealthReport['sinks'] = { ...report.sinks };
      const problems = [...report.problems];
      if (o.webhooks.length) {
        sinks.alarm_webhooks = { ...notifier.health() };
        problems.push(...notifier.problems());
      }
      if (influx) {
        const h = influx.health();
        sinks.alarm_influx = { state: h.held ? 'holding' : 'ok', buffered: h.held, ...h };
        if (h.held)
          problems.push(
            `${h.held} alarm event(s) held in memory for InfluxDB: ${h.last_error ?? 'the buffer cannot be written'}`,
          );
      }
      return { ...report, sinks, problems, status: problems.length ? 'degraded' : report.status };
    },
    async close() {
      influx?.close();
      await notifier.close();
    },
  };
}
