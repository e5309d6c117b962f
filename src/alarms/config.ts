import { z } from 'zod';
import { Webhooks } from './webhook-config.ts';

/** Severity of each alarm class (what the banner colour, webhooks and dashboards show). */
export const AlarmSeverities = z
  .object({
    deviation: z
      .enum(['warning', 'critical'])
      .default('warning')
      .describe('Severity of deviation alarms (|value − setpoint| beyond the tolerance band)'),
    stale: z
      .enum(['warning', 'critical'])
      .default('warning')
      .describe('Severity of stale alarms (no good sample of a controlled variable)'),
    offline: z
      .enum(['warning', 'critical'])
      .default('critical')
      .describe('Severity of offline alarms (chamber PLC unreachable)'),
    plc_alarm: z
      .enum(['warning', 'critical'])
      .default('critical')
      .describe('Severity of PLC alarms (a profile tag with role: alarm is true or non-zero)'),
    door_open: z
      .enum(['warning', 'critical'])
      .default('warning')
      .describe('Severity of door-open alarms (a door tag open longer than door_open_max_s)'),
  })
  .strict();

const SEVERITY_DEFAULTS = AlarmSeverities.parse({});

/**
 * `alarms:` of the instance configuration: the live alarm engine of the collector
 * (docs/alarms.md). Tolerances of the deviation class are not here: they are data of the
 * device profile, the chamber and the experiment's treatment (src/fidelity/tolerance.ts).
 */
export const AlarmsConfig = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe('Evaluate alarms in the collector (deviation, stale, offline, plc_alarm, door_open) and publish them'),
    stale_periods: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(10)
      .describe("A controlled variable is stale after this many of its chamber's interval_ms without a good sample"),
    offline_delay_s: z
      .number()
      .min(0)
      .max(86_400)
      .default(30)
      .describe('A chamber reported offline (its PLC unreachable) for this long raises an offline alarm, seconds'),
    door_open_max_s: z
      .number()
      .min(0)
      .max(86_400)
      .default(300)
      .describe('A door tag (profile tag with door: true) open longer than this raises door_open, seconds'),
    plc_alarm_min_s: z
      .number()
      .min(0)
      .max(86_400)
      .default(0)
      .describe('A PLC alarm tag must stay active this long before it is raised, seconds (default 0: at once)'),
    evaluate_interval_ms: z
      .number()
      .int()
      .min(50)
      .max(60_000)
      .default(1000)
      .describe('Period of the time-based checks (stale, offline, door, minimum durations), ms'),
    history_limit: z
      .number()
      .int()
      .min(100)
      .max(1_000_000)
      .default(10_000)
      .describe('Newest alarm events kept in memory for GET /api/alarms/history (the event log on disk keeps all)'),
    log_max_bytes: z
      .number()
      .int()
      .min(65_536)
      .default(64 * 1024 ** 2)
      .describe(
        'Size at which the event log (<data_dir>/state/alarms.jsonl) is rotated: the whole log is kept beside it as alarms-<UTC time>.jsonl, the new one starts with the active alarms and the newest history_limit events',
      ),
    severity: AlarmSeverities.default(SEVERITY_DEFAULTS).describe('Severity per alarm class: warning or critical'),
    webhooks: Webhooks.describe(
      'Webhooks that receive alarm events as JSON POSTs (retried, dead-lettered after max_attempts)',
    ),
  })
  .strict();
export type AlarmsConfig = z.infer<typeof AlarmsConfig>;
