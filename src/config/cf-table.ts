import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The CF Standard Name Table shipped in resources/cf (CC BY 4.0, see its README). */
export const CF_TABLE = fileURLToPath(new URL('../../resources/cf/cf-standard-name-table-v83.xml', import.meta.url));

export interface CfTable {
  version: string;
  /** standard_name → canonical units */
  canonical: Map<string, string>;
  /** alias → standard_name it now is */
  aliases: Map<string, string>;
}

let cached: CfTable | undefined;

/** Reads (once) the CF standard names, their canonical units and the aliases of retired names. */
export function loadCfTable(file = CF_TABLE): CfTable {
  if (cached && file === CF_TABLE) return cached;
  const xml = readFileSync(file, 'utf8');
  const canonical = new Map<string, string>();
  for (const m of xml.matchAll(/<entry id="([^"]+)">\s*<canonical_units>([^<]*)<\/canonical_units>/g))
    canonical.set(m[1]!, m[2]!.trim());
  const aliases = new Map<string, string>();
  for (const m of xml.matchAll(/<alias id="([^"]+)">\s*<entry_id>([^<]+)<\/entry_id>/g))
    aliases.set(m[1]!, m[2]!.trim());
  const version = /<version_number>(\d+)<\/version_number>/.exec(xml)?.[1] ?? '?';
  const table = { version, canonical, aliases };
  if (file === CF_TABLE) cached = table;
  return table;
}
