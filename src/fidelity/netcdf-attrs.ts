import type { AttrInput } from '../netcdf/format.ts';
import { setVariableAttributes } from '../netcdf/attributes.ts';
import type { FidelityReport } from './report-schema.ts';

/**
 * The report as attributes of each controlled variable of the run file (CF allows
 * attributes of its own beyond the standard ones). Numeric attributes hold one value per
 * chamber, in the order of the `chamber` dimension (NaN where the chamber's variable is
 * not judged), like the global `clock_offset_ms`. docs/experiments.md lists them.
 */
export function fidelityAttributes(
  report: FidelityReport,
  chambers: readonly string[],
): Record<string, Record<string, AttrInput>> {
  const names = new Set(Object.values(report.chambers).flatMap((c) => Object.keys(c.variables)));
  const out: Record<string, Record<string, AttrInput>> = {};
  for (const name of names) {
    const per = chambers.map((c) => report.chambers[c]?.variables[name]);
    const d = (f: (v: NonNullable<(typeof per)[number]>) => number | null | undefined) => ({
      type: 'double' as const,
      value: per.map((v) => (v ? (f(v) ?? NaN) : NaN)),
    });
    const setpoint = per.find((v) => v)!.setpoint;
    const text = (f: (v: NonNullable<(typeof per)[number]>) => string) =>
      chambers.map((c, i) => `${c}: ${per[i] ? f(per[i]) : 'not judged'}`).join('; ');
    out[name] = {
      fidelity_setpoint_variable: setpoint,
      tolerance_band: d((v) => v.tolerance.band),
      tolerance_min_duration_s: d((v) => v.tolerance.min_duration_s),
      tolerance_hysteresis: d((v) => v.tolerance.hysteresis),
      tolerance_source: text(
        (v) =>
          `band ${v.tolerance.source.band}, min_duration_s ${v.tolerance.source.min_duration_s}, hysteresis ${v.tolerance.source.hysteresis}`,
      ),
      fidelity_within_tolerance_percent: d((v) => v.within_tolerance_percent),
      fidelity_mean_deviation: d((v) => v.mean_deviation),
      fidelity_rms_deviation: d((v) => v.rms_deviation),
      fidelity_max_abs_deviation: d((v) => v.max_abs_deviation),
      fidelity_coverage_percent: d((v) => v.coverage_percent),
      fidelity_excursions: { type: 'int', value: per.map((v) => v?.excursions ?? -1) },
      fidelity_longest_excursion_s: d((v) => v.longest_excursion?.duration_s ?? 0),
      fidelity_longest_excursion: text((v) =>
        v.longest_excursion ? `${v.longest_excursion.start}/${v.longest_excursion.end}` : 'none',
      ),
      fidelity_report: 'fidelity.json beside this file; docs/experiments.md "Treatment fidelity"',
    };
  }
  return out;
}

/** Writes the attributes into the (finished) run file's header; see src/netcdf/attributes.ts for the safety rules. */
export function writeFidelityAttributes(path: string, report: FidelityReport, chambers: readonly string[]): number {
  const changes = fidelityAttributes(report, chambers);
  if (Object.keys(changes).length === 0) return 0;
  setVariableAttributes(path, changes);
  return Object.keys(changes).length;
}
