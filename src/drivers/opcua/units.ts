/**
 * OPC UA EngineeringUnits carry UNECE Recommendation 20 codes packed into `unitId`
 * (OPC UA Part 8 §5.6.3: each character shifted in, e.g. "CEL" = 0x43454C). Profiles use
 * UDUNITS strings; this maps the common ones, best effort, for `octopus browse`.
 */
const UNECE_TO_UDUNITS: Record<string, string> = {
  CEL: 'degree_Celsius',
  KEL: 'K',
  FAH: 'degree_Fahrenheit',
  P1: 'percent',
  C62: '1',
  '59': 'umol mol-1', // ppm: in gas analysers a mole fraction
  '61': 'nmol mol-1', // ppb
  PAL: 'Pa',
  HPA: 'hPa', // not an official code, seen in the field
  A97: 'hPa',
  KPA: 'kPa',
  MBR: 'mbar',
  BAR: 'bar',
  MTR: 'm',
  CMT: 'cm',
  MMT: 'mm',
  SEC: 's',
  MIN: 'min',
  HUR: 'h',
  DAY: 'day',
  WTT: 'W',
  KWT: 'kW',
  D54: 'W m-2',
  LUX: 'lx',
  MTS: 'm s-1',
  DD: 'degree',
  AMP: 'A',
  VLT: 'V',
  LTR: 'L',
  KGM: 'kg',
  GRM: 'g',
  HTZ: 'Hz',
  KWH: 'kW h',
  MQH: 'm3 h-1',
  E32: 'L h-1',
};

/** The UNECE code text of a packed unitId, e.g. 4408652 → "CEL". */
export function uneceCode(unitId: number): string {
  if (unitId <= 0) return '';
  let s = '';
  for (let v = unitId >>> 0; v > 0; v = Math.floor(v / 256)) s = String.fromCharCode(v & 0xff) + s;
  return s;
}

/** Packs a UNECE code into an OPC UA unitId. */
export function uneceUnitId(code: string): number {
  let v = 0;
  for (const ch of code) v = v * 256 + ch.charCodeAt(0);
  return v;
}

export function udunitsFromUnece(unitId: number): string | undefined {
  return UNECE_TO_UDUNITS[uneceCode(unitId)];
}

/** The UNECE code for a UDUNITS string, when one is known (the simulator advertises it). */
export function uneceFromUdunits(unit: string): string | undefined {
  return Object.entries(UNECE_TO_UDUNITS).find(([code, u]) => u === unit && code !== 'HPA')?.[0];
}
