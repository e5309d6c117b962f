import { mdCode, mdInline } from '../core/escape.ts';
import type { FidelityReport } from './report-schema.ts';

/** A number for a table: 4 significant digits, `—` for none. */
export const num = (x: number | null | undefined, digits = 4): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '—' : String(Number(x.toPrecision(digits)));
/** A percentage with one decimal; never rounded up to 100.0 % or down to 0.0 % (99.96 % shows as 99.9 %). */
export const pct = (x: number | null | undefined): string => {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  let r = Math.round(x * 10) / 10;
  if (r >= 100 && x < 100) r = 99.9;
  if (r <= 0 && x > 0) r = 0.1;
  return `${r.toFixed(1)} %`;
};

/**
 * The report as a "Treatment fidelity" section of the experiment README. Chamber,
 * variable and treatment names come from metadata and configuration: escaped for
 * Markdown (src/core/escape.ts).
 */
export function fidelityMarkdown(report: FidelityReport): string {
  const md = mdInline;
  const out: string[] = [];
  out.push(`## Treatment fidelity${report.run ? ` of run ${md(report.run)}` : ''}`, '');
  out.push(
    `How closely each controlled variable followed its setpoint in ${mdCode(report.file)} (${report.slots} slots of ${report.period_s} s${report.start ? `, ${md(report.start)} to ${md(report.end ?? '')}` : ''}). ` +
      '*Within* is the share of covered slots (value and setpoint both usable) with |value − setpoint| ≤ band; an excursion is a stretch beyond the band lasting at least the minimum duration, ending back within band − hysteresis. `fidelity.json` has every figure.',
    '',
  );
  const rows: string[][] = [];
  for (const [chamber, cf] of Object.entries(report.chambers)) {
    for (const [name, v] of Object.entries(cf.variables)) {
      const t = v.tolerance;
      const sources = [...new Set(Object.values(t.source))].join('/');
      rows.push([
        md(chamber),
        md(cf.treatment ?? ''),
        mdCode(name, true),
        `±${num(t.band)} ${md(v.units ?? '')} ≥ ${num(t.min_duration_s)} s (${md(sources)})`,
        pct(v.within_tolerance_percent),
        num(v.mean_deviation),
        num(v.rms_deviation),
        String(v.excursions),
        v.longest_excursion
          ? `${md(v.longest_excursion.start)} – ${md(v.longest_excursion.end)} (${num(v.longest_excursion.duration_s)} s)`
          : '—',
        pct(v.coverage_percent),
      ]);
    }
  }
  if (rows.length) {
    out.push(
      '| chamber | treatment | variable | tolerance | within | mean dev. | RMS dev. | excursions | longest excursion | coverage |',
    );
    out.push('|---|---|---|---|---:|---:|---:|---:|---|---:|');
    for (const r of rows) out.push(`| ${r.join(' | ')} |`);
    out.push('');
  } else out.push('_No controlled variable with a tolerance was archived in this run._', '');
  const notJudged = Object.entries(report.chambers).flatMap(([c, cf]) =>
    cf.not_judged.map((n) => `${md(c)} ${mdCode(n.variable)}: ${md(n.reason)}`),
  );
  if (notJudged.length) out.push(`Not judged: ${notJudged.join('; ')}.`, '');
  const groups = Object.entries(report.treatments);
  if (groups.length) {
    out.push('Per treatment (pooled over its chambers):', '');
    out.push('| treatment | chambers | variable | within | lowest (chamber) | mean dev. | RMS dev. | excursions |');
    out.push('|---|---|---|---:|---|---:|---:|---:|');
    for (const [name, g] of groups) {
      for (const [v, s] of Object.entries(g.variables)) {
        out.push(
          `| ${md(name)} | ${md(s.chambers.join(', '))} | ${mdCode(v, true)} | ${pct(s.within_tolerance_percent)} | ${pct(s.min_within_tolerance_percent)}${s.worst_chamber ? ` (${md(s.worst_chamber)})` : ''} | ${num(s.mean_deviation)} | ${num(s.rms_deviation)} | ${s.excursions} |`,
        );
      }
    }
    out.push('');
  }
  return out.join('\n');
}
