/**
 * A parser for UDUNITS-2 unit strings, following the grammar and scanner of the udunits2
 * library (parser.y, scanner.l) and its XML unit database, so that Octopus accepts
 * exactly what NetCDF/CF tools accept, without the C library:
 *
 *   unit_spec   := ε | shift_exp
 *   shift_exp   := product_exp [ SHIFT (number | timestamp) ]      (@, after, from, ref, since)
 *   product_exp := power_exp { [MULTIPLY | DIVIDE] power_exp }     (space . * · -  |  / per)
 *   power_exp   := basic_exp [ INT | EXPONENT ]                     (m2, m-2, m^2, m**2, m²)
 *   basic_exp   := ID | '(' shift_exp ')' | LOGREF product_exp ')' | number
 *
 * An ID is a unit name (case-insensitive, singular or plural), a symbol (case-sensitive),
 * or either preceded by prefixes (any number of prefix names, at most one prefix symbol).
 */
import { unitDatabase, type UnitDatabase, type UnitDefinition } from './database.ts';
import { baseUnit, divide, logOf, multiply, ONE, raise, scale, shift, UnitError, type Unit } from './unit.ts';

type TokenType = 'SHIFT' | 'DIVIDE' | 'MULTIPLY' | 'EXPONENT' | 'REAL' | 'INT' | 'LOGREF' | 'ID' | 'CHAR' | 'EOF';
interface Token {
  type: TokenType;
  text: string;
  pos: number;
  value: number;
}
type State = 'INITIAL' | 'ID_SEEN';

const SPACE = '[ \\t\\r\\f\\v]';
const RULES: Array<{ type: TokenType; re: RegExp; states: State[] }> = [
  {
    type: 'SHIFT',
    re: new RegExp(
      `${SPACE}*(@|[Aa][Ff][Tt][Ee][Rr]|[Ff][Rr][Oo][Mm]|[Rr][Ee][Ff]|[Ss][Ii][Nn][Cc][Ee])${SPACE}*`,
      'y',
    ),
    states: ['INITIAL', 'ID_SEEN'],
  },
  { type: 'DIVIDE', re: new RegExp(`${SPACE}*([Pp][Ee][Rr]|/)${SPACE}*`, 'y'), states: ['INITIAL', 'ID_SEEN'] },
  { type: 'MULTIPLY', re: new RegExp(`-|\\.|\\*|\u00b7|${SPACE}+`, 'y'), states: ['INITIAL', 'ID_SEEN'] },
  { type: 'EXPONENT', re: /(\^|\*\*)[+-]?[0-9]+/y, states: ['INITIAL', 'ID_SEEN'] },
  { type: 'EXPONENT', re: /[\u00b9\u00b2\u00b3\u2070\u2074-\u2079]+/y, states: ['INITIAL', 'ID_SEEN'] },
  {
    type: 'REAL',
    re: /[+-]?([0-9]+[eE][+-]?[0-9]+|([0-9]+\.[0-9]+|[0-9]+\.|\.[0-9]+)([eE][+-]?[0-9]+)?)/y,
    states: ['INITIAL'],
  },
  { type: 'INT', re: /[+-]?[0-9]+/y, states: ['INITIAL', 'ID_SEEN'] },
  {
    type: 'LOGREF',
    re: new RegExp(`(log|lg|ln|lb)${SPACE}*\\(${SPACE}*[Rr][Ee](:${SPACE})?${SPACE}*`, 'y'),
    states: ['INITIAL', 'ID_SEEN'],
  },
];

const SUPERSCRIPT: Record<string, number> = {
  '\u2070': 0,
  '\u00b9': 1,
  '\u00b2': 2,
  '\u00b3': 3,
  '\u2074': 4,
  '\u2075': 5,
  '\u2076': 6,
  '\u2077': 7,
  '\u2078': 8,
  '\u2079': 9,
};

/** The scanner's `letter`: ASCII letters and _, Latin-1 letters, and UTF-8 characters other than superscripts and the middle dot. */
function isLetter(cp: number): boolean {
  if ((cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a) || cp === 0x5f) return true;
  if (cp < 0x80) return false;
  if (cp <= 0xbf) return cp <= 0xb0 || cp === 0xb4 || cp === 0xb5 || cp >= 0xba;
  if (cp <= 0xff) return cp !== 0xd7 && cp !== 0xf7;
  if (cp < 0x200) return false;
  if (cp >= 0x2070 && cp <= 0x207b) return false;
  return cp <= 0xffff;
}

/** The longest identifier at `pos`: %, ', " or letter (letter|digit)* letter. */
function scanId(text: string, pos: number): string | undefined {
  const first = text[pos];
  if (first === '%' || first === "'" || first === '"') return first;
  const cps = Array.from(text.slice(pos));
  if (!cps.length || !isLetter(cps[0]!.codePointAt(0)!)) return undefined;
  let end = 1;
  let lastLetter = 1;
  while (end < cps.length) {
    const cp = cps[end]!.codePointAt(0)!;
    if (isLetter(cp)) lastLetter = end + 1;
    else if (!(cp >= 0x30 && cp <= 0x39)) break;
    end++;
  }
  return cps.slice(0, lastLetter).join('');
}

class Scanner {
  pos = 0;
  state: State = 'INITIAL';
  private peeked?: Token;
  constructor(readonly text: string) {}

  peek(): Token {
    this.peeked ??= this.scan();
    return this.peeked;
  }

  next(): Token {
    const t = this.peek();
    this.peeked = undefined;
    return t;
  }

  private scan(): Token {
    const pos = this.pos;
    if (pos >= this.text.length) return { type: 'EOF', text: '', pos, value: 0 };
    let best: { type: TokenType; text: string } | undefined;
    for (const rule of RULES) {
      if (!rule.states.includes(this.state)) continue;
      rule.re.lastIndex = pos;
      const m = rule.re.exec(this.text);
      if (m && m[0].length > (best?.text.length ?? 0)) best = { type: rule.type, text: m[0] };
    }
    if (this.state === 'INITIAL') {
      const id = scanId(this.text, pos);
      if (id !== undefined && id.length > (best?.text.length ?? 0)) best = { type: 'ID', text: id };
    }
    best ??= { type: 'CHAR', text: Array.from(this.text.slice(pos))[0]! };
    this.pos = pos + best.text.length;
    let value = 0;
    switch (best.type) {
      case 'ID':
        this.state = 'ID_SEEN';
        break;
      case 'EXPONENT':
        if (best.text.startsWith('^') || best.text.startsWith('*'))
          value = parseInt(best.text.replace(/^(\^|\*\*)/, ''), 10);
        else {
          value = Number(
            Array.from(best.text)
              .map((c) => SUPERSCRIPT[c])
              .join(''),
          );
          this.state = 'INITIAL';
        }
        break;
      case 'REAL':
      case 'INT':
        value = Number(best.text);
        this.state = 'INITIAL';
        break;
      case 'LOGREF':
        value = best.text.startsWith('ln') ? Math.E : best.text.startsWith('lb') ? 2 : 10;
        break;
      default:
        this.state = 'INITIAL';
    }
    return { type: best.type, text: best.text, pos, value };
  }

  /** After SHIFT the scanner reads a number, or a date for time units (udunits2's SHIFT_SEEN state). */
  origin(isTime: boolean): { value: number; since: boolean } | undefined {
    const rest = this.text.slice(this.pos);
    const n = /^[+-]?([0-9]+[eE][+-]?[0-9]+|([0-9]+\.[0-9]+|[0-9]+\.|\.[0-9]+)([eE][+-]?[0-9]+)?|[0-9]+)/.exec(rest);
    // Like flex: the longest match wins; a date ties with a plain integer and wins (time units only).
    const d = isTime
      ? /^([+-]?\d{1,7})(?:-(\d{1,2})(?:-(\d{1,2}))?)?(?:(?:T|[ \t]+)(\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?)?[ \t]*(Z|UTC|GMT|[+-]\d{1,2}(?::?\d{2})?)?/.exec(
          rest,
        )
      : null;
    if (d && d[0].length >= (n?.[0].length ?? 0)) {
      const ms =
        Date.UTC(Number(d[1]), Number(d[2] ?? 1) - 1, Number(d[3] ?? 1), Number(d[4] ?? 0), Number(d[5] ?? 0), 0) +
        Number(d[6] ?? 0) * 1000;
      this.pos += d[0].length;
      this.state = 'INITIAL';
      return { value: (ms - Date.UTC(2001, 0, 1)) / 1000, since: true };
    }
    if (!n) return undefined;
    this.pos += n[0].length;
    this.state = 'INITIAL';
    return { value: Number(n[0]), since: false };
  }
}

export type ParseResult = { ok: true; unit: Unit } | { ok: false; error: string; unknown?: string };

class ParseError extends Error {
  constructor(
    message: string,
    readonly unknown?: string,
  ) {
    super(message);
  }
}

class Parser {
  private readonly s: Scanner;
  constructor(
    text: string,
    private readonly resolve: (id: string) => Unit | undefined,
  ) {
    this.s = new Scanner(text);
  }

  spec(): Unit {
    if (this.s.peek().type === 'EOF') return ONE;
    const u = this.shiftExp();
    const t = this.s.peek();
    if (t.type !== 'EOF') this.fail(t);
    return u;
  }

  private fail(t: Token): never {
    if (t.type === 'EOF') throw new ParseError('syntax error: the unit ends too early');
    throw new ParseError(`syntax error at "${this.s.text.slice(t.pos)}"`);
  }

  private shiftExp(): Unit {
    const u = this.productExp();
    if (this.s.peek().type !== 'SHIFT') return u;
    const shiftToken = this.s.next();
    const isTime = u.dims.every((d, i) => d === (i === 2 ? 1 : 0)) && !u.log;
    const origin = this.s.origin(isTime);
    if (!origin) this.fail({ ...shiftToken, pos: this.s.pos });
    if (origin.since) return { ...u, since: origin.value };
    return shift(u, origin.value);
  }

  private startsPower(t: Token): boolean {
    return (
      t.type === 'ID' ||
      t.type === 'LOGREF' ||
      t.type === 'INT' ||
      t.type === 'REAL' ||
      (t.type === 'CHAR' && t.text === '(')
    );
  }

  private productExp(): Unit {
    let u = this.powerExp();
    for (;;) {
      const t = this.s.peek();
      if (t.type === 'MULTIPLY') {
        this.s.next();
        u = multiply(u, this.powerExp());
      } else if (t.type === 'DIVIDE') {
        this.s.next();
        u = divide(u, this.powerExp());
      } else if (this.startsPower(t)) u = multiply(u, this.powerExp());
      else return u;
    }
  }

  private powerExp(): Unit {
    const b = this.basicExp();
    const t = this.s.peek();
    if (t.type === 'INT' || t.type === 'EXPONENT') {
      this.s.next();
      return raise(b, t.value);
    }
    return b;
  }

  private basicExp(): Unit {
    const t = this.s.next();
    switch (t.type) {
      case 'ID': {
        const u = this.resolve(t.text);
        if (!u) throw new ParseError(`unknown unit "${t.text}"`, t.text);
        return u;
      }
      case 'INT':
      case 'REAL':
        return scale(t.value, ONE);
      case 'LOGREF': {
        const ref = this.productExp();
        const close = this.s.next();
        if (close.type !== 'CHAR' || close.text !== ')') this.fail(close);
        return logOf(t.value, ref);
      }
      case 'CHAR':
        if (t.text === '(') {
          const inner = this.shiftExp();
          const close = this.s.next();
          if (close.type !== 'CHAR' || close.text !== ')') this.fail(close);
          return inner;
        }
        return this.fail(t);
      default:
        return this.fail(t);
    }
  }
}

/** Resolves identifiers against the database, defining units from their XML definitions on first use. */
class Resolver {
  private readonly memo = new Map<UnitDefinition, Unit>();
  private readonly active = new Set<UnitDefinition>();
  constructor(private readonly db: UnitDatabase) {}

  definition(def: UnitDefinition): Unit {
    const known = this.memo.get(def);
    if (known) return known;
    if (this.active.has(def)) throw new UnitError('circular unit definition');
    this.active.add(def);
    try {
      const u =
        def.kind === 'base'
          ? baseUnit(def.index)
          : def.kind === 'dimensionless'
            ? ONE
            : new Parser(def.text, (id) => this.id(id)).spec();
      this.memo.set(def, u);
      return u;
    } finally {
      this.active.delete(def);
    }
  }

  private lookup(text: string): UnitDefinition | undefined {
    return this.db.names.get(text.toLowerCase()) ?? this.db.symbols.get(text);
  }

  /** udunits2's basic_exp ID action: whole names or symbols, else strip prefixes (names any number, one symbol). */
  id(text: string): Unit | undefined {
    let prefix = 1;
    let rest = text;
    let symbolPrefixSeen = false;
    while (rest) {
      const def = this.lookup(rest);
      if (def) return prefix === 1 ? this.definition(def) : scale(prefix, this.definition(def));
      const byName = this.db.prefixNames.find((p) => rest.toLowerCase().startsWith(p.text));
      if (byName) {
        prefix *= byName.value;
        rest = rest.slice(byName.text.length);
        continue;
      }
      const bySymbol = symbolPrefixSeen ? undefined : this.db.prefixSymbols.find((p) => rest.startsWith(p.text));
      if (!bySymbol) return undefined;
      symbolPrefixSeen = true;
      prefix *= bySymbol.value;
      rest = rest.slice(bySymbol.text.length);
    }
    return undefined;
  }
}

let resolver: Resolver | undefined;

/** Parses a unit string as udunits2 does; `{ ok: false, error }` says why not. */
export function parseUnit(text: string): ParseResult {
  resolver ??= new Resolver(unitDatabase());
  const r = resolver;
  try {
    return { ok: true, unit: new Parser(text, (id) => r.id(id)).spec() };
  } catch (e) {
    if (e instanceof ParseError) return { ok: false, error: e.message, unknown: e.unknown };
    if (e instanceof UnitError) return { ok: false, error: e.message };
    throw e;
  }
}

/** Every unit name and symbol of the database (for "did you mean" suggestions). */
export function knownUnitNames(): string[] {
  const db = unitDatabase();
  return [...db.symbols.keys(), ...db.names.keys()];
}
