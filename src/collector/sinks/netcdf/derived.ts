/**
 * Derived variables of a run file: water vapour saturation deficit (VPD) and dew point
 * temperature, computed from the chamber's air temperature and relative humidity (the
 * archive variables whose standard_name is `air_temperature` and `relative_humidity`).
 *
 * Formula: the Magnus form of the saturation vapour pressure over liquid water with the
 * coefficients of Alduchov & Eskridge (1996, "Improved Magnus form approximation of
 * saturation vapor pressure", J. Appl. Meteor. 35, 601–609, their AERK fit):
 *
 *   e_s(T) = 610.94 Pa · exp(17.625 · T / (T + 243.04))          T in °C
 *   VPD    = e_s(T) · (1 − RH/100)                                 (e = RH/100 · e_s)
 *   Td     = 243.04 · γ / (17.625 − γ),  γ = ln(RH/100) + 17.625 · T / (T + 243.04)
 *
 * Valid for −40 °C ≤ T ≤ 50 °C (relative error of e_s below 0.4 % there, against the
 * Wexler/Hyland–Wexler reference values); outside that range, or with RH above 100 %,
 * the value is kept but flagged uncertain.
 *
 * Quality (`<derived>_qc`, the flags of grid.ts): the worse of the two inputs' flags, in
 * the order good < held < uncertain < bad < missing < offline; the value is `_FillValue`
 * when either input has no value (and the flag is then at least `missing`), and the dew
 * point is `bad` (fill) when RH ≤ 0 (no dew point exists).
 *
 * The values are computed whenever records are written to the file (run-file.ts hooks
 * them into the grid's store), so late and patched samples update them too.
 */
import { getValue, setValue, type NcType } from '../../../netcdf/format.ts';
import { parseUnit } from '../../../units/parse.ts';
import { convert, convertible, type Unit } from '../../../units/unit.ts';
import type { ArchiveVar } from './cf.ts';
import { QC, QC_FLAG_MEANINGS, QC_FLAG_VALUES } from './grid.ts';
import type { NcVarSpec } from '../../../netcdf/writer.ts';

export const VPD_VAR = 'vapour_pressure_deficit';
export const DEW_POINT_VAR = 'dew_point_temperature';
export const VPD_UNITS = 'kPa';
export const DEW_POINT_UNITS = 'degree_Celsius';

/** Magnus coefficients of Alduchov & Eskridge (1996). */
export const MAGNUS = { e0Pa: 610.94, a: 17.625, bC: 243.04 } as const;
/** Validity range of the fit in air temperature, °C. */
export const VALID_T_C = [-40, 50] as const;

/** Saturation vapour pressure over water, Pa, at `tC` °C. */
export function saturationVapourPressurePa(tC: number): number {
  return MAGNUS.e0Pa * Math.exp((MAGNUS.a * tC) / (tC + MAGNUS.bC));
}

/** Vapour pressure deficit, kPa, from air temperature (°C) and relative humidity (%). */
export function vpdKPa(tC: number, rhPercent: number): number {
  return (saturationVapourPressurePa(tC) * (1 - rhPercent / 100)) / 1000;
}

/** Dew point temperature, °C, from air temperature (°C) and relative humidity (%); NaN when RH ≤ 0. */
export function dewPointC(tC: number, rhPercent: number): number {
  if (!(rhPercent > 0)) return NaN;
  const g = Math.log(rhPercent / 100) + (MAGNUS.a * tC) / (tC + MAGNUS.bC);
  return (MAGNUS.bC * g) / (MAGNUS.a - g);
}

/** Which archive variables feed the derived ones, and for which chambers. */
export interface DerivedInputs {
  temperature: { name: string; unit: string };
  humidity: { name: string; unit: string };
  /** Per chamber of the run (in order): whether its profile has both inputs. */
  chambers: readonly boolean[];
}

const FORMULA =
  'Magnus form, Alduchov & Eskridge (1996) coefficients: e_s = 610.94 Pa * exp(17.625 T / (T + 243.04)), T in degC; valid -40 degC <= T <= 50 degC';
export const DERIVED_REFERENCE =
  'Alduchov, O. A. and Eskridge, R. E. (1996): Improved Magnus form approximation of saturation vapor pressure. J. Appl. Meteor. 35, 601-609, doi:10.1175/1520-0450(1996)035<0601:IMFAOS>2.0.CO;2';

/**
 * The derived inputs of a run: the first archive variables with standard_name
 * air_temperature and relative_humidity whose units convert to °C and %; chambers whose
 * tags include both. Undefined when no chamber has both.
 */
export function derivedInputs(
  vars: readonly ArchiveVar[],
  chambers: readonly string[],
  tagsOf: (chamber: string) => readonly string[],
): DerivedInputs | undefined {
  const pick = (sn: string, want: string) =>
    vars.find((v) => v.kind !== 'bool' && v.standard_name === sn && v.unit !== undefined && unitOk(v.unit, want));
  const t = pick('air_temperature', 'degree_Celsius');
  const rh = pick('relative_humidity', 'percent');
  if (!t || !rh) return undefined;
  const has = chambers.map((c) => {
    const tags = new Set(tagsOf(c));
    return tags.has(t.tag ?? t.name) && tags.has(rh.tag ?? rh.name);
  });
  if (!has.some(Boolean)) return undefined;
  return { temperature: { name: t.name, unit: t.unit! }, humidity: { name: rh.name, unit: rh.unit! }, chambers: has };
}

function unitOk(text: string, want: string): boolean {
  const a = parseUnit(text);
  const b = parseUnit(want);
  return a.ok && b.ok && convertible(a.unit, b.unit);
}

/** The four record variables (values and flags) the derived inputs add to the run schema. */
export function derivedVarSpecs(d: DerivedInputs, chambers: readonly string[]): NcVarSpec[] {
  const inputs = `${d.temperature.name} ${d.humidity.name}`;
  const which = `Computed for the chambers ${chambers.filter((_c, i) => d.chambers[i]).join(', ')} (whose profile has both inputs); other chambers: fill, flag missing.`;
  const qcComment =
    'worst of the input flags (good < held < uncertain < bad < missing < offline); uncertain outside -40..50 degC or above 100 % RH';
  const qc = (of: string): NcVarSpec => ({
    name: `${of}_qc`,
    type: 'byte',
    dims: ['time', 'chamber'],
    attributes: {
      standard_name: 'quality_flag',
      long_name: `quality of ${of}`,
      flag_values: QC_FLAG_VALUES,
      flag_meanings: QC_FLAG_MEANINGS,
      coordinates: 'station_name',
      comment: `${qcComment}; inputs ${d.temperature.name}_qc and ${d.humidity.name}_qc`,
    },
  });
  return [
    {
      name: VPD_VAR,
      type: 'float',
      dims: ['time', 'chamber'],
      attributes: {
        standard_name: 'water_vapor_saturation_deficit_in_air',
        long_name: 'vapour pressure deficit of the chamber air',
        units: VPD_UNITS,
        _FillValue: 9.969209968386869e36,
        cell_methods: 'time: point',
        coordinates: 'station_name',
        ancillary_variables: `${VPD_VAR}_qc`,
        source: `derived from ${inputs}`,
        comment: `VPD = e_s(T) * (1 - RH/100); ${FORMULA}. ${which}`,
        references: DERIVED_REFERENCE,
      },
    },
    qc(VPD_VAR),
    {
      name: DEW_POINT_VAR,
      type: 'float',
      dims: ['time', 'chamber'],
      attributes: {
        standard_name: 'dew_point_temperature',
        long_name: 'dew point temperature of the chamber air',
        units: DEW_POINT_UNITS,
        _FillValue: 9.969209968386869e36,
        cell_methods: 'time: point',
        coordinates: 'station_name',
        ancillary_variables: `${DEW_POINT_VAR}_qc`,
        source: `derived from ${inputs}`,
        comment: `Td = 243.04 * g / (17.625 - g), g = ln(RH/100) + 17.625 T / (T + 243.04), T in degC (inverse of e_s); ${FORMULA}. RH <= 0: fill, flag bad. ${which}`,
        references: DERIVED_REFERENCE,
      },
    },
    qc(DEW_POINT_VAR),
  ];
}

/** Worse-first order of the flags: good < held < uncertain < bad < missing < offline. */
const RANK = new Int8Array(8);
RANK[QC.good] = 0;
RANK[QC.held] = 1;
RANK[QC.uncertain] = 2;
RANK[QC.bad] = 3;
RANK[QC.missing] = 4;
RANK[QC.offline] = 5;
const worse = (a: number, b: number): number => {
  const ra = a >= 0 && a < 6 ? RANK[a]! : 4;
  const rb = b >= 0 && b < 6 ? RANK[b]! : 4;
  return ra >= rb ? (a >= 0 && a < 6 ? a : QC.missing) : b >= 0 && b < 6 ? b : QC.missing;
};
/** A flag that claims a value (good, held, uncertain) on a fill value becomes missing. */
const noValue = (q: number): number => (RANK[q]! < RANK[QC.bad]! ? QC.missing : q);

interface Slot {
  off: number;
  type: NcType;
  fill: number;
}
type RecordVar = (name: string) => { off: number; type: NcType; fill: number } | undefined;

/**
 * Computes the derived cells of whole records in place: `rec` holds `n` records of
 * `recsize` bytes laid out as in the file. Returned by `derivedComputer` for a schema.
 */
export type DeriveRecords = (rec: Buffer) => void;

export function derivedComputer(d: DerivedInputs, recordVar: RecordVar, recsize: number): DeriveRecords {
  const need = (name: string): Slot => {
    const v = recordVar(name);
    if (!v) throw new Error(`derived variables: record variable ${name} is not in the file`);
    return { off: v.off, type: v.type, fill: v.type === 'float' ? Math.fround(v.fill) : v.fill };
  };
  const tv = need(d.temperature.name);
  const hv = need(d.humidity.name);
  const tq = recordVar(`${d.temperature.name}_qc`);
  const hq = recordVar(`${d.humidity.name}_qc`);
  const vpd = need(VPD_VAR);
  const vpdQ = need(`${VPD_VAR}_qc`);
  const dew = need(DEW_POINT_VAR);
  const dewQ = need(`${DEW_POINT_VAR}_qc`);
  const tSize = tv.type === 'double' ? 8 : 4;
  const hSize = hv.type === 'double' ? 8 : 4;
  const tConv = linear(d.temperature.unit, 'degree_Celsius');
  const hConv = linear(d.humidity.unit, 'percent');
  const nc = d.chambers.length;
  const fill = vpd.fill;
  return (rec) => {
    const dv = new DataView(rec.buffer, rec.byteOffset, rec.length);
    const n = Math.floor(rec.length / recsize);
    for (let k = 0; k < n; k++) {
      const base = k * recsize;
      for (let c = 0; c < nc; c++) {
        let vVpd = NaN;
        let vDew = NaN;
        let qVpd: number = QC.missing;
        let qDew: number = QC.missing;
        if (d.chambers[c]) {
          const t = getValue(dv, base + tv.off + c * tSize, tv.type);
          const h = getValue(dv, base + hv.off + c * hSize, hv.type);
          const qt = tq ? dv.getInt8(base + tq.off + c) : QC.good;
          const qh = hq ? dv.getInt8(base + hq.off + c) : QC.good;
          let q = worse(qt, qh);
          if (t === tv.fill || h === hv.fill || Number.isNaN(t) || Number.isNaN(h)) {
            qVpd = qDew = noValue(q);
          } else {
            const tC = t * tConv.k + tConv.b;
            const rh = h * hConv.k + hConv.b;
            if ((tC < VALID_T_C[0] || tC > VALID_T_C[1] || rh > 100) && RANK[q]! < RANK[QC.uncertain]!)
              q = QC.uncertain;
            vVpd = vpdKPa(tC, rh);
            qVpd = q;
            vDew = dewPointC(tC, rh);
            qDew = Number.isNaN(vDew) ? worse(q, QC.bad) : q;
          }
        }
        setValue(dv, base + vpd.off + c * 4, 'float', Number.isNaN(vVpd) ? fill : vVpd);
        dv.setInt8(base + vpdQ.off + c, qVpd);
        setValue(dv, base + dew.off + c * 4, 'float', Number.isNaN(vDew) ? fill : vDew);
        dv.setInt8(base + dewQ.off + c, qDew);
      }
    }
  };
}

/** x in `from` → k·x + b in `to` (linear units: temperatures with an offset included). */
function linear(from: string, to: string): { k: number; b: number } {
  const a = parseUnit(from);
  const z = parseUnit(to);
  if (!a.ok || !z.ok) throw new Error(`derived variables: cannot read unit "${from}" or "${to}"`);
  const ua: Unit = a.unit;
  const uz: Unit = z.unit;
  if (!convertible(ua, uz)) throw new Error(`derived variables: unit "${from}" does not convert to "${to}"`);
  const b = convert(0, ua, uz);
  return { k: convert(1, ua, uz) - b, b };
}
