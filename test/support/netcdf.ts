import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NetCDFReader } from 'netcdfjs';

/** The Debian python (with netCDF4 and xarray); the first python3 on PATH may not have them. */
export const DEBIAN_PYTHON = '/usr/bin/python3';
export const NCDUMP = '/usr/bin/ncdump';
const CHECKER = fileURLToPath(new URL('./netcdf_check.py', import.meta.url));

export interface NcdumpResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function ncdump(path: string, headerOnly = false): NcdumpResult {
  const r = spawnSync(NCDUMP, headerOnly ? ['-h', path] : [path], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `ncdump -k`: "classic" or "64-bit offset". */
export function ncdumpKind(path: string): string {
  return spawnSync(NCDUMP, ['-k', path], { encoding: 'utf8' }).stdout.trim();
}

export interface PyVar {
  dtype: string;
  dims: string[];
  attrs: Record<string, unknown>;
  data?: unknown;
}
export interface PyView {
  netcdf4: {
    format: string;
    dims: Record<string, { size: number; unlimited: boolean }>;
    globals: Record<string, unknown>;
    vars: Record<string, PyVar>;
    time_iso?: string[];
  };
  xarray: { globals: Record<string, unknown>; vars: Record<string, PyVar>; coords: string[]; time_iso?: string[] };
}

/** What python netCDF4 and xarray see in the file (fill values as null). */
export function pythonView(path: string, vars?: string[]): PyView {
  const r = spawnSync(DEBIAN_PYTHON, [CHECKER, path, (vars ?? []).join(',')], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`netcdf_check.py failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as PyView;
}

export function readNetcdfjs(path: string): NetCDFReader {
  return new NetCDFReader(readFileSync(path));
}
