import { spawnSync } from 'node:child_process';

/** The CF table loader lives in src (octopus validate uses it); tests reuse it. */
export { CF_TABLE, loadCfTable, type CfTable } from '../../src/config/cf-table.ts';

/**
 * Whether `unit` converts to `canonical` according to the real udunits2 tool (Debian
 * udunits-bin); used to prove that Octopus's own parser (src/units) agrees with it.
 * udunits2 exits 0 either way; "not convertible" or a parse error appear on stderr.
 */
export function unitsConvertible(unit: string, canonical: string): { ok: boolean; detail: string } {
  const r = spawnSync('udunits2', ['-H', unit, '-W', canonical || '1'], { encoding: 'utf8' });
  const detail = `${r.stdout}${r.stderr}`.trim();
  return {
    ok: r.status === 0 && !/not convertible|Don't recognize|syntax error|ERROR/i.test(r.stderr) && /=/.test(r.stdout),
    detail,
  };
}

/** What udunits2 says about converting 1 `have` to `want`: the number, or why not. */
export function udunits2Convert(have: string, want: string): { value?: number; error?: string } {
  const r = spawnSync('udunits2', ['-H', have, '-W', want], { encoding: 'utf8' });
  const err = r.stderr.trim();
  if (err) return { error: err.replace(/^udunits2: /, '') };
  const m = /=\s*(\S+)/.exec(r.stdout);
  return m ? { value: Number(m[1]) } : { error: r.stdout.trim() || `exit ${r.status}` };
}
