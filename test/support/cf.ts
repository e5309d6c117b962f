import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';

/** The CF Standard Name Table shipped in resources/cf (CC BY 4.0, see its README). */
export const CF_TABLE = join(PROJECT_ROOT, 'resources', 'cf', 'cf-standard-name-table-v83.xml');

export interface CfTable {
  version: string;
  /** standard_name → canonical units */
  canonical: Map<string, string>;
  /** alias → standard_name it now is */
  aliases: Map<string, string>;
}

let cached: CfTable | undefined;

export function loadCfTable(file = CF_TABLE): CfTable {
  if (cached) return cached;
  const xml = readFileSync(file, 'utf8');
  const canonical = new Map<string, string>();
  for (const m of xml.matchAll(/<entry id="([^"]+)">\s*<canonical_units>([^<]*)<\/canonical_units>/g)) canonical.set(m[1]!, m[2]!.trim());
  const aliases = new Map<string, string>();
  for (const m of xml.matchAll(/<alias id="([^"]+)">\s*<entry_id>([^<]+)<\/entry_id>/g)) aliases.set(m[1]!, m[2]!.trim());
  const version = /<version_number>(\d+)<\/version_number>/.exec(xml)?.[1] ?? '?';
  cached = { version, canonical, aliases };
  return cached;
}

/**
 * Whether `unit` converts to `canonical` according to udunits2 (Debian udunits-bin).
 * udunits2 exits 0 either way; "not convertible" or a parse error appear on stderr.
 */
export function unitsConvertible(unit: string, canonical: string): { ok: boolean; detail: string } {
  const r = spawnSync('udunits2', ['-H', unit, '-W', canonical || '1'], { encoding: 'utf8' });
  const detail = `${r.stdout}${r.stderr}`.trim();
  return { ok: r.status === 0 && !/not convertible|Don't recognize|syntax error|ERROR/i.test(r.stderr) && /=/.test(r.stdout), detail };
}
