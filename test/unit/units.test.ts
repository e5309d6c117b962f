/**
 * Octopus's own udunits2 unit parser (src/units) reads units as the real udunits2 does:
 * same grammar, same database (shipped in resources/udunits), same verdicts and the same
 * conversion factors — checked against the Debian udunits2 tool on every unit of the
 * profile corpus, every canonical unit of the CF table, the bad-profile fixtures and a
 * list of datasheet spellings.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadProfiles, PROJECT_ROOT } from '../../src/config/profiles.ts';
import { checkStandardName, checkUnit } from '../../src/units/check.ts';
import { parseUnit } from '../../src/units/parse.ts';
import { convert, convertible, type Unit } from '../../src/units/unit.ts';
import { loadCfTable, udunits2Convert } from '../support/cf.ts';

const unit = (text: string): Unit => {
  const r = parseUnit(text);
  if (!r.ok) throw new Error(`${text}: ${r.error}`);
  return r.unit;
};

describe('the udunits2 unit parser', () => {
  it('converts values between units with prefixes, powers, products, quotients and offsets', () => {
    expect(convert(25, unit('degree_Celsius'), unit('K'))).toBeCloseTo(298.15, 10);
    expect(convert(77, unit('degF'), unit('degC'))).toBeCloseTo(25, 10);
    expect(convert(1, unit('kPa'), unit('hPa'))).toBeCloseTo(10, 10);
    expect(convert(415, unit('ppm'), unit('1'))).toBeCloseTo(415e-6, 15);
    expect(convert(415, unit('umol mol-1'), unit('mol/mol'))).toBeCloseTo(415e-6, 15);
    expect(convert(1, unit('kW h'), unit('J'))).toBeCloseTo(3.6e6, 3);
    expect(convert(2, unit('h'), unit('min'))).toBeCloseTo(120, 10);
    expect(convert(1, unit('km/h'), unit('m s-1'))).toBeCloseTo(1 / 3.6, 12);
    expect(convert(1, unit('W m-2'), unit('kg s^-3'))).toBeCloseTo(1, 12);
    expect(convert(32.5, unit('percent'), unit('m3/m3'))).toBeCloseTo(0.325, 12);
    expect(convert(1, unit('1e-6'), unit('1'))).toBeCloseTo(1e-6, 18);
    expect(convert(800, unit('umol m-2 s-1'), unit('mol m-2 s-1'))).toBeCloseTo(8e-4, 15);
  });

  it('tells convertible units from incompatible ones by their base-unit dimensions', () => {
    expect(convertible(unit('degree_Celsius'), unit('K'))).toBe(true);
    expect(convertible(unit('Pa'), unit('K'))).toBe(false);
    expect(convertible(unit('m3/m3'), unit('1'))).toBe(true);
    expect(convertible(unit('s'), unit('Hz'))).toBe(false);
    expect(convertible(unit('umol m-2 s-1'), unit('mol m-2 s-1'))).toBe(true);
  });

  it('refuses unknown identifiers and broken syntax, naming the culprit', () => {
    expect(parseUnit('kWh_total')).toEqual({ ok: false, error: 'unknown unit "kWh_total"', unknown: 'kWh_total' });
    expect(parseUnit('kWh')).toMatchObject({ ok: false, error: 'unknown unit "kWh"' });
    expect(parseUnit('m2s')).toMatchObject({ ok: false, error: 'unknown unit "m2s"' });
    expect(parseUnit('m/')).toMatchObject({ ok: false, error: 'syntax error: the unit ends too early' });
    expect(parseUnit('m^ 2')).toMatchObject({ ok: false });
    expect(parseUnit('m%')).toMatchObject({ ok: false, error: 'syntax error at "%"' });
  });

  it('validates profile units: ASCII only, with the spelling to use, and hints for datasheet habits', () => {
    expect(checkUnit('kWh_total')).toEqual({
      ok: false,
      message: 'unit "kWh_total" is not a udunits2 unit: unknown unit "kWh_total" (did you mean "kW h"?)',
    });
    expect(checkUnit('m³/m³')).toMatchObject({
      ok: false,
      message: expect.stringContaining('write units in ASCII ("m3/m3")'),
    });
    expect(checkUnit('µmol m-2 s-1')).toMatchObject({
      ok: false,
      message: expect.stringContaining('("umol m-2 s-1")'),
    });
    expect(checkUnit('umol m-2 s-1').ok).toBe(true);
  });

  it('checks standard names against the shipped CF table: unknown, alias, canonical units', () => {
    expect(checkStandardName('soil_moisture_content', 'percent', unit('percent'))).toEqual([
      [
        'standard_name',
        'standard_name "soil_moisture_content" is an alias: CF Standard Name Table v83 now calls it "mass_content_of_water_in_soil"; use that name',
      ],
    ]);
    expect(checkStandardName('air_temperatur', 'K', unit('K'))[0]![1]).toContain('(did you mean "air_temperature"');
    expect(checkStandardName('air_temperature', 'Pa', unit('Pa'))).toEqual([
      [
        'unit',
        'unit "Pa" (m-1 kg s-2) does not convert to "K" (K), the canonical units of standard_name "air_temperature"',
      ],
    ]);
    expect(checkStandardName('air_temperature', 'degree_Celsius', unit('degree_Celsius'))).toEqual([]);
    expect(checkStandardName('air_temperature', undefined, undefined)[0]![1]).toBe(
      'standard_name "air_temperature" needs a unit that converts to its canonical units "K"',
    );
  });
});

/** Unit strings to compare: the corpus, the CF canonical units, the bad fixtures, datasheet spellings. */
function unitsToCompare(): string[] {
  const corpus = [...loadProfiles().profiles.values()].flatMap((p) =>
    p.profile.tags.flatMap((t) => (t.unit ? [t.unit] : [])),
  );
  const canonical = [...new Set(loadCfTable().canonical.values())];
  const badDir = join(PROJECT_ROOT, 'test', 'fixtures', 'bad');
  const fixtures = readdirSync(badDir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => {
      const doc = parse(readFileSync(join(badDir, f), 'utf8')) as { tags?: Array<{ unit?: unknown }> } | null;
      return (doc?.tags ?? []).flatMap((t) => (typeof t?.unit === 'string' ? [t.unit] : []));
    });
  const extras = [
    'kWh_total',
    'kWh',
    'm³/m³',
    'm3/m3',
    'µmol m-2 s-1',
    'μmol m-2 s-1',
    'umol/m2/s',
    'W m-2',
    'W/m^2',
    'W·m-2',
    'Pa',
    'kPa',
    'hPa',
    'mbar',
    'bar',
    'h',
    'hr',
    'hours',
    'min',
    'mins',
    's',
    'sec',
    'd',
    'kW h',
    'degC',
    'deg_C',
    'degree_C',
    '°C',
    'celsius',
    'degF',
    'K @ 273.15',
    'K from 273.15',
    '%',
    'percent',
    'ppm',
    'ppmv',
    'ppb',
    'mol/mol',
    'mmol/mol',
    '1e-6',
    '1',
    'g/kg',
    'g m-3',
    'mg/L',
    'mS/cm',
    'dS/m',
    'lux',
    'lx',
    'cd',
    'm s-1',
    'm.s-1',
    'm*s**-1',
    'm/s/s',
    '(m/s)2',
    'kg/(m s)',
    'm^2.5',
    'm--1',
    'm-',
    'm/',
    'm2s',
    'm_s',
    'm%',
    '% m',
    'deg',
    'degree',
    'degrees',
    'rpm',
    'Hz',
    'V',
    'mA',
    'kVA',
    'Ah',
    'mho',
    'S',
    'ohm',
    'mm',
    'um',
    'nm',
    'L',
    'mL',
    'l/min',
    'm3 h-1',
    'kg',
    'g',
    't',
    'dam',
    'kkm',
    'kilokm',
    's @ 273.15',
    's since 1970',
    'days since 2000-01-01',
    'hours since 2000-01-01T06:00:00Z',
    'seconds since 1970-01-01 00:00:00',
    'h @ 5',
    'PA',
    'Kilometer',
    'KM',
    'm⁻²',
    'm²',
    'W m−2',
    'm per s',
    'm percent',
    'mper s',
    'lg(re 1 mW)',
    'dBm',
    'dB',
    "'",
    '"',
    'e3',
    'count',
    'count/s',
  ];
  // The empty string (CF's canonical units of dimensionless names) means "describe the unit" to the udunits2 tool; it is 1.
  return [...new Set([...corpus, ...canonical, ...fixtures, ...extras])].filter((u) => u !== '');
}

describe('agreement with the real udunits2 (Debian udunits-bin)', () => {
  it('accepts and refuses the same units, with the same factor and offset to SI base units', () => {
    const disagreements: string[] = [];
    const list = unitsToCompare();
    expect(list.length).toBeGreaterThan(150);
    for (const text of list) {
      const ours = parseUnit(text);
      if (!ours.ok) {
        // udunits2 must not understand it either.
        const theirs = udunits2Convert('1', text);
        if (!/Don't recognize|syntax/i.test(theirs.error ?? ''))
          disagreements.push(`${JSON.stringify(text)}: ours "${ours.error}", udunits2 ${JSON.stringify(theirs)}`);
        continue;
      }
      const u = ours.unit;
      if (u.log || u.since !== undefined) {
        const theirs = udunits2Convert('1', text);
        if (/Don't recognize|syntax/i.test(theirs.error ?? ''))
          disagreements.push(`${JSON.stringify(text)}: ours ok, udunits2 ${theirs.error}`);
        continue;
      }
      // 1 of the unit's SI base units in this unit, per udunits2 and per us.
      const base =
        ['m', 'kg', 's', 'A', 'K', 'mol', 'cd']
          .flatMap((s, i) => (u.dims[i] ? [`${s}${u.dims[i] === 1 ? '' : u.dims[i]}`] : []))
          .join(' ') || '1';
      const theirs = udunits2Convert(base, text);
      const expected = (1 - u.offset) / u.factor;
      if (theirs.value === undefined || Math.abs(theirs.value - expected) > 1e-5 * Math.max(1, Math.abs(expected))) {
        disagreements.push(
          `${JSON.stringify(text)}: 1 ${base} = ${expected} per ours, udunits2 says ${theirs.value ?? theirs.error}`,
        );
      }
    }
    expect(disagreements).toEqual([]);
  }, 180_000);
});
