/**
 * The fidelity attributes are written into a finished run file's header in place: a
 * process killed (SIGKILL) while rewriting them again and again, at five different
 * moments, leaves a file that ncdump and netCDF4 read, with the old or the new
 * attributes and the data byte-identical.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { NcRunReader } from '../../src/netcdf/reader.ts';
import { longAttrs, shortAttrs } from '../support/fidelity-attrs-child.ts';
import { writeFidelityRun } from '../support/fidelity-fixture.ts';
import { ncdump, pythonView } from '../support/netcdf.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-fid-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the child until it has written `writes` times, then SIGKILLs it at once (it is in its next write or between). */
function killAfter(file: string, writes: number): Promise<string | null> {
  const proc = spawn(
    process.execPath,
    [join(PROJECT_ROOT, 'bin/run-ts.js'), join(PROJECT_ROOT, 'test/support/fidelity-attrs-child.ts'), file],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  createInterface({ input: proc.stdout }).on('line', (l) => {
    if (l === `wrote ${writes}`) proc.kill('SIGKILL');
  });
  return new Promise((resolve) => proc.once('close', (_code, signal) => resolve(signal)));
}

describe('fidelity attributes rewritten in place, process killed', () => {
  it('always leaves a valid file with the old or the new attributes and the same data', async () => {
    const file = join(dir, 'run.nc');
    writeFidelityRun(file, 1);
    const r = NcRunReader.open(file);
    const dataStart = Math.min(...r.header.vars.map((v) => v.begin));
    r.close();
    const data = () => createHash('sha256').update(readFileSync(file).subarray(dataStart)).digest('hex');
    const sum = data();
    for (const writes of [1, 7, 20, 33, 60]) {
      expect(await killAfter(file, writes)).toBe('SIGKILL');
      expect(ncdump(file, true).status, `after ${writes} writes`).toBe(0);
      const view = pythonView(file, ['air_temperature']);
      const at = view.netcdf4.vars.air_temperature!.attrs;
      const within = at.fidelity_within_tolerance_percent;
      expect([
        longAttrs.fidelity_within_tolerance_percent.value,
        shortAttrs.fidelity_within_tolerance_percent.value,
      ]).toContainEqual(within);
      expect(
        at.fidelity_note === longAttrs.fidelity_note
          ? longAttrs.fidelity_within_tolerance_percent.value
          : shortAttrs.fidelity_within_tolerance_percent.value,
      ).toEqual(within);
      expect(data(), `data after ${writes} writes`).toBe(sum);
      expect(view.netcdf4.dims.time!.size).toBe(3600);
    }
  }, 180_000);
});
