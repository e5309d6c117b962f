/**
 * A parser for the subset of Flux a task script uses: `option task = {…}` and one pipeline
 * `f(a: x, …) |> g(…) |> …`. Values are strings, numbers, booleans, durations (`1m`,
 * `-15m`), identifiers (`mean`), records and functions (`(r) => …`, kept as their text).
 * Anything else is a syntax error naming the offset, so a script the test cannot read
 * fails the test instead of passing unchecked.
 */
export type FluxValue =
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'bool'; value: boolean }
  | { kind: 'duration'; ms: number; text: string }
  | { kind: 'ident'; name: string }
  | { kind: 'record'; fields: Record<string, FluxValue> }
  | { kind: 'function'; params: string[]; body: string };

export interface FluxCall {
  name: string;
  args: Record<string, FluxValue>;
}

export interface FluxScript {
  options: Record<string, FluxValue>;
  pipeline: FluxCall[];
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function parseFlux(src: string): FluxScript {
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`flux: ${what} at offset ${i}: "${src.slice(i, i + 40)}"`);
  };
  const ws = () => {
    while (i < src.length) {
      if (/\s/.test(src[i]!)) i++;
      else if (src.startsWith('//', i)) i = src.indexOf('\n', i) < 0 ? src.length : src.indexOf('\n', i);
      else break;
    }
  };
  const eat = (s: string) => {
    ws();
    if (!src.startsWith(s, i)) fail(`expected "${s}"`);
    i += s.length;
  };
  const ident = (): string => {
    ws();
    const m = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(src.slice(i));
    if (!m) fail('expected a name');
    i += m![0].length;
    return m![0];
  };
  const args = (close: string): Record<string, FluxValue> => {
    const out: Record<string, FluxValue> = {};
    ws();
    while (!src.startsWith(close, i)) {
      const k = ident();
      eat(':');
      out[k] = value();
      ws();
      if (src[i] === ',') i++;
      else if (!src.startsWith(close, i)) fail(`expected "," or "${close}"`);
      ws();
    }
    i += close.length;
    return out;
  };
  const value = (): FluxValue => {
    ws();
    const rest = src.slice(i);
    let m: RegExpExecArray | null;
    if (rest[0] === '"') {
      m = /^"((?:[^"\\]|\\.)*)"/.exec(rest);
      if (!m) fail('unterminated string');
      i += m![0].length;
      return { kind: 'string', value: m![1]!.replace(/\\(.)/g, '$1') };
    }
    if (rest[0] === '{') {
      i++;
      return { kind: 'record', fields: args('}') };
    }
    if ((m = /^\(([^)]*)\)\s*=>/.exec(rest))) {
      i += m[0].length;
      const params = m[1]!
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean);
      // the body runs to the `)` or `,` that closes the enclosing argument list
      let depth = 0;
      const start = i;
      while (i < src.length && !(depth === 0 && (src[i] === ')' || src[i] === ','))) {
        if (src[i] === '"') i = src.indexOf('"', i + 1) < 0 ? fail('unterminated string') : src.indexOf('"', i + 1);
        if (src[i] === '(') depth++;
        if (src[i] === ')') depth--;
        i++;
      }
      return { kind: 'function', params, body: src.slice(start, i).trim() };
    }
    if ((m = /^(-?)((?:\d+(?:ms|s|m|h|d|w))+)/.exec(rest))) {
      i += m[0].length;
      const ms = [...m[2]!.matchAll(/(\d+)(ms|s|m|h|d|w)/g)].reduce((a, p) => a + Number(p[1]) * UNIT_MS[p[2]!]!, 0);
      return { kind: 'duration', ms: m[1] ? -ms : ms, text: m[0] };
    }
    if ((m = /^-?\d+(\.\d+)?/.exec(rest))) {
      i += m[0].length;
      return { kind: 'number', value: Number(m[0]) };
    }
    const name = ident();
    if (name === 'true' || name === 'false') return { kind: 'bool', value: name === 'true' };
    return { kind: 'ident', name };
  };

  const options: Record<string, FluxValue> = {};
  const pipeline: FluxCall[] = [];
  ws();
  while (src.startsWith('option', i)) {
    i += 'option'.length;
    const name = ident();
    eat('=');
    options[name] = value();
    ws();
  }
  for (;;) {
    const name = ident();
    eat('(');
    pipeline.push({ name, args: args(')') });
    ws();
    if (i >= src.length) break;
    eat('|>');
  }
  return { options, pipeline };
}
