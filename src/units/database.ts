import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The UDUNITS-2 XML database shipped in resources/udunits (see its README for the licence). */
export const UDUNITS_DIR = fileURLToPath(new URL('../../resources/udunits/', import.meta.url));
const FILES = [
  'udunits2-prefixes.xml',
  'udunits2-base.xml',
  'udunits2-derived.xml',
  'udunits2-accepted.xml',
  'udunits2-common.xml',
];

/** SI base quantities, in the order of a unit's dimension vector. */
export const BASE_SYMBOLS = ['m', 'kg', 's', 'A', 'K', 'mol', 'cd'] as const;

/** How a database unit is defined: one of the base units, dimensionless (radian), or a unit expression. */
export type UnitDefinition =
  { kind: 'base'; index: number } | { kind: 'dimensionless' } | { kind: 'expression'; text: string };

export interface Prefix {
  value: number;
  text: string;
}

export interface UnitDatabase {
  /** Lower-cased singular and plural names → definition (names match case-insensitively). */
  names: Map<string, UnitDefinition>;
  /** Symbols → definition (symbols are case-sensitive: ms ≠ Ms). */
  symbols: Map<string, UnitDefinition>;
  /** Prefix names (kilo, micro…), lower-cased, longest first. */
  prefixNames: Prefix[];
  /** Prefix symbols (k, µ, u…), longest first. */
  prefixSymbols: Prefix[];
}

const decode = (s: string): string =>
  s
    .replace(/&#x([0-9a-fA-F]+);/g, (_m, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_m, d: string) => String.fromCodePoint(parseInt(d, 10)))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&')
    .trim();

const all = (xml: string, tag: string): string[] =>
  [...xml.matchAll(new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]!);

/** The plural udunits2 forms for a singular name (xml.c): -y → -ies after a consonant, s/x/z/ch/sh → +es, else +s. */
export function pluralOf(singular: string): string {
  if (/[^aeiou]y$/i.test(singular)) return `${singular.slice(0, -1)}ies`;
  if (/([sxz]|ch|sh)$/i.test(singular)) return `${singular}es`;
  return `${singular}s`;
}

let cached: UnitDatabase | undefined;

/** Loads (once) the UDUNITS-2 database from resources/udunits. */
export function unitDatabase(dir = UDUNITS_DIR): UnitDatabase {
  if (cached && dir === UDUNITS_DIR) return cached;
  const names = new Map<string, UnitDefinition>();
  const symbols = new Map<string, UnitDefinition>();
  const prefixNames: Prefix[] = [];
  const prefixSymbols: Prefix[] = [];
  let baseIndex = 0;
  for (const file of FILES) {
    const xml = readFileSync(join(dir, file), 'utf8').replace(/<!--[\s\S]*?-->/g, '');
    for (const p of all(xml, 'prefix')) {
      const value = Number(all(p, 'value')[0]);
      for (const n of all(p, 'name')) prefixNames.push({ value, text: decode(n).toLowerCase() });
      for (const s of all(p, 'symbol')) prefixSymbols.push({ value, text: decode(s) });
    }
    for (const u of all(xml, 'unit')) {
      let def: UnitDefinition;
      if (/<base\s*\/>/.test(u)) {
        const sym = decode(all(u, 'symbol')[0] ?? '');
        const index = BASE_SYMBOLS.indexOf(sym as (typeof BASE_SYMBOLS)[number]);
        def = { kind: 'base', index: index >= 0 ? index : baseIndex };
        baseIndex++;
      } else if (/<dimensionless\s*\/>/.test(u)) def = { kind: 'dimensionless' };
      else def = { kind: 'expression', text: decode(all(u, 'def')[0] ?? '') };
      for (const n of all(u, 'name')) {
        const singular = all(n, 'singular')[0];
        if (singular === undefined) continue;
        const s = decode(singular);
        names.set(s.toLowerCase(), def);
        const plural = all(n, 'plural')[0];
        names.set((plural !== undefined ? decode(plural) : pluralOf(s)).toLowerCase(), def);
      }
      for (const s of all(u, 'symbol')) symbols.set(decode(s), def);
    }
  }
  const longestFirst = (a: Prefix, b: Prefix) => b.text.length - a.text.length;
  const db = {
    names,
    symbols,
    prefixNames: prefixNames.sort(longestFirst),
    prefixSymbols: prefixSymbols.sort(longestFirst),
  };
  if (dir === UDUNITS_DIR) cached = db;
  return db;
}
