import { BASE_SYMBOLS } from './database.ts';

/**
 * A parsed unit: a value x in this unit is `factor * x + offset` in SI base units whose
 * exponents are `dims` (m, kg, s, A, K, mol, cd). Logarithmic units (dB re 1 mW…) carry
 * their base and reference instead; time-reference units (days since 2000-01-01) their origin.
 */
export interface Unit {
  factor: number;
  offset: number;
  dims: number[];
  log?: { base: number; reference: Unit };
  /** Seconds since 2001-01-01 UTC (udunits2's origin) for `… since <date>` units. */
  since?: number;
}

export class UnitError extends Error {}

export const ONE: Unit = { factor: 1, offset: 0, dims: BASE_SYMBOLS.map(() => 0) };

export function baseUnit(index: number): Unit {
  return { factor: 1, offset: 0, dims: BASE_SYMBOLS.map((_s, i) => (i === index ? 1 : 0)) };
}

const linear = (u: Unit, what: string): Unit => {
  if (u.log) throw new UnitError(`a logarithmic unit cannot be ${what}`);
  if (u.since !== undefined) throw new UnitError(`a time-reference unit cannot be ${what}`);
  return u;
};

/** `k u`: a number times a unit (a prefix, `1e-6 m`). */
export function scale(k: number, u: Unit): Unit {
  if (u.log) return { ...u, factor: u.factor * k };
  linear(u, 'scaled');
  return { factor: u.factor * k, offset: u.offset, dims: u.dims };
}

/** Products drop offsets, as udunits2 does (degree_Celsius/s is K/s). */
export function multiply(a: Unit, b: Unit): Unit {
  linear(a, 'multiplied');
  linear(b, 'multiplied');
  return { factor: a.factor * b.factor, offset: 0, dims: a.dims.map((d, i) => d + b.dims[i]!) };
}

export function raise(u: Unit, n: number): Unit {
  linear(u, 'raised to a power');
  if (n === 1) return u;
  return { factor: u.factor ** n, offset: 0, dims: u.dims.map((d) => d * n) };
}

export function divide(a: Unit, b: Unit): Unit {
  return multiply(a, raise(b, -1));
}

/** `u @ origin`: the same unit with its zero moved to `origin` units (degree_Celsius = K @ 273.15). */
export function shift(u: Unit, origin: number): Unit {
  linear(u, 'shifted');
  return { factor: u.factor, offset: u.factor * origin + u.offset, dims: u.dims };
}

export function logOf(base: number, reference: Unit): Unit {
  linear(reference, 'the reference of a logarithm');
  return { factor: 1, offset: 0, dims: ONE.dims, log: { base, reference } };
}

export function sameDimension(a: Unit, b: Unit): boolean {
  return a.dims.every((d, i) => Math.abs(d - b.dims[i]!) < 1e-9);
}

/**
 * Whether values convert from `a` to `b` (same dimension; radians and steradians count
 * as 1, as in udunits2). Logarithmic units convert only to logarithmic units of the same
 * base over convertible references; time references only to time references.
 */
export function convertible(a: Unit, b: Unit): boolean {
  if (a.log || b.log)
    return !!a.log && !!b.log && a.log.base === b.log.base && convertible(a.log.reference, b.log.reference);
  if ((a.since === undefined) !== (b.since === undefined)) return false;
  return sameDimension(a, b);
}

/** Converts a value from `a` to `b` (both linear or affine, and convertible). */
export function convert(value: number, a: Unit, b: Unit): number {
  if (!convertible(a, b) || a.log || b.log) throw new UnitError('units are not convertible');
  return (a.factor * value + a.offset - b.offset) / b.factor;
}

/** The unit in SI base units, `1000 m-1 kg s-2`, for messages. */
export function describeUnit(u: Unit): string {
  if (u.log)
    return `${u.factor === 1 ? '' : `${Number(u.factor.toPrecision(12))} `}log${u.log.base === 10 ? '10' : u.log.base === 2 ? '2' : ''}(re ${describeUnit(u.log.reference)})`;
  const parts = BASE_SYMBOLS.flatMap((s, i) => {
    const d = u.dims[i]!;
    return d === 0 ? [] : [d === 1 ? s : `${s}${Number(d.toPrecision(12))}`];
  });
  const dims = parts.join(' ') || '1';
  const factor = u.factor === 1 ? '' : `${Number(u.factor.toPrecision(12))} `;
  const offset = u.offset === 0 ? '' : ` @ ${Number((u.offset / u.factor).toPrecision(12))}`;
  const since = u.since !== undefined ? ' since a reference time' : '';
  return `${factor}${dims}${offset}${since}`;
}
