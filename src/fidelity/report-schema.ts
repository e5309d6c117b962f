import { z } from 'zod';

/**
 * The treatment-fidelity report of a run (`runs/<run>/fidelity.json`, the API's
 * `GET …/runs/<run>/fidelity`): this schema is the single source of its type.
 * Formulas and the excursion definition: docs/experiments.md, "Treatment fidelity".
 */

/** Where a tolerance field came from: a configuration tier, the default, or the run file's attributes. */
export const ToleranceOrigin = z.enum(['profile', 'chamber', 'treatment', 'default', 'file']);
export type ToleranceOrigin = z.infer<typeof ToleranceOrigin>;

export const ToleranceInForce = z.object({
  band: z.number().describe("Largest allowed |value − setpoint|, in the variable's units"),
  min_duration_s: z.number().describe('An excursion counts when it lasts at least this long'),
  hysteresis: z.number().describe('An excursion ends when |value − setpoint| ≤ band − hysteresis'),
  source: z
    .object({ band: ToleranceOrigin, min_duration_s: ToleranceOrigin, hysteresis: ToleranceOrigin })
    .describe('Which tier gave each field'),
});
export type ToleranceInForce = z.infer<typeof ToleranceInForce>;

export const Excursion = z.object({
  start: z.string().describe('Time of its first slot beyond the band (ISO 8601 UTC)'),
  end: z.string().describe('Time of its last slot beyond band − hysteresis (ISO 8601 UTC)'),
  duration_s: z.number().describe('end − start + one period'),
  slots: z.number().int().describe('Usable slots in it'),
  peak_deviation: z.number().describe('The deviation (value − setpoint) of largest magnitude in it'),
});
export type Excursion = z.infer<typeof Excursion>;

export const VariableFidelity = z.object({
  setpoint: z.string().describe('The setpoint variable it is judged against'),
  units: z.string().optional(),
  tolerance: ToleranceInForce,
  slots: z.number().int().describe('Slots of the run'),
  covered: z
    .number()
    .int()
    .describe('Slots with both value and setpoint usable (qc good, uncertain or held, not fill)'),
  within: z.number().int().describe('Covered slots with |value − setpoint| ≤ band'),
  coverage_percent: z.number().describe('100 · covered / slots'),
  within_tolerance_percent: z.number().nullable().describe('100 · within / covered (null when nothing is covered)'),
  mean_deviation: z.number().nullable().describe('Mean of value − setpoint over the covered slots'),
  rms_deviation: z.number().nullable().describe('√(mean of (value − setpoint)²) over the covered slots'),
  max_abs_deviation: z.number().nullable(),
  excursions: z.number().int().describe('Excursions lasting at least min_duration_s'),
  excursion_time_s: z.number().describe('Sum of their durations'),
  longest_excursion: Excursion.nullable(),
  excursion_list: z
    .array(Excursion)
    .describe('The excursions in time order (at most 200; the rest in excursions_omitted)'),
  excursions_omitted: z.number().int().optional(),
});
export type VariableFidelity = z.infer<typeof VariableFidelity>;

export const ChamberFidelity = z.object({
  treatment: z.string().optional().describe('The treatment name of the chamber in the experiment metadata'),
  variables: z.record(z.string(), VariableFidelity),
  not_judged: z
    .array(z.object({ variable: z.string(), reason: z.string() }))
    .describe('Controlled variables that could not be judged, and why'),
});
export type ChamberFidelity = z.infer<typeof ChamberFidelity>;

export const GroupVariable = z.object({
  chambers: z.array(z.string()),
  covered: z.number().int(),
  within_tolerance_percent: z.number().nullable().describe('Pooled over the chambers: 100 · Σ within / Σ covered'),
  min_within_tolerance_percent: z.number().nullable().describe('Of the chamber that held it least'),
  worst_chamber: z.string().nullable(),
  mean_deviation: z.number().nullable().describe('Pooled over the covered slots of the chambers'),
  rms_deviation: z.number().nullable().describe('Pooled over the covered slots of the chambers'),
  coverage_percent: z.number(),
  excursions: z.number().int(),
});
export type GroupVariable = z.infer<typeof GroupVariable>;

export const TreatmentGroup = z.object({
  chambers: z.array(z.string()),
  variables: z.record(z.string(), GroupVariable),
});
export type TreatmentGroup = z.infer<typeof TreatmentGroup>;

export const FidelityReport = z.object({
  version: z.literal(1),
  file: z.string(),
  generated_at: z.string(),
  run: z.string().optional().describe('Global attribute id of the file (<experiment>/<run>)'),
  open: z.boolean().describe('Computed while the run was still recording (slots may still change)'),
  slots: z.number().int(),
  start: z.string().optional(),
  end: z.string().optional(),
  period_s: z.number(),
  chambers: z.record(z.string(), ChamberFidelity),
  treatments: z
    .record(z.string(), TreatmentGroup)
    .describe('Summary per treatment name, over the chambers that share it'),
});
export type FidelityReport = z.infer<typeof FidelityReport>;
