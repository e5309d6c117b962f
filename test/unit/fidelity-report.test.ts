/**
 * The treatment-fidelity report of a run file with a scripted 7-minute excursion in one
 * chamber (test/support/fidelity-fixture.ts), checked against an independent
 * computation with xarray + numpy over the same file (test/support/fidelity_check.py);
 * the report's attributes written into the file's header, read back by netCDF4/ncdump,
 * data untouched; a header without room is left byte-identical.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fidelityMarkdown } from '../../src/fidelity/markdown.ts';
import { writeFidelityAttributes } from '../../src/fidelity/netcdf-attrs.ts';
import type { ToleranceSource } from '../../src/fidelity/plan.ts';
import type { Tolerance, ToleranceOverride } from '../../src/fidelity/tolerance.ts';
import type { ExperimentMetadata } from '../../src/experiments/schema.ts';
import { computeFidelity, computeFidelityAsync } from '../../src/fidelity/report.ts';
import { FidelityReport } from '../../src/fidelity/report-schema.ts';
import { HeaderRoomError } from '../../src/netcdf/attributes.ts';
import { NcRunReader } from '../../src/netcdf/reader.ts';
import {
  EXC_SLOTS,
  EXC_START,
  FID_CHAMBERS,
  FID_T0,
  FID_TAGS,
  GAP_SLOTS,
  HYST_START,
  SPIKE_SLOTS,
  pythonFidelity,
  writeFidelityRun,
  type PyPlanEntry,
} from '../support/fidelity-fixture.ts';
import { ncdump, pythonView } from '../support/netcdf.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-fidelity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const iso = (slot: number) => new Date(FID_T0 + slot * 1000).toISOString().replace('.000Z', 'Z');
/** Profile: air ±0.5 K for 10 min, CO2 ±50 ppm for 5 min; chamber c3 narrows its CO2 hysteresis to 5 ppm. */
const source: ToleranceSource = (c) =>
  FID_CHAMBERS.includes(c)
    ? {
        tags: FID_TAGS,
        profile: { air_temperature: { band: 0.5, min_duration_s: 600 }, co2: { band: 50, min_duration_s: 300 } },
        chamber: (c === 'c3' ? { co2: { hysteresis: 5 } } : {}) as Record<string, ToleranceOverride>,
      }
    : undefined;
/** The warming treatment lowers the air temperature's minimum duration to 5 min. */
const metadata: Pick<ExperimentMetadata, 'treatments'> = {
  treatments: [
    { chamber: 'c1', name: 'warming', setpoints: {}, tolerances: { air_temperature: { min_duration_s: 300 } } },
    { chamber: 'c2', name: 'warming', setpoints: {}, tolerances: { air_temperature: { min_duration_s: 300 } } },
    { chamber: 'c3', name: 'control', setpoints: {}, tolerances: {} },
  ],
};

function planFor(r: FidelityReport): Record<string, PyPlanEntry[]> {
  return Object.fromEntries(
    Object.entries(r.chambers).map(([c, cf]) => [
      c,
      Object.entries(cf.variables).map(([m, v]) => ({
        measured: m,
        setpoint: v.setpoint,
        band: v.tolerance.band,
        min_duration_s: v.tolerance.min_duration_s,
        hysteresis: v.tolerance.hysteresis,
      })),
    ]),
  );
}

describe('treatment fidelity report', () => {
  const file = join(dir, 'fidelity-test_r001.nc');
  writeFidelityRun(file, 1);

  it('finds the 7-minute excursion of c2 within one sample period, the within-tolerance share to 0.1 %, the others at 100 %', () => {
    const r = FidelityReport.parse(computeFidelity(file, { source, metadata }));
    expect(r.slots).toBe(3600);
    expect(r.period_s).toBe(1);
    const c2 = r.chambers.c2!.variables.air_temperature!;
    expect(c2.tolerance).toEqual({
      band: 0.5,
      min_duration_s: 300,
      hysteresis: 0.05,
      source: { band: 'profile', min_duration_s: 'treatment', hysteresis: 'default' },
    });
    expect(c2.excursions).toBe(1); // the 60 s spike does not count
    const longest = c2.longest_excursion!;
    expect(Math.abs(Date.parse(longest.start) - Date.parse(iso(EXC_START)))).toBeLessThanOrEqual(1000);
    expect(Math.abs(Date.parse(longest.end) - Date.parse(iso(EXC_START + EXC_SLOTS - 1)))).toBeLessThanOrEqual(1000);
    expect(longest.duration_s).toBe(420);
    expect(longest.peak_deviation).toBeCloseTo(1.2, 5);
    const expected = (100 * (3600 - EXC_SLOTS - SPIKE_SLOTS)) / 3600; // 86.67 %
    expect(Math.abs(c2.within_tolerance_percent! - expected)).toBeLessThan(0.1);
    expect(c2.coverage_percent).toBe(100);
    for (const c of ['c1', 'c3']) expect(r.chambers[c]!.variables.air_temperature!.within_tolerance_percent).toBe(100);
    for (const c of ['c1', 'c2']) expect(r.chambers[c]!.variables.co2!.within_tolerance_percent).toBe(100);
    // c3: 100 slots missing lower the coverage, not the within share
    const c3t = r.chambers.c3!.variables.air_temperature!;
    expect(c3t.coverage_percent).toBeCloseTo((100 * (3600 - GAP_SLOTS)) / 3600, 6);
    expect(c3t.excursions).toBe(0);
    // c3 co2: 400 s beyond the band, then 50 s inside the band but beyond band − hysteresis: one 450 s excursion
    const c3c = r.chambers.c3!.variables.co2!;
    expect(c3c.tolerance.source).toEqual({ band: 'profile', min_duration_s: 'profile', hysteresis: 'chamber' });
    expect(c3c.longest_excursion).toMatchObject({
      start: iso(HYST_START),
      end: iso(HYST_START + 449),
      duration_s: 450,
    });
    expect(c3c.within_tolerance_percent).toBeCloseTo((100 * 3200) / 3600, 6);
    // c1's held setpoint (qc 4) counts as usable
    expect(r.chambers.c1!.variables.co2!.coverage_percent).toBe(100);
    // the warming group pools c1 and c2
    const g = r.treatments.warming!.variables.air_temperature!;
    expect(g.chambers).toEqual(['c1', 'c2']);
    expect(g.worst_chamber).toBe('c2');
    expect(g.within_tolerance_percent).toBeCloseTo((100 * (7200 - EXC_SLOTS - SPIKE_SLOTS)) / 7200, 6);
    expect(g.excursions).toBe(1);
    expect(Object.keys(r.treatments)).toEqual(['warming', 'control']);
  });

  it('agrees with xarray + numpy over the same file', () => {
    const r = computeFidelity(file, { source, metadata });
    const py = pythonFidelity(file, planFor(r));
    for (const [c, cf] of Object.entries(r.chambers)) {
      for (const [m, v] of Object.entries(cf.variables)) {
        const p = py.chambers[c]![m]!;
        const where = `${c} ${m}`;
        expect(v.covered, where).toBe(p.covered);
        expect(v.within, where).toBe(p.within);
        expect(v.within_tolerance_percent!, where).toBeCloseTo(p.within_pct!, 9);
        expect(v.coverage_percent, where).toBeCloseTo(p.coverage_pct, 9);
        expect(v.mean_deviation!, where).toBeCloseTo(p.mean!, 9);
        expect(v.rms_deviation!, where).toBeCloseTo(p.rms!, 9);
        expect(
          v.excursion_list.map((e) => [Date.parse(e.start) / 1000, Date.parse(e.end) / 1000, e.duration_s]),
          where,
        ).toEqual(p.excursions);
      }
    }
  });

  it('gives the same report when computed in small chunks without blocking the event loop', async () => {
    const a = computeFidelity(file, { source, metadata, now: () => new Date(0) });
    const b = await computeFidelityAsync(file, { source, metadata, chunkBytes: 4096, now: () => new Date(0) });
    expect(b).toEqual(a);
  });

  it('lists what cannot be judged: a chamber without band, a setpoint not archived', () => {
    const partial: ToleranceSource = (c) => ({
      tags: [...FID_TAGS, { name: 'par' }, { name: 'par_setpoint', setpoint_of: 'par' }],
      profile: (c === 'c1' ? { par: { band: 50, min_duration_s: 300 } } : {}) as Record<string, Tolerance>,
      chamber: {},
    });
    const r = computeFidelity(file, { source: partial });
    expect(r.chambers.c1!.not_judged).toContainEqual({
      variable: 'par',
      reason: 'not archived in the run file: par, par_setpoint',
    });
    expect(r.chambers.c2!.not_judged).toContainEqual({
      variable: 'air_temperature',
      reason: 'no tolerance band in the profile, the chamber or the treatment',
    });
    expect(Object.keys(r.chambers.c2!.variables)).toEqual([]);
  });

  it('writes its figures as attributes of the controlled variables, read back by netCDF4 and ncdump; the data is untouched', () => {
    const copy = join(dir, 'attrs.nc');
    writeFidelityRun(copy, 1);
    const before = NcRunReader.open(copy);
    const dataStart = Math.min(...before.header.vars.map((v) => v.begin));
    before.close();
    const data = (p: string) => createHash('sha256').update(readFileSync(p).subarray(dataStart)).digest('hex');
    const sum = data(copy);
    const r = computeFidelity(copy, { source, metadata });
    expect(writeFidelityAttributes(copy, r, FID_CHAMBERS)).toBe(2);
    expect(data(copy)).toBe(sum);
    const dump = ncdump(copy, true);
    expect(dump.status).toBe(0);
    expect(dump.stdout).toMatch(/air_temperature:fidelity_setpoint_variable = "air_temperature_setpoint"/);
    const view = pythonView(copy, ['air_temperature']);
    const attrs = view.netcdf4.vars.air_temperature!.attrs;
    expect(attrs.tolerance_band).toEqual([0.5, 0.5, 0.5]);
    expect((attrs.fidelity_within_tolerance_percent as number[])[1]).toBeCloseTo(
      r.chambers.c2!.variables.air_temperature!.within_tolerance_percent!,
      9,
    );
    expect(attrs.fidelity_excursions).toEqual([0, 1, 0]);
    expect(String(attrs.fidelity_longest_excursion)).toContain(
      `c2: ${iso(EXC_START)}/${iso(EXC_START + EXC_SLOTS - 1)}`,
    );
    // Written twice (a retried stop): replaced, not duplicated; a chamber the configuration no longer knows is judged from them.
    writeFidelityAttributes(copy, r, FID_CHAMBERS);
    const again = computeFidelity(copy, {});
    expect(again.chambers.c2!.variables.air_temperature!.tolerance.source.band).toBe('file');
    expect(again.chambers.c2!.variables.air_temperature!.within).toBe(r.chambers.c2!.variables.air_temperature!.within);
    expect(again.chambers.c2!.variables.air_temperature!.longest_excursion).toEqual(
      r.chambers.c2!.variables.air_temperature!.longest_excursion,
    );
  });

  it('leaves a file whose header has no room byte-identical', () => {
    const tight = join(dir, 'tight.nc');
    writeFidelityRun(tight, 1, { headerReserve: 16 });
    const before = readFileSync(tight);
    const r = computeFidelity(tight, { source, metadata });
    expect(() => writeFidelityAttributes(tight, r, FID_CHAMBERS)).toThrow(HeaderRoomError);
    expect(readFileSync(tight).equals(before)).toBe(true);
  });

  it('the README section escapes names from metadata', () => {
    const r = computeFidelity(file, {
      source,
      metadata: { treatments: [{ chamber: 'c1', name: '<b>hot</b> | [x](y)', setpoints: {}, tolerances: {} }] },
    });
    const md = fidelityMarkdown(r);
    expect(md).toContain('## Treatment fidelity of run fidelity-test/r001');
    expect(md).not.toContain('<b>');
    expect(md).not.toContain('[x](y)');
    expect(md).toMatch(
      /\| c2 \| {2}\| `air_temperature` \| ±0\.5 degree_Celsius ≥ 600 s \(profile\/default\) \| 86\.7 % \|/,
    );
  });
});
