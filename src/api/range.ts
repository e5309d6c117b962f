/** A satisfiable byte range [start, end] (inclusive), or why not. */
export type RangeResult = { kind: 'none' } | { kind: 'range'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * Parses a `Range: bytes=…` header for a file of `size` bytes (RFC 9110 §14.1.2).
 * One range is served; several ranges, other units or a malformed header are ignored
 * (the whole file is sent, as the RFC allows).
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (!header) return { kind: 'none' };
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'none' };
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return { kind: 'unsatisfiable' };
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return { kind: 'none' };
  }
  if (start >= size || size === 0) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end };
}
