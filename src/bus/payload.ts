import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { Sample } from '../core/sample.ts';

/** One sample inside a data message (the chamber is in the envelope). */
export const WireSample = Sample.omit({ chamber: true });
export type WireSample = z.infer<typeof WireSample>;

/**
 * `<prefix>/<chamber>/data`, QoS 1. `gw`, `ep` and `seq` identify the message: `ep` is
 * the gateway's restart epoch (chosen anew at every gateway start; a message replayed
 * from the spool keeps the epoch it was encoded with) and `seq` grows by one per message
 * of the gateway, so a consumer drops the duplicates that QoS 1 redelivery produces by
 * `(gw, ep, seq)` — and a gateway that lost its data folder, counting from 0 again,
 * starts a new epoch instead of looking like a replay. Payloads without `ep` (before
 * 2026-12) are accepted.
 */
export const Epoch = z.string().regex(/^[0-9a-z-]{1,32}$/, 'an epoch is 1-32 characters [0-9a-z-]');
export const DataMessage = z.object({
  v: z.literal(1),
  gw: z.string().min(1),
  ep: Epoch.optional(),
  seq: z.number().int().nonnegative(),
  chamber: z.string().min(1),
  samples: z.array(WireSample),
});
export type DataMessage = z.infer<typeof DataMessage>;

/** `<prefix>/<chamber>/status` and `<prefix>/gateway/<id>/status`, retained. */
export const StatusMessage = z.object({
  state: z.enum(['online', 'offline', 'error']),
  ts: z.number().int().nonnegative(),
  reason: z.string().optional(),
});
export type StatusMessage = z.infer<typeof StatusMessage>;

/** Correlation id of a request, echoed in its result. */
export const RequestId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21-\x7e]+$/, 'request ids are 1–128 printable ASCII characters without spaces');

/**
 * `<prefix>/<chamber>/set/<tag>/<principal>`: a setpoint write request. The sender is
 * the topic's last level, which the broker ACL pins to the authenticated user.
 */
export const SetRequest = z
  .object({
    value: z.union([z.number().finite(), z.boolean(), z.string().max(256)]),
    /** Correlation id, echoed in the result on `<prefix>/results/<principal>`. */
    id: RequestId.optional(),
  })
  .strict();
export type SetRequest = z.infer<typeof SetRequest>;

/** `<prefix>/experiments/<id>/command/<principal>`: start or stop a run (answered by a result and an event). */
export const ExperimentCommand = z
  .object({
    action: z.enum(['start', 'stop']),
    /** For stop: the run; default the experiment's running run. */
    run: z.string().max(64).optional(),
    note: z.string().max(500).optional(),
    /** Correlation id, echoed in the result. */
    id: RequestId.optional(),
  })
  .strict();
export type ExperimentCommand = z.infer<typeof ExperimentCommand>;

/**
 * `<prefix>/results/<principal>` (QoS 1, not retained): the answer to every request of
 * that principal, accepted or refused with the reason; only the principal may read it.
 */
export const RequestResult = z.object({
  v: z.literal(1),
  /** The request's id; null when it had none or was not readable. */
  id: z.string().nullable(),
  request: z.enum(['setpoint', 'command', 'alarm_ack']),
  /** The request topic. */
  topic: z.string(),
  status: z.enum(['accepted', 'refused']),
  reason: z.string().optional(),
  /** The authenticated sender. */
  by: z.string(),
  ts: z.number().int().nonnegative(),
  /** Setpoint: the value written; command: the run started or stopped. */
  value: z.union([z.number(), z.boolean(), z.string()]).optional(),
  run: z.string().optional(),
  /** alarm_ack: the alarm acknowledged (or not). */
  alarm: z.string().optional(),
});
export type RequestResult = z.infer<typeof RequestResult>;

/** `<prefix>/experiments/<id>/event`: run start/stop. */
export const ExperimentEvent = z.object({
  event: z.enum(['run_started', 'run_stopped']),
  experiment: z.string().min(1),
  run: z.string().min(1),
  ts: z.number().int().nonnegative(),
  chambers: z.array(z.string()).optional(),
});
export type ExperimentEvent = z.infer<typeof ExperimentEvent>;

/** A new restart epoch: milliseconds since 1970 in base 36 and 32 random bits (e.g. `mi9k2r1c-3f9a0c1d`). */
export function newEpoch(now = Date.now()): string {
  return `${now.toString(36)}-${randomBytes(4).toString('hex')}`;
}

/**
 * Encodes a data message (`ep` must be an Epoch: it is written unescaped). Hot path: builds the JSON text directly instead of running
 * zod per sample; the field order and shape are those of DataMessage (tested).
 */
export function encodeData(gw: string, seq: number, chamber: string, samples: readonly Sample[], ep?: string): string {
  let out = `{"v":1,"gw":${JSON.stringify(gw)},${ep === undefined ? '' : `"ep":"${ep}",`}"seq":${seq},"chamber":${JSON.stringify(chamber)},"samples":[`;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    if (i) out += ',';
    out += `{"tag":${JSON.stringify(s.tag)},"ts":${s.ts},"value":${JSON.stringify(s.value)},"q":"${s.q}"`;
    if (s.reason !== undefined) out += `,"reason":${JSON.stringify(s.reason)}`;
    out += '}';
  }
  return `${out}]}`;
}
