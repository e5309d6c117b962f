import { Gauge, type Metric } from '../core/metrics.ts';
import type { AlarmEngine } from './engine.ts';
import { AlarmClass } from './model.ts';

/**
 * Prometheus metrics of the alarm engine, read at scrape time: alarms raised since start
 * by class, active alarms by chamber and class, acknowledgements since start (running
 * totals exported as gauges keep the `_total` suffix, as in src/api/metrics.ts).
 */
export function alarmMetrics(engine: AlarmEngine): Metric[] {
  return [
    new Gauge({
      name: 'octopus_alarms_raised_total',
      help: 'Alarms raised since start, by class',
      labelNames: ['class'],
      registers: [],
      collect() {
        this.reset();
        for (const c of AlarmClass.options) this.set({ class: c }, engine.raisedTotal.get(c) ?? 0);
      },
    }),
    new Gauge({
      name: 'octopus_alarms_active',
      help: 'Alarms raised or acknowledged and not cleared, by chamber and class',
      labelNames: ['chamber', 'class', 'state'],
      registers: [],
      collect() {
        this.reset();
        const n = new Map<string, { chamber: string; class: string; state: string; n: number }>();
        for (const a of engine.active()) {
          const k = `${a.chamber}\u0000${a.class}\u0000${a.state}`;
          const e = n.get(k) ?? { chamber: a.chamber, class: a.class, state: a.state, n: 0 };
          e.n++;
          n.set(k, e);
        }
        for (const e of n.values()) this.set({ chamber: e.chamber, class: e.class, state: e.state }, e.n);
      },
    }),
    new Gauge({
      name: 'octopus_alarms_acknowledged_total',
      help: 'Alarm acknowledgements since start (HTTP and MQTT)',
      labelNames: [],
      registers: [],
      collect() {
        this.set(engine.acknowledgedTotal);
      },
    }),
  ];
}
