/**
 * The independent CF-1.11 / ACDD-1.3 checker (cf_acdd_check.py) and the python reference
 * of the derived variables and daily file (derived_reference.py), called from the tests.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CF_TABLE } from './cf.ts';
import { DEBIAN_PYTHON } from './netcdf.ts';

const SUPPORT = import.meta.dirname;

interface CheckResult {
  errors: string[];
  warnings: string[];
}
export function cfAcddCheck(...files: string[]): Record<string, CheckResult> {
  const r = spawnSync(DEBIAN_PYTHON, [join(SUPPORT, 'cf_acdd_check.py'), CF_TABLE, ...files], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0 && r.status !== 1) throw new Error(`cf_acdd_check.py failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, CheckResult>;
}

interface Reference {
  derived: {
    present: boolean;
    compared: number;
    chambers_with_inputs: number[];
    vpd_max_rel_err: number;
    vpd_max_abs_err_kpa: number;
    dew_max_abs_err_k: number;
    vpd_qc_mismatches: number;
    dew_qc_mismatches: number;
    fill_where_no_input: boolean;
    no_input_chambers_missing: boolean;
    qc_counts: Record<string, number>;
  };
  daily?: {
    days: number;
    bounds: string;
    max_rel_diff: number;
    mismatches: number;
    cell_methods: Record<string, string[]>;
    time: string[];
    time_bnds: string[][];
    variables: Record<string, { count_total: number }>;
  };
}
export function derivedReference(run: string, daily?: string): Reference {
  const r = spawnSync(DEBIAN_PYTHON, [join(SUPPORT, 'derived_reference.py'), run, ...(daily ? [daily] : [])], {
    encoding: 'utf8',
    timeout: 180_000,
  });
  if (r.status !== 0) throw new Error(`derived_reference.py failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Reference;
}
