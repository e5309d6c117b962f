/**
 * InfluxDB line protocol for data messages (v2 `/api/v2/write`, `precision=ms`).
 *
 * Schema (docs/influxdb.md): one measurement for every chamber (configurable, default
 * `climate`), tags sorted by key as InfluxDB recommends, fields sorted by key too (as the
 * official client's `Point` does, so the output is byte-identical to it for the common
 * cases and easy to diff):
 *
 *     climate,chamber=ch01,q=good,tag=air_temperature value=21.5 1764072000000
 *
 * - tags: `chamber`, `q` (quality), `tag` (the tag name);
 * - `value`: float field for numbers and booleans (true → 1, false → 0). Numbers are
 *   written with `String(n)`, never with an `i`/`u` suffix, so `value=1` is a float and
 *   the field type stays float for every series (`-0` → `0`, `1e21` → `1e+21`, which the
 *   line-protocol float grammar accepts);
 * - `text`: string field for string values;
 * - `reason`: string field when the sample has a reason. A sample without a value
 *   (`null`, a bad read) has no `value` field; without a reason it gets `reason="bad"`
 *   (or `"no value"` if its quality is not `bad`) so the line always has a field.
 *   A non-finite number (NaN, ±Infinity: not representable in line protocol) drops
 *   `value` and gets `reason="non-finite value"` unless it already has a reason; its
 *   quality tag is left as received;
 * - timestamp: `ts` in ms.
 *
 * Escaping (InfluxDB line-protocol reference, "Special characters"):
 * - measurement: comma and space;
 * - tag keys, tag values, field keys: comma, equals sign and space;
 * - string field values: double quote and backslash.
 *
 * Beyond the spec (which says newlines are not supported in tag or field values):
 * - a newline, carriage return or tab in a measurement / tag value is written as the two
 *   characters `\n`, `\r`, `\t` (exactly what `@influxdata/influxdb-client` does), so
 *   the line stays one line; InfluxDB stores them as a literal backslash + letter;
 * - in string fields a newline / carriage return is written as `\n` / `\r` the same way
 *   (the official client leaves them raw, which breaks the line for line-splitting
 *   readers such as our own disk buffer); tabs are legal and left alone. InfluxDB only
 *   unescapes `\\` and `\"` in strings, so a newline is stored as the text `\n`;
 * - a run of backslashes in a measurement / tag key / tag value that ends the string or
 *   precedes an escaped character is doubled, so it cannot swallow the following
 *   separator (`ch\` would otherwise turn `chamber=ch\ q=...` into one tag value);
 *   the official client does not do this and produces a broken line there;
 * - a measurement starting with `#` would make the line a comment: it is written `\#`.
 */
import type { WireSample } from '../../../bus/payload.ts';

/** Chars that make a measurement / tag key / tag value need the slow path. */
const TAG_SPECIAL = /[,= \n\r\t\\]/;
const MEASUREMENT_SPECIAL = /[, \n\r\t\\]/;
const STRING_SPECIAL = /["\\\n\r]/;

function escapeKeyLike(s: string, withEquals: boolean): string {
  let out = '';
  let run = 0; // pending backslashes not yet written
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 92 /* \ */) {
      run++;
      continue;
    }
    let esc: string | undefined;
    switch (c) {
      case 44:
        esc = '\\,';
        break;
      case 32:
        esc = '\\ ';
        break;
      case 61:
        if (withEquals) esc = '\\=';
        break;
      case 10:
        esc = '\\n';
        break;
      case 13:
        esc = '\\r';
        break;
      case 9:
        esc = '\\t';
        break;
    }
    if (run) {
      out += '\\'.repeat(esc === undefined ? run : 2 * run);
      run = 0;
    }
    out += esc ?? s[i];
  }
  if (run) out += '\\'.repeat(2 * run);
  return out;
}

/** Escapes a tag key, tag value or field key (comma, `=`, space; see the module doc). */
export function escapeTag(s: string): string {
  return TAG_SPECIAL.test(s) ? escapeKeyLike(s, true) : s;
}

/** Escapes a measurement name (comma, space; see the module doc). Throws on an empty name. */
export function escapeMeasurement(s: string): string {
  if (s.length === 0) throw new RangeError('line protocol: empty measurement name');
  const out = MEASUREMENT_SPECIAL.test(s) ? escapeKeyLike(s, false) : s;
  return out.charCodeAt(0) === 35 /* # */ ? `\\${out}` : out;
}

/** A string field value, quoted: `"` and `\` escaped, newline / CR written as `\n` / `\r`. */
export function quoteString(s: string): string {
  if (!STRING_SPECIAL.test(s)) return `"${s}"`;
  let out = '"';
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    let esc: string;
    switch (s.charCodeAt(i)) {
      case 34:
        esc = '\\"';
        break;
      case 92:
        esc = '\\\\';
        break;
      case 10:
        esc = '\\n';
        break;
      case 13:
        esc = '\\r';
        break;
      default:
        continue;
    }
    out += s.slice(from, i) + esc;
    from = i + 1;
  }
  return `${out}${s.slice(from)}"`;
}

// Measurements and chambers repeat on every message: keep their escaped prefix.
let lastMeasurement = '';
let lastMeasurementEscaped = '';
const prefixCache = new Map<string, string>();
const PREFIX_CACHE_MAX = 4096;

function linePrefix(measurement: string, chamber: string): string {
  if (measurement !== lastMeasurement) {
    lastMeasurementEscaped = escapeMeasurement(measurement);
    lastMeasurement = measurement;
    prefixCache.clear();
  }
  let p = prefixCache.get(chamber);
  if (p === undefined) {
    if (prefixCache.size >= PREFIX_CACHE_MAX) prefixCache.clear();
    p = `${lastMeasurementEscaped},chamber=${escapeTag(chamber)},q=`;
    prefixCache.set(chamber, p);
  }
  return p;
}

/**
 * Encodes the samples of one chamber as line protocol: exactly one line per sample, each
 * ending with `\n` (so the text is `samples.length` lines; `''` for no samples). The
 * quality values are the fixed enum and need no escaping.
 */
export function encodeLines(measurement: string, chamber: string, samples: readonly WireSample[]): string {
  const prefix = linePrefix(measurement, chamber);
  let out = '';
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    const v = s.value;
    let reason = s.reason;
    let fields: string;
    if (typeof v === 'number') {
      if (Number.isFinite(v)) {
        fields = `value=${v}`;
      } else {
        reason ??= 'non-finite value';
        fields = '';
      }
    } else if (typeof v === 'boolean') {
      fields = v ? 'value=1' : 'value=0';
    } else if (typeof v === 'string') {
      fields = `text=${quoteString(v)}`;
    } else {
      reason ??= s.q === 'bad' ? 'bad' : 'no value';
      fields = '';
    }
    // Field keys in sorted order: reason < text < value.
    if (reason !== undefined)
      fields = fields ? `reason=${quoteString(reason)},${fields}` : `reason=${quoteString(reason)}`;
    out += `${prefix}${s.q},tag=${escapeTag(s.tag)} ${fields} ${s.ts}\n`;
  }
  return out;
}

/** Number of lines in line-protocol text built by `encodeLines` (its `\n` count). */
export function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
