import type { HealthReport } from '../core/health.ts';
import { VERSION } from '../core/version.ts';
import { withFaults } from '../api/health-faults.ts';
import type { CollectorHealth } from './collector.ts';

/** A write unanswered this long degrades the health (a frozen database accepts connections and never answers). */
export const STALLED_MS = 3000;

/** Adds the collector's sinks to a health report; a sink that is retrying, or whose write hangs, degrades it. */
export function withCollector(report: HealthReport, c: CollectorHealth): HealthReport {
  const problems = [...report.problems];
  const sinks: HealthReport['sinks'] = { ...report.sinks };
  const s = c.subscriber;
  sinks.collector = {
    state: s.connected ? 'subscribed' : 'disconnected',
    subscription: s.subscription,
    client_id: s.client_id,
    clean_session: s.clean_session,
    messages: s.messages,
    samples: s.samples,
    invalid: s.invalid,
    duplicates: s.duplicates,
    stale_dropped: s.stale_dropped,
    seq_jumps: s.seq_jumps,
    future_refused: s.future_refused,
    reconnects: s.reconnects,
  };

  if (!s.connected) problems.push(`collector not connected to the MQTT broker`);
  if (c.influx) {
    const { state, ...rest } = c.influx;
    sinks.influx = { state, ...rest };
    if (state === 'retrying')
      problems.push(
        `InfluxDB ${c.influx.target} not writable (${c.influx.last_error ?? 'unknown error'}); ${c.influx.buffered} samples buffered on disk`,
      );
    else if (c.influx.oldest_request_ms >= STALLED_MS)
      problems.push(
        `InfluxDB ${c.influx.target} not writable (no answer to a write for ${(c.influx.oldest_request_ms / 1000).toFixed(1)} s); ${c.influx.buffered} samples buffered on disk`,
      );
  }
  if (c.netcdf) {
    const { state, ...rest } = c.netcdf;
    sinks.netcdf = { state, ...rest };
    problems.push(...c.netcdf.problems);
    if (!c.netcdf.nas_available)
      problems.push(
        `NAS ${c.netcdf.nas} unavailable: experiment files are kept locally (${c.netcdf.pending_local_files} waiting) and moved when it returns`,
      );
  }
  if (c.alarms) {
    const { state, ...rest } = c.alarms;
    sinks.alarms = { state, ...rest };
    if (c.alarms.log_error) problems.push(`alarm event log: ${c.alarms.log_error}`);
  }
  return { ...report, status: problems.length ? 'degraded' : 'ok', sinks, problems };
}

/** The base report of a collector running on its own (`octopus collect`): no drivers, no spool. */
export function standaloneHealth(
  id: string,
  brokerUrl: string,
  c: { connected: boolean; health(): CollectorHealth },
  startedAt = STARTED,
): HealthReport {
  const s = c.health().subscriber;
  return withFaults({
    status: 'ok',
    gateway: id,
    version: VERSION,
    uptime_s: Math.round((Date.now() - startedAt) / 1000),
    drivers: [],
    broker: { url: brokerUrl, embedded: false, connected: s.connected, reconnects: s.reconnects },
    spool: { messages: 0, bytes: 0, samples: 0, dropped_samples: 0 },
    published: { messages: 0, samples: 0 },
    sinks: {},
    problems: [],
  });
}
const STARTED = Date.now();
