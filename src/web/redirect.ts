const BASE = 'http://octopus.invalid';

/**
 * Where to go after signing in: a path on this site, else `/`. Browsers read `\` as `/`
 * and drop tabs and newlines inside URLs, so `/\evil`, `/%5Cevil` (decoded by the form
 * parser or by a proxy), `/<TAB>/evil`, `//evil`, `https://evil` and `javascript:` all
 * fall back. Percent-encoded variants are checked after each decoding; more than three
 * levels of encoding fall back too.
 */
export function safeNext(next: unknown, fallback = '/'): string {
  if (typeof next !== 'string' || !next || next.length > 2048) return fallback;
  let s = next;
  for (let i = 0; ; i++) {
    // eslint-disable-next-line no-control-regex -- control characters in a redirect target are refused
    if (/[\\\x00-\x1f\x7f]/.test(s)) return fallback;
    if (!s.startsWith('/') || s.startsWith('//')) return fallback;
    let d: string;
    try {
      d = decodeURIComponent(s);
    } catch {
      return fallback;
    }
    if (d === s) break;
    if (i === 3) return fallback; // encoded more than three times: nobody means that
    s = d;
  }
  let u: URL;
  try {
    u = new URL(next, BASE);
  } catch {
    return fallback;
  }
  if (u.origin !== BASE) return fallback;
  const out = `${u.pathname}${u.search}${u.hash}`;
  return out.startsWith('/') && !out.startsWith('//') ? out : fallback;
}
