/**
 * Builds the netCDF schema of an experiment run: CF-1.11 timeSeries (orthogonal
 * multidimensional representation, time unlimited and outermost) + ACDD-1.3
 * discovery attributes.
 *
 * - time(time) double, seconds since 1970-01-01 00:00:00, calendar standard;
 * - station_name(chamber, name_strlen) char, cf_role timeseries_id;
 * - one variable per archived tag, (time, chamber): float (double for 32/64-bit
 *   integers and doubles, whose values a float would round), with standard_name,
 *   units, long_name, _FillValue, cell_methods "time: point";
 * - booleans are byte 0/1 with flag_values/flag_meanings (a categorical state, CF
 *   flags; 4× smaller than float and no unit to make up), fill -127;
 * - each variable's quality in `<name>_qc` byte, flag_values 0..5
 *   "good uncertain bad missing held offline" (QC in grid.ts), linked by
 *   ancillary_variables;
 * - per chamber clock offset and refused future samples as global attributes (run-file.ts);
 * - derived VPD and dew point (derived.ts) when the run has air temperature and relative
 *   humidity;
 * - every numeric data variable has units (`1` for counts and codes without a unit);
 * - keywords derived from the variables' standard names when the experiment gives none,
 *   facility attributes (institution, publisher, naming authority, platform…) from the
 *   instance configuration's `facility:` section.
 * Strings (and DateTime) are not archived: `skipped` lists them.
 */
import type { Tag } from '../../../config/profile-schema.ts';
import { NC_DEFAULT_FILL, type AttrInput } from '../../../netcdf/format.ts';
import { QC_FLAG_MEANINGS, QC_FLAG_VALUES, type GridVar } from './grid.ts';
import type { NcSchema, NcVarSpec } from '../../../netcdf/writer.ts';
import { derivedVarSpecs, type DerivedInputs } from './derived.ts';
import { VERSION } from '../../../core/version.ts';

export const TIME_UNITS = 'seconds since 1970-01-01 00:00:00';
export const CONVENTIONS = 'CF-1.11, ACDD-1.3';
export const QC_STANDARD_NAME = 'quality_flag';
export const STANDARD_NAME_VOCABULARY = 'CF Standard Name Table v83';
/** keywords_vocabulary of keywords derived from the variables' standard names. */
export const CF_KEYWORDS_VOCABULARY = 'CF:NetCDF COARDS Climate and Forecast Standard Names';

export interface ArchiveVar {
  /** Variable name (the tag name: lower_snake_case). */
  name: string;
  /** Sample tag it comes from (default: name). */
  tag?: string;
  description: string;
  unit?: string;
  standard_name?: string;
  kind: 'float' | 'double' | 'bool';
  /** The run's chambers whose controller provides it, when not all of them (attribute `measured_in_chambers`). */
  chambers?: readonly string[];
}

export interface RunInfo {
  /** ACDD id, e.g. "<experiment>/<run>". */
  id: string;
  title: string;
  summary: string;
  chambers: readonly string[];
  startMs: number;
  periodMs: number;
  creator_name: string;
  creator_email?: string;
  creator_url?: string;
  institution?: string;
  project?: string;
  license?: string;
  keywords?: string;
  naming_authority?: string;
  /** Facility attributes (acdd.ts): institution, publisher, platform… (the run's own win). */
  facility?: Record<string, AttrInput>;
  /** Derived VPD and dew point: their inputs (derived.ts). */
  derived?: DerivedInputs;
  /** Creation instant (default now). */
  createdMs?: number;
  /** More global attributes (win over the defaults). */
  extra?: Record<string, AttrInput>;
}

export const isoTime = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');

/** ISO 8601 duration of the sampling period, e.g. PT1S, PT0.5S, PT10M. */
export function isoDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `PT${ms / 3_600_000}H`;
  if (ms % 60_000 === 0) return `PT${ms / 60_000}M`;
  return `PT${ms / 1000}S`;
}

/** Which tags the archive keeps and how (numbers as float/double, bools as flags). */
export function archiveVarsFromTags(tags: readonly Tag[]): { vars: ArchiveVar[]; skipped: string[] } {
  const vars: ArchiveVar[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>();
  for (const t of tags) {
    if (seen.has(t.name)) continue;
    seen.add(t.name);
    const type = t.type as string;
    if (type === 'string' || type === 'String' || type === 'DateTime') {
      skipped.push(t.name);
      continue;
    }
    const kind =
      type === 'bool' || type === 'Boolean'
        ? 'bool'
        : ['int32', 'uint32', 'int64', 'uint64', 'float64', 'Int32', 'UInt32', 'Int64', 'UInt64', 'Double'].includes(
              type,
            )
          ? 'double'
          : 'float';
    vars.push({ name: t.name, description: t.description, unit: t.unit, standard_name: t.standard_name, kind });
  }
  return { vars, skipped };
}

/**
 * The archived variables of a run: the union of its chambers' tags (in chamber order,
 * `only` filtering when the experiment lists variables), each knowing which chambers have
 * it when some do not — those chambers' slots stay fill/missing and the completeness
 * report does not count them as expected.
 */
export function archiveVarsOfRun(
  chambers: readonly string[],
  tagsOf: (chamber: string) => readonly Tag[],
  only: readonly string[],
): { vars: ArchiveVar[]; skipped: string[] } {
  const wanted = (t: Tag) => only.length === 0 || only.includes(t.name);
  const has = new Map<string, string[]>();
  for (const c of chambers) for (const t of tagsOf(c)) if (wanted(t)) has.set(t.name, [...(has.get(t.name) ?? []), c]);
  const { vars, skipped } = archiveVarsFromTags(chambers.flatMap((c) => tagsOf(c).filter(wanted)));
  return {
    vars: vars.map((v) => {
      const by = has.get(v.tag ?? v.name) ?? [];
      return by.length < chambers.length ? { ...v, chambers: by } : v;
    }),
    skipped,
  };
}

export interface RunSchema {
  schema: NcSchema;
  /** Tag → variable mapping for TimeGrid. */
  gridVars: GridVar[];
}

export function buildRunSchema(run: RunInfo, vars: readonly ArchiveVar[]): RunSchema {
  if (run.chambers.length === 0) throw new Error('a run needs at least one chamber');
  const strlen = Math.max(1, ...run.chambers.map((c) => Buffer.byteLength(c, 'utf8')));
  const created = isoTime(run.createdMs ?? Date.now());
  const variables: NcVarSpec[] = [
    {
      name: 'time',
      type: 'double',
      dims: ['time'],
      attributes: { standard_name: 'time', long_name: 'time', units: TIME_UNITS, calendar: 'standard', axis: 'T' },
    },
    {
      name: 'station_name',
      type: 'char',
      dims: ['chamber', 'name_strlen'],
      data: run.chambers,
      attributes: { cf_role: 'timeseries_id', long_name: 'chamber id' },
    },
  ];
  const gridVars: GridVar[] = [];
  const names = new Set(['time', 'station_name']);
  for (const v of vars) {
    const qc = `${v.name}_qc`;
    for (const n of [v.name, qc]) {
      if (names.has(n)) throw new Error(`variable name ${n} used twice`);
      names.add(n);
    }
    const common: Record<string, AttrInput> = {
      ...(v.standard_name ? { standard_name: v.standard_name } : {}),
      long_name: v.description,
    };
    const attrs: Record<string, AttrInput> =
      v.kind === 'bool'
        ? { ...common, _FillValue: -127, valid_range: [0, 1], flag_values: [0, 1], flag_meanings: 'false true' }
        : { ...common, units: v.unit || '1', _FillValue: NC_DEFAULT_FILL[v.kind] };
    attrs.cell_methods = 'time: point';
    attrs.coordinates = 'station_name';
    if (v.chambers && v.chambers.length < run.chambers.length) attrs.measured_in_chambers = v.chambers.join(' ');
    attrs.ancillary_variables = qc;
    variables.push({
      name: v.name,
      type: v.kind === 'bool' ? 'byte' : v.kind,
      dims: ['time', 'chamber'],
      attributes: attrs,
    });
    variables.push({
      name: qc,
      type: 'byte',
      dims: ['time', 'chamber'],
      attributes: {
        standard_name: QC_STANDARD_NAME,
        long_name: `quality of ${v.name}`,
        flag_values: QC_FLAG_VALUES,
        flag_meanings: QC_FLAG_MEANINGS,
        coordinates: 'station_name',
      },
    });
    gridVars.push({ tag: v.tag ?? v.name, variable: v.name, qcVariable: qc });
  }
  if (run.derived) {
    for (const spec of derivedVarSpecs(run.derived, run.chambers)) {
      if (names.has(spec.name))
        throw new Error(`variable name ${spec.name} used twice (a tag has the name of a derived variable)`);
      names.add(spec.name);
      variables.push(spec);
    }
  }
  const standardNames = [
    ...new Set(
      variables
        .map((v) => v.attributes?.standard_name)
        .filter((x): x is string => typeof x === 'string' && x !== 'time' && x !== QC_STANDARD_NAME),
    ),
  ];
  const keywords: Record<string, string> = run.keywords
    ? { keywords: run.keywords }
    : standardNames.length
      ? { keywords: standardNames.join(', '), keywords_vocabulary: CF_KEYWORDS_VOCABULARY }
      : {};
  const globals: Record<string, AttrInput> = {
    Conventions: CONVENTIONS,
    featureType: 'timeSeries',
    cdm_data_type: 'Station',
    title: run.title,
    summary: run.summary,
    id: run.id,
    ...(run.naming_authority ? { naming_authority: run.naming_authority } : {}),
    creator_name: run.creator_name,
    ...(run.creator_email ? { creator_email: run.creator_email } : {}),
    ...(run.creator_url ? { creator_url: run.creator_url } : {}),
    ...(run.institution ? { institution: run.institution } : {}),
    ...(run.project ? { project: run.project } : {}),
    ...keywords,
    license: run.license ?? 'CC-BY-4.0',
    standard_name_vocabulary: STANDARD_NAME_VOCABULARY,
    source: `octopus ${VERSION} climate-chamber gateway: PLC values over OPC UA / Modbus, archived from MQTT`,
    processing_level:
      'values as read from the chamber controllers, on a regular time grid (nearest sample per slot), quality flagged; derived variables computed from them',
    comment:
      'Each variable has a quality flag variable <name>_qc (0 good, 1 uncertain, 2 bad, 3 missing, 4 held = last good value carried, 5 offline); use values with flag 0 (or 0 and 4) for analysis.',
    product_version: VERSION,
    date_created: created,
    date_modified: created,
    date_metadata_modified: created,
    history: `${created} created by octopus ${VERSION}`,
    time_coverage_start: isoTime(run.startMs),
    time_coverage_end: isoTime(run.startMs),
    time_coverage_duration: 'PT0S',
    time_coverage_resolution: isoDuration(run.periodMs),
    ...run.facility,
    ...run.extra,
  };
  return {
    schema: {
      globalAttributes: globals,
      dimensions: [
        { name: 'time', size: 'unlimited' },
        { name: 'chamber', size: run.chambers.length },
        { name: 'name_strlen', size: strlen },
      ],
      variables,
    },
    gridVars,
  };
}

/** Attributes to set when a run's file is flushed or closed (`issued`: closed, the data are final). */
export function coverageAttributes(
  startMs: number,
  lastRecordMs: number,
  nowMs = Date.now(),
  issued = false,
): Record<string, AttrInput> {
  const now = isoTime(nowMs);
  return {
    time_coverage_end: isoTime(lastRecordMs),
    time_coverage_duration: isoSpan(Math.max(0, lastRecordMs - startMs)),
    date_modified: now,
    date_metadata_modified: now,
    ...(issued ? { date_issued: now } : {}),
  };
}

/** ISO 8601 duration of a span, e.g. P2DT3H4M5S, PT0.5S. */
export function isoSpan(ms: number): string {
  const d = Math.floor(ms / 86_400_000);
  let rest = ms - d * 86_400_000;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  const s = (rest - m * 60_000) / 1000;
  const time = `${h ? `${h}H` : ''}${m ? `${m}M` : ''}${s ? `${s}S` : ''}`;
  return `P${d ? `${d}D` : ''}${time ? `T${time}` : d ? '' : 'T0S'}`;
}
