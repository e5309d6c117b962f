export { NetcdfWriter, readNetcdfHeader, type NcColumns, type NcRecord, type NcSchema, type NcVarSpec, type WriterOptions } from './writer.ts';
export { TimeGrid, QC, QC_FLAG_MEANINGS, QC_FLAG_VALUES, type GridStats, type GridVar, type TimeGridOptions } from './grid.ts';
export { archiveVarsFromTags, buildRunSchema, coverageAttributes, isoDuration, isoTime, CONVENTIONS, TIME_UNITS, type ArchiveVar, type RunInfo, type RunSchema } from './cf.ts';
export { encodeHeader, parseHeader, computeLayout, layoutOf, type Layout } from './header.ts';
export type { AttrInput, NcAttr, NcDim, NcHeader, NcType, NcVar, NcVersion } from './format.ts';
