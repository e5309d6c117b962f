import { loadCfTable } from '../config/cf-table.ts';
import { didYouMean, suggest } from '../core/suggest.ts';
import { knownUnitNames, parseUnit } from './parse.ts';
import { convertible, describeUnit, type Unit } from './unit.ts';

/** Spellings integrators bring from datasheets that udunits2 writes differently. */
const HINTS: Record<string, string> = {
  kWh: 'kW h',
  Wh: 'W h',
  MWh: 'MW h',
  Ah: 'A h',
  mAh: 'mA h',
  VAh: 'V A h',
  deg: 'degree',
  degs: 'degree',
  psig: 'psi',
  psia: 'psi',
  mho: 'S',
  micron: 'um',
  sec: 's',
  mins: 'min',
  hrs: 'h',
};

const ASCII: Array<[RegExp, string]> = [
  [/°C|℃/g, 'degree_Celsius'],
  [/°F|℉/g, 'degree_Fahrenheit'],
  [/°/g, 'degree'],
  [/[µμ]/g, 'u'],
  [/[Ω\u2126]/g, 'ohm'],
  [/·/g, '.'],
  [/¹/g, '1'],
  [/²/g, '2'],
  [/³/g, '3'],
  [/⁰/g, '0'],
  [/⁴/g, '4'],
  [/⁵/g, '5'],
  [/⁶/g, '6'],
  [/⁷/g, '7'],
  [/⁸/g, '8'],
  [/⁹/g, '9'],
  [/⁻|−/g, '-'],
  [/\u00a0/g, ' '],
];

/** The ASCII udunits2 spelling of a unit typed with symbols from a datasheet (m³ → m3, µ → u). */
export function asciiSpelling(text: string): string {
  return ASCII.reduce((s, [re, to]) => s.replace(re, to), text);
}

export type UnitCheck = { ok: true; unit: Unit } | { ok: false; message: string };

/**
 * Checks a tag's unit: a udunits2 unit string (the grammar and database of the udunits2
 * library), written in ASCII so every udunits2 encoding and CF checker reads it alike.
 */
export function checkUnit(text: string): UnitCheck {
  const parsed = parseUnit(text);
  if (!parsed.ok) {
    const id = parsed.unknown;
    let hint = '';
    if (id !== undefined) {
      const stem = id.split('_')[0]!;
      const direct = HINTS[id] ?? (stem !== id ? (HINTS[stem] ?? (parseUnit(stem).ok ? stem : undefined)) : undefined);
      hint = direct !== undefined ? ` (did you mean "${direct}"?)` : didYouMean(id, knownUnitNames());
    }
    const ascii = asciiSpelling(text);
    if (ascii !== text && parseUnit(ascii).ok) hint = ` (write it in ASCII: "${ascii}")`;
    return { ok: false, message: `unit "${text}" is not a udunits2 unit: ${parsed.error}${hint}` };
  }
  if (/[^\x20-\x7e]/.test(text)) {
    const ascii = asciiSpelling(text);
    return {
      ok: false,
      message: `unit "${text}": write units in ASCII ("${ascii}"); udunits2 reads non-ASCII symbols only in its UTF-8 mode, NetCDF tools using its ASCII or Latin-1 mode do not`,
    };
  }
  if (text !== text.trim()) return { ok: false, message: `unit "${text}" has leading or trailing spaces` };
  return { ok: true, unit: parsed.unit };
}

/**
 * Checks a CF standard_name against the shipped CF Standard Name Table: it exists (not
 * only as an alias of a renamed name) and the tag's unit converts to its canonical units.
 * Returns the problems as [field, message] pairs.
 */
export function checkStandardName(
  name: string,
  unitText: string | undefined,
  unit: Unit | undefined,
): Array<['standard_name' | 'unit', string]> {
  const cf = loadCfTable();
  const canonical = cf.canonical.get(name);
  if (canonical === undefined) {
    const now = cf.aliases.get(name);
    if (now !== undefined)
      return [
        [
          'standard_name',
          `standard_name "${name}" is an alias: CF Standard Name Table v${cf.version} now calls it "${now}"; use that name`,
        ],
      ];
    const close = suggest(name, cf.canonical.keys(), 3);
    return [
      [
        'standard_name',
        `standard_name "${name}" is not in the CF Standard Name Table v${cf.version}${close.length ? ` (did you mean ${close.map((c) => `"${c}"`).join(', ')}?)` : ''}`,
      ],
    ];
  }
  if (unitText === undefined)
    return [['unit', `standard_name "${name}" needs a unit that converts to its canonical units "${canonical}"`]];
  if (!unit) return [];
  const want = parseUnit(canonical);
  if (!want.ok) return [];
  if (!convertible(unit, want.unit)) {
    return [
      [
        'unit',
        `unit "${unitText}" (${describeUnit(unit)}) does not convert to "${canonical}" (${describeUnit(want.unit)}), the canonical units of standard_name "${name}"`,
      ],
    ];
  }
  return [];
}
