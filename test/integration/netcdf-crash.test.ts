/**
 * kill -9 a process that writes a netCDF file continuously: the file stays readable
 * by ncdump, numrecs counts only whole records, and resume continues with no duplicate
 * and no missing record.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { layoutOf } from '../../src/netcdf/header.ts';
import { readNetcdfHeader } from '../../src/netcdf/writer.ts';
import { CRASH_T0 } from '../support/netcdf-crash-writer.ts';
import { ncdump, pythonView, readNetcdfjs } from '../support/netcdf.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-nc-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the writer child; resolves with its output lines once `until` matches (then SIGKILLs it) or it exits. */
function runChild(
  args: string[],
  until?: (line: string) => boolean,
): Promise<{ lines: string[]; signal: string | null; code: number | null }> {
  const proc = spawn(
    process.execPath,
    [join(PROJECT_ROOT, 'bin/run-ts.js'), join(PROJECT_ROOT, 'test/support/netcdf-crash-writer.ts'), ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const lines: string[] = [];
  createInterface({ input: proc.stdout }).on('line', (l) => {
    lines.push(l);
    if (until?.(l)) proc.kill('SIGKILL');
  });
  return new Promise((resolve) => proc.once('close', (code, signal) => resolve({ lines, signal, code })));
}

function checkSeries(file: string): number {
  const r = readNetcdfjs(file);
  const n = r.recordDimension.length;
  const time = r.getDataVariable('time') as number[];
  const v = r.getDataVariable('v') as number[][];
  const k = r.getDataVariable('k') as number[];
  expect(time).toHaveLength(n);
  for (let i = 0; i < n; i++) {
    if (time[i] !== CRASH_T0 + i || k[i] !== i || v[i]![0] !== i || v[i]![1] !== i + 0.5) {
      throw new Error(`record ${i}: time ${time[i]}, k ${k[i]}, v ${v[i]} (want time ${CRASH_T0 + i})`);
    }
  }
  return n;
}

describe('netCDF writer killed with SIGKILL', () => {
  it('leaves a readable file; resume appends without duplicate or missing records', async () => {
    const file = join(dir, 'crash.nc');
    // Kill while records are being written past the last flush (after a few flushes).
    let flushes = 0;
    const first = await runChild([file, 'create'], (l) => l.startsWith('flushed') && ++flushes === 25);
    expect(first.signal).toBe('SIGKILL');
    const h = readNetcdfHeader(file);
    const { recStart, recsize } = layoutOf(h);
    expect(h.numrecs).toBeGreaterThanOrEqual(25 * 200);
    // numrecs never counts more than what is on disk
    expect(statSync(file).size).toBeGreaterThanOrEqual(recStart + h.numrecs * recsize);
    const dump = ncdump(file);
    expect(dump.stderr).toBe('');
    expect(dump.status).toBe(0);
    const n1 = checkSeries(file);
    expect(n1).toBe(h.numrecs);

    const second = await runChild([file, 'resume', '1000']);
    expect(second.code).toBe(0);
    expect(second.lines[0]).toBe(`start ${n1}`);
    expect(second.lines.at(-1)).toBe(`done ${n1 + 1000}`);
    const n2 = checkSeries(file);
    expect(n2).toBe(n1 + 1000);
    expect(statSync(file).size).toBe(recStart + n2 * recsize);
    expect(ncdump(file, true).stdout).toContain(`time = UNLIMITED ; // (${n2} currently)`);
    const py = pythonView(file, ['time']);
    const t = py.netcdf4.vars.time!.data as number[];
    expect(t).toHaveLength(n2);
    expect(t.every((x, i) => i === 0 || x - t[i - 1]! === 1)).toBe(true);
  });

  it('survives repeated kills at random moments', async () => {
    const file = join(dir, 'crash-loop.nc');
    await runChild([file, 'create', '1']);
    for (let round = 0; round < 3; round++) {
      const start = Date.now();
      const delay = 150 + Math.random() * 400;
      const r = await runChild([file, 'resume'], (l) => l.startsWith('flushed') && Date.now() - start > delay);
      expect(r.signal).toBe('SIGKILL');
      expect(ncdump(file, true).status).toBe(0);
      checkSeries(file);
    }
  });
});
