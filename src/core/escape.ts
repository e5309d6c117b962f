/**
 * Escaping of untrusted values (experiment metadata, ids, names) for the targets they
 * reach: POSIX shell, Markdown documents and HTTP header parameters. Each function is
 * total: whatever the input, its output is inert in its target.
 */

/** Line breaks and other control characters, including the Unicode line/paragraph separators. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this strips
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;

/** One POSIX sh word: single-quoted, `'` written as `'\''`; NUL (impossible in sh) removed. */
export function shQuote(value: string): string {
  return `'${value.replace(/\0/g, '').replace(/'/g, `'\\''`)}'`;
}

/** Text for a `# comment` line of a script: control characters (a newline ends a comment) become spaces. */
export function shComment(value: string): string {
  return value.replace(CONTROL, ' ');
}

/**
 * Markdown for a value inside one line (heading, list item, table cell): no line break,
 * no HTML (`<`, `>`, `&` as entities), no link, image, emphasis, code or strike-through
 * from the value, and no block marker (`#`, `>`, `-`, `+`, `1.`) at its start. Plain
 * words, units (`umol mol-1`) and snake_case names come out unchanged.
 */
export function mdInline(value: string): string {
  let t = value.replace(CONTROL, ' ');
  t = t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  t = t.replace(/[\\`*[\]~|]/g, '\\$&');
  // `_` only emphasises at a word boundary (CommonMark): escape it there, not in snake_case.
  t = t.replace(/_/g, (m, i: number, s: string) =>
    /[\p{L}\p{N}]/u.test(s[i - 1] ?? '') && /[\p{L}\p{N}]/u.test(s[i + 1] ?? '') ? m : '\\_',
  );
  t = t.replace(
    /^(\s*)([#=+-]|\d+[.)])/,
    (_m, sp: string, mark: string) => `${sp}${mark.replace(/^(\d*)(.)$/, '$1\\$2')}`,
  );
  return t;
}

/** Markdown for free text over several lines (a description): each line as {@link mdInline}. */
export function mdBlock(value: string): string {
  return value
    .split(/\r\n|\r|\n|\u2028|\u2029/)
    .map((line) => mdInline(line))
    .join('\n');
}

/**
 * A Markdown code span holding `value` verbatim (on one line), whatever backticks it
 * contains; `inTable` also escapes `|`, which ends a GFM table cell even inside a code span.
 */
export function mdCode(value: string, inTable = false): string {
  let t = value.replace(CONTROL, ' ');
  const longest = Math.max(0, ...[...t.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  const pad = t.startsWith('`') || t.endsWith('`') ? ' ' : '';
  if (inTable) t = t.replace(/\|/g, '\\|');
  return `${fence}${pad}${t}${pad}${fence}`;
}

/** RFC 5987 `attr-char`s stay as they are; every other UTF-8 byte is percent-encoded. */
function rfc5987(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * `Content-Disposition: attachment` for a file name from metadata (RFC 6266): an ASCII
 * `filename="…"` with every character outside `A-Za-z0-9._-` replaced by `_` (no quote,
 * backslash, CR/LF or `;` can leave the parameter), plus `filename*=UTF-8''…` with the
 * exact name percent-encoded when the ASCII form had to change it.
 */
export function contentDisposition(filename: string, type: 'attachment' | 'inline' = 'attachment'): string {
  const clean = filename.replace(CONTROL, '').replace(/[/\\]/g, '_');
  let ascii = clean.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  if (!ascii) ascii = 'download';
  return ascii === clean || !clean
    ? `${type}; filename="${ascii}"`
    : `${type}; filename="${ascii}"; filename*=UTF-8''${rfc5987(clean)}`;
}
