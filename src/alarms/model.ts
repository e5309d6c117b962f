import { z } from 'zod';

/**
 * The alarm contract shared by the engine (collector), MQTT (docs/mqtt.md), the HTTP API,
 * the web page, the webhook notifier and the InfluxDB `alarm` measurement (docs/alarms.md).
 */

/** What an alarm is about. */
export const AlarmClass = z.enum(['deviation', 'stale', 'offline', 'plc_alarm', 'door_open']);
export type AlarmClass = z.infer<typeof AlarmClass>;

export const AlarmSeverity = z.enum(['warning', 'critical']);
export type AlarmSeverity = z.infer<typeof AlarmSeverity>;

/**
 * Lifecycle: `raised` (active, not acknowledged) → `acknowledged` (active, an operator
 * took it, with a comment) → `cleared` (condition gone). An alarm that clears before
 * anyone acknowledged it is `cleared` with no `acknowledged_by`.
 */
export const AlarmStateName = z.enum(['raised', 'acknowledged', 'cleared']);
export type AlarmStateName = z.infer<typeof AlarmStateName>;

/** One alarm occurrence. `id` is unique per occurrence; `key` names the condition (chamber/class/subject). */
export const Alarm = z
  .object({
    id: z.string().min(1).max(200),
    key: z.string().min(1).max(200),
    chamber: z.string().min(1),
    class: AlarmClass,
    /** The tag concerned (deviation, stale, plc_alarm, door_open); absent for offline. */
    tag: z.string().optional(),
    severity: AlarmSeverity,
    state: AlarmStateName,
    /** Human-readable one-liner, e.g. "air_temperature 23.1 degree_Celsius is 1.1 from setpoint 22 (band ±0.5) for 10 min". */
    message: z.string(),
    /** Epoch ms when the condition began (not when the minimum duration elapsed). */
    since: z.number(),
    raised_at: z.number(),
    acknowledged_at: z.number().optional(),
    /** Real identity: `api:<user>` or `mqtt:<user>`. */
    acknowledged_by: z.string().optional(),
    comment: z.string().max(2000).optional(),
    cleared_at: z.number().optional(),
    /** Deviation alarms: the last value, its setpoint and the band in force, in the variable's units. */
    value: z.number().optional(),
    setpoint: z.number().optional(),
    band: z.number().optional(),
    units: z.string().optional(),
  })
  .strict();
export type Alarm = z.infer<typeof Alarm>;

/** Retained on `<prefix>/<chamber>/alarm`: the chamber's alarms that are not cleared. */
export const ChamberAlarmState = z
  .object({
    chamber: z.string().min(1),
    ts: z.number(),
    alarms: z.array(Alarm),
  })
  .strict();
export type ChamberAlarmState = z.infer<typeof ChamberAlarmState>;

/** Published on `<prefix>/alarms/event` (QoS 1, not retained) and appended to the event log. */
export const AlarmEvent = z
  .object({
    event: z.enum(['raised', 'acknowledged', 'cleared']),
    ts: z.number(),
    /** Who acted for `acknowledged`; `octopus` for raised/cleared. */
    by: z.string(),
    alarm: Alarm,
  })
  .strict();
export type AlarmEvent = z.infer<typeof AlarmEvent>;

/** What the HTTP API and the web page need from the alarm engine. */
export interface AlarmService {
  /** Alarms not cleared, all chambers, newest first. */
  active(): Alarm[];
  /** Events, newest first, optionally since an epoch-ms time or for one chamber. */
  history(opts?: { limit?: number; since?: number; chamber?: string }): AlarmEvent[];
  /** Acknowledges an active alarm; audited with `by`. Errors say why (unknown id, already cleared). */
  acknowledge(
    id: string,
    by: string,
    comment: string,
  ): Promise<{ ok: true; alarm: Alarm } | { ok: false; status: 404 | 409 | 503; error: string }>;
  /** Every event as it happens (web live view); returns an unsubscribe function. */
  onEvent(listener: (e: AlarmEvent) => void): () => void;
}
