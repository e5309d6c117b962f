import { Gauge, type Metric } from '../core/metrics.ts';
import type { NotifierHealth } from './webhook.ts';

/**
 * Prometheus metrics of the alarm webhooks, per webhook, read from the notifier's health
 * at scrape time (running totals exported as gauges keep `_total`, as src/api/metrics.ts
 * does). Pass them as `extra` metrics to createMetrics.
 */
export function webhookMetrics(health: () => NotifierHealth): Metric[] {
  const gauge = (name: string, help: string, pick: (w: NotifierHealth['webhooks'][number]) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['webhook'],
      registers: [],
      collect() {
        this.reset();
        for (const w of health().webhooks) this.set({ webhook: w.name }, pick(w));
      },
    });
  return [
    gauge(
      'octopus_alarm_webhook_delivered_total',
      'Alarm notifications delivered (2xx) per webhook',
      (w) => w.delivered,
    ),
    gauge(
      'octopus_alarm_webhook_retried_total',
      'Failed alarm notification attempts that were retried, per webhook',
      (w) => w.retried,
    ),
    gauge(
      'octopus_alarm_webhook_dead_lettered_total',
      'Alarm notifications given up and written to the dead-letter log, per webhook',
      (w) => w.dead_lettered,
    ),
    gauge(
      'octopus_alarm_webhook_pending',
      'Alarm notifications waiting to be delivered, per webhook',
      (w) => w.pending,
    ),
  ];
}
