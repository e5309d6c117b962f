import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { mdBlock, mdCode, mdInline, shComment, shQuote } from '../core/escape.ts';
import { filesUnder } from '../core/files.ts';
import type { ExperimentMetadata, Run } from './schema.ts';

/** A variable archived for the experiment, as the chambers' profiles describe it. */
export interface VariableInfo {
  name: string;
  unit?: string;
  standard_name?: string;
  description: string;
  chambers: string[];
}

export function citation(e: ExperimentMetadata, year: number): string {
  if (e.citation) return e.citation;
  const people = [e.principal_investigator, ...e.contributors].map((p) => p.name).join(', ');
  return `${people} (${year}). ${e.title}. Ecotron climate-chamber experiment ${e.id}${e.project ? `, project ${e.project}` : ''}. Dataset, licence ${e.licence}.`;
}

/** A Markdown table; every cell is already Markdown (from {@link mdInline} or {@link mdCode} with `inTable`). */
const table = (head: string[], rows: string[][]) =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join(
    '\n',
  );

/**
 * README.md of an experiment folder: what, who, chambers, variables with units, files,
 * how to cite. Every value from metadata or profiles is escaped for Markdown (src/core/escape.ts):
 * a title or name cannot add a heading, a link, HTML or a table column.
 */
/**
 * README.md of an experiment. `completeness`: the markdown sections of the closed runs'
 * reports that exist (completenessMarkdown of src/experiments/completeness.ts, then
 * fidelityMarkdown of src/fidelity/markdown.ts, per run).
 */
export function readme(
  e: ExperimentMetadata,
  runs: Run[],
  variables: VariableInfo[],
  files: Array<{ path: string; bytes: number }>,
  now = new Date(),
  completeness: string[] = [],
): string {
  const pi = e.principal_investigator;
  const md = mdInline;
  return [
    `# ${md(e.title)}`,
    '',
    `Experiment ${mdCode(e.id)}${e.project ? ` of project ${md(e.project)}` : ''}. This file is generated from \`metadata.yaml\`; edit that file, not this one.`,
    '',
    e.description ? mdBlock(e.description) : '_No description yet._',
    '',
    '## Who',
    '',
    `- Principal investigator: ${md(pi.name)}${pi.institution ? `, ${md(pi.institution)}` : ''}${pi.email ? ` <${md(pi.email)}>` : ''}${pi.orcid ? ` (ORCID ${md(pi.orcid)})` : ''}`,
    ...e.contributors.map(
      (c) =>
        `- ${md(c.name)}${c.institution ? `, ${md(c.institution)}` : ''}${c.orcid ? ` (ORCID ${md(c.orcid)})` : ''}`,
    ),
    '',
    '## Chambers and treatments',
    '',
    table(
      ['chamber', 'treatment', 'setpoints'],
      e.chambers.map((c) => {
        const t = e.treatments.find((x) => x.chamber === c);
        return [
          md(c),
          t ? md(`${t.name}${t.description ? ` — ${t.description}` : ''}`) : '—',
          t
            ? md(
                Object.entries(t.setpoints)
                  .map(([k, v]) => `${k} = ${v}`)
                  .join(', '),
              )
            : '',
        ];
      }),
    ),
    '',
    '## Variables',
    '',
    `Sampled on a regular grid of ${e.sampling_period_s} s; missing samples are \`_FillValue\`, each variable has a quality flag variable (\`<name>_qc\`: 0 good, 1 uncertain, 2 bad, 3 missing = not received, 4 held = last good value carried, 5 offline).`,
    '',
    table(
      ['variable', 'units', 'CF standard name', 'description', 'chambers'],
      variables.map((v) => [
        mdCode(v.name, true),
        md(v.unit ?? ''),
        md(v.standard_name ?? ''),
        md(v.description),
        md(v.chambers.join(', ')),
      ]),
    ),
    '',
    'Derived in the run files for chambers with air temperature and relative humidity: `vapour_pressure_deficit` (kPa, CF `water_vapor_saturation_deficit_in_air`) and `dew_point_temperature` (degree_Celsius), Magnus form with the Alduchov & Eskridge (1996) coefficients, each with its `_qc`. Each stopped run also has `<run file>_daily.nc`: mean, minimum, maximum and count per chamber, variable and UTC day of the values flagged good or held.',
    '',
    '## Runs',
    '',
    runs.length
      ? table(
          ['run', 'status', 'start (UTC)', 'stop (UTC)', 'file'],
          runs.map((r) => [md(r.id), md(r.status), md(r.start), md(r.stop ?? ''), md(r.file)]),
        )
      : '_No run yet._',
    '',
    ...completeness.flatMap((section) => [section.trimEnd(), '']),
    '## Files',
    '',
    files.length
      ? table(
          ['file', 'bytes'],
          files.map((f) => [md(f.path), String(f.bytes)]),
        )
      : '_No data files yet._',
    '',
    'Integrity: `sha256sum -c MANIFEST.sha256`. Copy the folder to your machine: `sh sync.sh <destination>`.',
    'Data formats: NetCDF-3 classic (CF-1.11, ACDD-1.3), readable with ncdump, xarray, netCDF4, R ncdf4, Panoply.',
    '',
    '## How to cite',
    '',
    mdInline(citation(e, now.getUTCFullYear())),
    '',
    `Licence: ${md(e.licence)}.`,
    '',
  ].join('\n');
}

/** dmp.md: the data-management-plan excerpt for the experiment (metadata escaped for Markdown). */
export function dmp(e: ExperimentMetadata, variables: VariableInfo[], runs: Run[], bytes: number): string {
  const perDay = (86_400 / e.sampling_period_s) * variables.length * e.chambers.length * 5; // float32 value + byte flag
  return [
    `# Data management plan — ${mdInline(e.title)} (${mdCode(e.id)})`,
    '',
    '## Data types and formats',
    '',
    `- Time series of ${variables.length} variables from ${e.chambers.length} climate chamber(s), measured by the chambers' controllers and read by the Octopus gateway.`,
    '- Format: NetCDF-3 classic / 64-bit offset, CF-1.11 and ACDD-1.3 conventions, one file per run; metadata in YAML; documentation in Markdown.',
    '- Every value carries a quality flag; gaps are fill values, never interpolated.',
    '',
    '## Volumes',
    '',
    `- About ${(perDay / 1e6).toFixed(1)} MB per day of run at a ${e.sampling_period_s} s grid; ${runs.length} run(s) so far, ${(bytes / 1e6).toFixed(1)} MB in this folder.`,
    '',
    '## Storage, backup and integrity',
    '',
    '- Stored on the facility NAS in this folder; written locally first while the NAS is unavailable and moved when it returns.',
    '- `MANIFEST.sha256` lists a SHA-256 checksum of every data file, updated when a run closes.',
    '',
    '## Access and licence',
    '',
    `- Licence: ${mdInline(e.licence)}. Access through the facility web page and API (token-based, every download logged).`,
    '',
    '## Retention',
    '',
    '- Kept for at least 10 years after the end of the project, per facility policy.',
    '',
  ].join('\n');
}

/**
 * sync.sh: copies the experiment folder to a researcher's machine with rsync. Values from
 * metadata and configuration (id, title, host, NAS folder) are shell-quoted (`'…'` with
 * `'\\''`) or, in comments, kept on one line, so nothing in them can run as a command.
 */
export function syncScript(e: ExperimentMetadata, host: string, folder: string): string {
  return [
    '#!/bin/sh',
    `# Copies experiment ${shComment(e.id)} ("${shComment(e.title)}") to your machine and checks it.`,
    `# usage: sh sync.sh [destination folder]   (default: ./${shComment(e.id)})`,
    'set -eu',
    `default_dest=${shQuote(`./${e.id}`)}`,
    `nas_folder=${shQuote(`${host}:${folder}`)}`,
    'DEST="${1:-$default_dest}"',
    'SRC="${OCTOPUS_NAS:-$nas_folder}"',
    'mkdir -p -- "$DEST"',
    'rsync -av --partial --exclude \'*.part\' -- "$SRC/" "$DEST/"',
    'cd -- "$DEST" && sha256sum -c MANIFEST.sha256',
    '',
  ].join('\n');
}

export async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Data files of a folder (the runs' NetCDF files, their completeness and fidelity reports), relative paths. */
export function dataFiles(dir: string): Array<{ path: string; bytes: number }> {
  return filesUnder(join(dir, 'runs'))
    .filter((p) => p.endsWith('.nc') || basename(p) === 'completeness.json' || basename(p) === 'fidelity.json')
    .map((p) => ({ path: relative(dir, p), bytes: statSync(p).size }));
}

export async function manifest(dir: string, extra: string[] = ['metadata.yaml']): Promise<string> {
  const files = [...extra, ...dataFiles(dir).map((f) => f.path)];
  const lines: string[] = [];
  for (const f of files) lines.push(`${await sha256(join(dir, f))}  ${f}`);
  return `${lines.join('\n')}\n`;
}
