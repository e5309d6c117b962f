import type { LoadedConfig } from '../config/loader.ts';
import type { ExperimentMetadata } from '../experiments/schema.ts';
import type { ToleranceInForce } from './report-schema.ts';
import { controlledVariables, judgedVariables, type Tolerance, type ToleranceOverride } from './tolerance.ts';

/** What the configuration says about a chamber: its tags and the two lower tolerance tiers. */
export interface ChamberTolerances {
  tags: ReadonlyArray<{ name: string; role?: string; setpoint_of?: string }>;
  profile: Readonly<Record<string, Tolerance>>;
  chamber: Readonly<Record<string, ToleranceOverride>>;
}
/** The configured chambers' tolerances (undefined: a chamber the configuration does not know). */
export type ToleranceSource = (chamber: string) => ChamberTolerances | undefined;

export function toleranceSourceOf(loaded: Pick<LoadedConfig, 'chambers'>): ToleranceSource {
  const byId = new Map(
    loaded.chambers.map((c) => [
      c.chamber.id,
      { tags: c.tags, profile: c.profile.tolerances ?? {}, chamber: c.chamber.tolerances ?? {} },
    ]),
  );
  return (chamber) => byId.get(chamber);
}

/** One controlled variable of a chamber to judge. */
export interface PlannedVariable {
  measured: string;
  setpoint: string;
  tolerance: ToleranceInForce;
}

/** Per chamber: its treatment, what to judge, and what cannot be judged (with why). */
export type FidelityPlan = Record<
  string,
  { treatment?: string; variables: PlannedVariable[]; notJudged: Array<{ variable: string; reason: string }> }
>;

/**
 * The tolerances in force for each chamber of a run: the profile's, over them the
 * chamber's (instance configuration), over them the treatment's (metadata.yaml), field
 * by field, with where each field came from. `archived`: the run file's variables (a
 * controlled variable whose value or setpoint is not archived cannot be judged).
 */
export function planFidelity(
  chambers: readonly string[],
  source: ToleranceSource | undefined,
  metadata: Pick<ExperimentMetadata, 'treatments'> | undefined,
  archived: ReadonlySet<string>,
): FidelityPlan {
  const plan: FidelityPlan = {};
  for (const c of chambers) {
    const treatment = metadata?.treatments.find((t) => t.chamber === c);
    const entry: FidelityPlan[string] = {
      ...(treatment ? { treatment: treatment.name } : {}),
      variables: [],
      notJudged: [],
    };
    plan[c] = entry;
    const conf = source?.(c);
    if (!conf) continue;
    const judged = judgedVariables(conf.tags, conf.profile, conf.chamber, treatment?.tolerances ?? {});
    for (const j of judged) {
      const missing = [j.measured, j.setpoint].filter((n) => !archived.has(n));
      if (missing.length) {
        entry.notJudged.push({ variable: j.measured, reason: `not archived in the run file: ${missing.join(', ')}` });
        continue;
      }
      const { band, min_duration_s, hysteresis, source } = j.tolerance;
      entry.variables.push({
        measured: j.measured,
        setpoint: j.setpoint,
        tolerance: { band, min_duration_s, hysteresis, source: { ...source } },
      });
    }
    const judgedNames = new Set(judged.map((j) => j.measured));
    for (const v of controlledVariables(conf.tags)) {
      if (!judgedNames.has(v.measured))
        entry.notJudged.push({
          variable: v.measured,
          reason: 'no tolerance band in the profile, the chamber or the treatment',
        });
    }
  }
  return plan;
}
