import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CompletenessReply } from '../api/api-schemas.ts';
import type { RunFileResolver } from '../api/routes/downloads.ts';
import { computeCompletenessAsync } from '../experiments/completeness.ts';
import type { Run } from '../experiments/schema.ts';
import type { Experiment } from '../experiments/store.ts';
import { num, pct } from '../fidelity/markdown.ts';
import type { ToleranceSource } from '../fidelity/plan.ts';
import { computeFidelityAsync } from '../fidelity/report.ts';
import { FidelityReport } from '../fidelity/report-schema.ts';
import { html, type Html } from './html.ts';

type Completeness = ReturnType<typeof CompletenessReply.parse>;
export interface RunReportSources {
  runFile?: RunFileResolver;
  tolerances?: ToleranceSource;
}

/** Gaps listed per variable on the page (the API and completeness.json have them all). */
const GAPS_SHOWN = 10;

function readJson<T>(file: string, parse: (x: unknown) => { success: boolean; data?: T }): T | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const r = parse(JSON.parse(readFileSync(file, 'utf8')));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The "Run reports" card of the experiment page for one run: treatment fidelity (table,
 * treatment groups, the deviation plot drawn by app.js from the API) and completeness
 * (counts and gaps). A stopped run shows the reports written at stop; an open run's are
 * computed only when asked (`compute`), since a long run takes seconds to read.
 */
export async function runReportsSection(
  e: Experiment,
  run: Run | undefined,
  o: RunReportSources & { compute?: boolean },
): Promise<Html> {
  if (!run) return html``;
  const m = e.metadata;
  const path = o.runFile?.(m.id, run) ?? join(e.dir, run.file);
  const hasFile = !!path && existsSync(path);
  const stopped = run.status === 'stopped';
  let fidelity =
    hasFile && stopped ? readJson(join(dirname(path), 'fidelity.json'), (x) => FidelityReport.safeParse(x)) : undefined;
  let completeness =
    hasFile && stopped
      ? readJson(join(dirname(path), 'completeness.json'), (x) => CompletenessReply.safeParse(x))
      : undefined;
  const canCompute = hasFile && (!fidelity || !completeness);
  if (canCompute && o.compute) {
    fidelity ??= await computeFidelityAsync(path, { source: o.tolerances, metadata: m, open: !stopped });
    completeness ??= { ...(await computeCompletenessAsync(path)), open: !stopped };
  }
  const runSelect = html`<form method="get" action="/experiments/${m.id}#reports-h" class="grid">
      <div class="field"><label for="reports-run">Run</label><select id="reports-run" name="run">${[...e.runs].reverse().map((r) => html`<option${r.id === run.id ? html` selected` : ''}>${r.id}</option>`)}</select></div>
      <button type="submit">Show</button></form>`;
  const computeLink = html`<a href="/experiments/${m.id}?run=${run.id}&amp;compute=1#reports-h" id="reports-compute">Compute them now</a>`;
  const pending = !hasFile
    ? html`<p>Run ${run.id} has no data file yet.</p>`
    : !stopped && !fidelity
      ? html`<p>Run ${run.id} is recording: its reports are written when it stops. ${computeLink} (from the file as it is).</p>`
      : canCompute
        ? html`<p>Some reports of run ${run.id} are not written yet (the run is being finished, or was recorded before they existed). ${computeLink}.</p>`
        : '';
  return html`<section aria-labelledby="reports-h" class="card" id="reports"><h2 id="reports-h">Run reports</h2>
    ${runSelect}${pending}
    ${fidelity ? fidelityHtml(m.id, run.id, fidelity) : ''}
    ${completeness ? completenessHtml(run.id, completeness) : ''}</section>`;
}

function fidelityHtml(id: string, runId: string, r: FidelityReport): Html {
  const rows = Object.entries(r.chambers).flatMap(([chamber, cf]) =>
    Object.entries(cf.variables).map(([name, v]) => ({ chamber, treatment: cf.treatment, name, v })),
  );
  const vars = [...new Set(rows.map((x) => x.name))];
  const notJudged = Object.entries(r.chambers).flatMap(([c, cf]) =>
    cf.not_judged.map((n) => `${c} ${n.variable}: ${n.reason}`),
  );
  return html`<h3 id="fidelity-h">Treatment fidelity${r.open ? ' (run still recording)' : ''}</h3>
    <p><small>Within: share of the covered slots (value and setpoint both usable) with |value − setpoint| ≤ band. An excursion lasts at least the minimum duration beyond the band and ends back within band − hysteresis. ${r.slots} slots of ${r.period_s} s.</small></p>
    ${
      rows.length
        ? html`<div class="scroll"><table id="fidelity-table"><caption class="sr-only">Treatment fidelity of run ${runId}</caption><thead><tr>
      <th scope="col">Chamber</th><th scope="col">Variable</th><th scope="col">Tolerance</th><th scope="col">Within</th><th scope="col">Mean dev.</th><th scope="col">RMS dev.</th><th scope="col">Longest excursion</th><th scope="col">Excursions</th><th scope="col">Coverage</th></tr></thead><tbody>
      ${rows.map(
        ({
          chamber,
          treatment,
          name,
          v,
        }) => html`<tr data-chamber="${chamber}" data-variable="${name}"${v.excursions ? html` class="excursion"` : ''}>
        <td>${chamber}${treatment ? html`<br><small>${treatment}</small>` : ''}</td><td><code>${name}</code></td>
        <td>±${num(v.tolerance.band)} ${v.units ?? ''}, ≥ ${num(v.tolerance.min_duration_s)} s<br><small>${[...new Set(Object.values(v.tolerance.source))].join(', ')}</small></td>
        <td class="within">${pct(v.within_tolerance_percent)}</td><td>${num(v.mean_deviation)}</td><td>${num(v.rms_deviation)}</td>
        <td class="longest">${v.longest_excursion ? html`<time datetime="${v.longest_excursion.start}">${v.longest_excursion.start}</time> – <time datetime="${v.longest_excursion.end}">${v.longest_excursion.end}</time> (${num(v.longest_excursion.duration_s)} s)` : '—'}</td>
        <td class="excursions">${v.excursions}</td><td>${pct(v.coverage_percent)}</td></tr>`,
      )}</tbody></table></div>`
        : html`<p>No controlled variable with a tolerance was archived in this run.</p>`
    }
    ${
      Object.keys(r.treatments).length
        ? html`<div class="scroll"><table id="fidelity-groups"><caption>Per treatment (pooled over its chambers)</caption><thead><tr><th scope="col">Treatment</th><th scope="col">Chambers</th><th scope="col">Variable</th><th scope="col">Within</th><th scope="col">Lowest</th><th scope="col">Mean dev.</th><th scope="col">RMS dev.</th><th scope="col">Excursions</th></tr></thead><tbody>
      ${Object.entries(r.treatments).flatMap(([name, g]) => Object.entries(g.variables).map(([v, s]) => html`<tr><td>${name}</td><td>${s.chambers.join(', ')}</td><td><code>${v}</code></td><td>${pct(s.within_tolerance_percent)}</td><td>${pct(s.min_within_tolerance_percent)}${s.worst_chamber ? ` (${s.worst_chamber})` : ''}</td><td>${num(s.mean_deviation)}</td><td>${num(s.rms_deviation)}</td><td>${s.excursions}</td></tr>`))}</tbody></table></div>`
        : ''
    }
    ${notJudged.length ? html`<p><small>Not judged: ${notJudged.join('; ')}.</small></p>` : ''}
    ${
      vars.length
        ? html`<form id="dev-form" data-experiment="${id}" data-run="${runId}" class="grid">
      <div class="field"><label for="dev-var">Deviation of</label><select id="dev-var">${vars.map((v) => html`<option value="${v}">${v}</option>`)}</select></div>
      <button type="submit">Draw deviation</button></form>
      <figure id="dev-plot" aria-live="polite"><figcaption>value − setpoint over time, with the tolerance band.</figcaption></figure>`
        : ''
    }`;
}

function completenessHtml(runId: string, c: Completeness): Html {
  const rows = Object.entries(c.chambers).flatMap(([chamber, { variables }]) =>
    Object.entries(variables).map(([name, v]) => ({ chamber, name, v })),
  );
  const gaps = rows.filter((x) => x.v.gaps.length);
  return html`<h3 id="completeness-h">Completeness${c.open ? ' (run still recording)' : ''}</h3>
    <p id="completeness-summary">${c.slots} slots${c.period_s ? ` of ${c.period_s} s` : ''}${c.start ? `, ${c.start} to ${c.end}` : ''}: ${pct(c.totals.completeness * 100)} of the expected values present (measured or held), ${c.totals.missing} missing.</p>
    <div class="scroll"><table id="completeness-table"><caption class="sr-only">Completeness of run ${runId}</caption><thead><tr><th scope="col">Chamber</th><th scope="col">Variable</th><th scope="col">Expected</th><th scope="col">Measured</th><th scope="col">Held</th><th scope="col">Missing</th><th scope="col">Offline</th><th scope="col">Bad quality</th><th scope="col">Not received</th><th scope="col">Complete</th></tr></thead><tbody>
      ${rows.map(({ chamber, name, v }) => html`<tr data-chamber="${chamber}" data-variable="${name}"><td>${chamber}</td><td><code>${name}</code></td><td>${v.expected}</td><td>${v.measured}</td><td>${v.held}</td><td class="missing">${v.missing.total}</td><td>${v.missing.offline}</td><td>${v.missing.bad_quality}</td><td>${v.missing.not_received + v.missing.unknown}</td><td>${pct(v.completeness * 100)}</td></tr>`)}</tbody></table></div>
    ${
      gaps.length
        ? html`<details id="completeness-gaps"><summary>Gaps (${gaps.reduce((n, g) => n + g.v.gaps.length + (g.v.gaps_omitted ?? 0), 0)})</summary><ul>
      ${gaps.map(({ chamber, name, v }) => html`<li>${chamber} <code>${name}</code>: ${v.gaps.slice(0, GAPS_SHOWN).map((g, i) => html`${i ? '; ' : ''}${g.start === g.end ? g.start : `${g.start} – ${g.end}`} (${g.slots} slot${g.slots === 1 ? '' : 's'}, ${g.cause.replace('_', ' ')})`)}${v.gaps.length + (v.gaps_omitted ?? 0) > GAPS_SHOWN ? ` and ${v.gaps.length + (v.gaps_omitted ?? 0) - GAPS_SHOWN} more (API)` : ''}</li>`)}</ul></details>`
        : ''
    }`;
}
