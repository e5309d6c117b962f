import { z } from 'zod';

/** Quality of a sample, as carried on MQTT (`q`). */
export const Quality = z.enum(['good', 'uncertain', 'bad']);
export type Quality = z.infer<typeof Quality>;

export const SampleValue = z.union([z.number(), z.boolean(), z.string(), z.null()]);
export type SampleValue = z.infer<typeof SampleValue>;

/**
 * One value of one tag of one chamber at one instant. `ts` is the source time in ms
 * since the epoch (OPC UA SourceTimestamp, or poll time for Modbus). A failed read is
 * a `bad` sample with `value: null` and a `reason`, never a made-up value.
 */
export const Sample = z.object({
  chamber: z.string().min(1),
  tag: z.string().min(1),
  ts: z.number().int().nonnegative(),
  value: SampleValue,
  q: Quality,
  reason: z.string().optional(),
});
export type Sample = z.infer<typeof Sample>;

export function badSample(chamber: string, tag: string, ts: number, reason: string): Sample {
  return { chamber, tag, ts, value: null, q: 'bad', reason };
}
