import { z } from 'zod';

/**
 * How closely a controlled variable (a measured tag with a `setpoint_of` partner) must
 * follow its setpoint: |value − setpoint| ≤ band, in the variable's own units. An
 * excursion counts (live alarm, fidelity report) only when it lasts at least
 * `min_duration_s`; once raised, it clears when the deviation is back below
 * band − hysteresis.
 *
 * Three tiers, each key optional in the upper two, merged per key:
 * device profile (`tolerances:`) < chamber in the instance config (`chambers[].tolerances`)
 * < treatment in an experiment's metadata.yaml (`treatments[].tolerances`).
 */
export const Tolerance = z
  .object({
    band: z
      .number()
      .finite()
      .positive()
      .describe(
        'Largest allowed |value − setpoint|, in the units of the controlled variable (e.g. 0.5 for ±0.5 K, 50 for ±50 ppm)',
      ),
    min_duration_s: z
      .number()
      .finite()
      .min(0)
      .max(7 * 86_400)
      .default(300)
      .describe('An excursion beyond the band counts only when it lasts at least this long, seconds (default 300)'),
    hysteresis: z
      .number()
      .finite()
      .min(0)
      .optional()
      .describe('A raised deviation clears only below band − hysteresis (default: 10 % of the band)'),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.hysteresis !== undefined && t.hysteresis >= t.band) {
      ctx.addIssue({
        code: 'custom',
        path: ['hysteresis'],
        message: `hysteresis ${t.hysteresis} must be smaller than the band ${t.band}`,
      });
    }
  });
export type Tolerance = z.infer<typeof Tolerance>;

/** An override: any subset of the fields, merged over the tier below. */
export const ToleranceOverride = z
  .object({
    band: z
      .number()
      .finite()
      .positive()
      .optional()
      .describe('Largest allowed |value − setpoint|, in the units of the controlled variable'),
    min_duration_s: z
      .number()
      .finite()
      .min(0)
      .max(7 * 86_400)
      .optional()
      .describe('Minimum excursion duration that counts, seconds'),
    hysteresis: z
      .number()
      .finite()
      .min(0)
      .optional()
      .describe('A raised deviation clears only below band − hysteresis'),
  })
  .strict();
export type ToleranceOverride = z.infer<typeof ToleranceOverride>;

/** Keyed by the controlled (measured) tag's name, e.g. `air_temperature`, `co2`. */
const ControlledName = z
  .string()
  .regex(/^[a-z][a-z0-9_]*$/, 'keys are the names of controlled (measured) tags, lower_snake_case');
export const ProfileTolerances = z.record(ControlledName, Tolerance);
export const ToleranceOverrides = z.record(ControlledName, ToleranceOverride);

/** The tolerance in force: hysteresis resolved. */
export interface EffectiveTolerance {
  band: number;
  min_duration_s: number;
  hysteresis: number;
  /** Which tier gave each field (`default`: none did, the default applies). */
  source: Record<ToleranceField, ToleranceTier | 'default'>;
}

type ToleranceTier = 'profile' | 'chamber' | 'treatment';
const FIELDS = ['band', 'min_duration_s', 'hysteresis'] as const;
type ToleranceField = (typeof FIELDS)[number];

export const DEFAULT_MIN_DURATION_S = 300;
export const DEFAULT_HYSTERESIS_FRACTION = 0.1;

/**
 * Merges the tiers for one controlled variable. Returns undefined when no tier gives a
 * band (the variable is not judged).
 */
export function effectiveTolerance(
  profile: Tolerance | undefined,
  chamber?: ToleranceOverride,
  treatment?: ToleranceOverride,
): EffectiveTolerance | undefined {
  const source: EffectiveTolerance['source'] = { band: 'default', min_duration_s: 'default', hysteresis: 'default' };
  const merged: ToleranceOverride = {};
  for (const [tier, t] of [
    ['profile', profile],
    ['chamber', chamber],
    ['treatment', treatment],
  ] as const) {
    if (!t) continue;
    for (const k of FIELDS)
      if (t[k] !== undefined) {
        merged[k] = t[k];
        source[k] = tier;
      }
  }
  if (merged.band === undefined) return undefined;
  const band = merged.band;
  const hysteresis = Math.min(merged.hysteresis ?? band * DEFAULT_HYSTERESIS_FRACTION, band * 0.99);
  return { band, min_duration_s: merged.min_duration_s ?? DEFAULT_MIN_DURATION_S, hysteresis, source };
}

/** A measured tag and the setpoint that controls it (from the profile's `setpoint_of`). */
export interface ControlledVariable {
  measured: string;
  setpoint: string;
}

/** Controlled variables of a profile's tags: every setpoint with a `setpoint_of` partner. */
export function controlledVariables(
  tags: ReadonlyArray<{ name: string; role?: string; setpoint_of?: string }>,
): ControlledVariable[] {
  const names = new Set(tags.map((t) => t.name));
  return tags
    .filter((t) => t.setpoint_of !== undefined && names.has(t.setpoint_of))
    .map((t) => ({ measured: t.setpoint_of!, setpoint: t.name }));
}

/** A controlled variable of one chamber with the tolerance in force. */
export interface JudgedVariable extends ControlledVariable {
  tolerance: EffectiveTolerance;
}

/**
 * The controlled variables of a chamber that have a tolerance, tiers merged: the
 * profile's `tolerances`, the chamber's (instance config) and, during a run, the
 * treatment's (experiment metadata.yaml).
 */
export function judgedVariables(
  tags: ReadonlyArray<{ name: string; role?: string; setpoint_of?: string }>,
  profile: Readonly<Record<string, Tolerance>>,
  chamber: Readonly<Record<string, ToleranceOverride>> = {},
  treatment: Readonly<Record<string, ToleranceOverride>> = {},
): JudgedVariable[] {
  const out: JudgedVariable[] = [];
  for (const v of controlledVariables(tags)) {
    const tolerance = effectiveTolerance(profile[v.measured], chamber[v.measured], treatment[v.measured]);
    if (tolerance) out.push({ ...v, tolerance });
  }
  return out;
}
