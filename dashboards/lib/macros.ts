/**
 * What Grafana's InfluxDB datasource does to a raw InfluxQL query before sending it, so
 * tests and the benchmark can run the generated queries against a real influxd:
 * `$timeFilter`, `$__interval`, `$__interval_ms` and template variables (a multi-value
 * variable inside a regex becomes `(a|b)`, as Grafana formats it for InfluxDB).
 */
export interface MacroContext {
  from: number;
  to: number;
  /** Panel width in points (Grafana: the panel's pixel width; 1000 is a wide panel). */
  maxDataPoints?: number;
  /** The datasource's minimum interval (dashboards/provisioning: 1s). */
  minIntervalMs?: number;
  vars?: Record<string, string | string[]>;
}

// Grafana's rounding of the computed interval (public/app/core/utils/kbn roundInterval).
const ROUND: Array<[below: number, to: number]> = [
  [15, 10],
  [35, 20],
  [75, 50],
  [150, 100],
  [250, 200],
  [350, 300],
  [750, 500],
  [1500, 1000],
  [3500, 2000],
  [7500, 5000],
  [12500, 10000],
  [17500, 15000],
  [25000, 20000],
  [45000, 30000],
  [90000, 60000],
  [150000, 120000],
  [270000, 300000],
  [450000, 600000],
  [750000, 900000],
  [1050000, 1200000],
  [1500000, 1800000],
  [2700000, 3600000],
  [5400000, 7200000],
  [9000000, 10800000],
  [16200000, 21600000],
  [32400000, 43200000],
  [64800000, 86400000],
];

export function roundInterval(ms: number): number {
  for (const [below, to] of ROUND) if (ms < below) return to;
  return 604800000;
}

/** The interval Grafana picks for a panel: range / width, rounded, at least the minimum. */
export function intervalMs(ctx: MacroContext): number {
  return Math.max(roundInterval((ctx.to - ctx.from) / (ctx.maxDataPoints ?? 1000)), ctx.minIntervalMs ?? 1000);
}

/** InfluxQL duration literal: 1h, 5m, 30s, 500ms. */
export function duration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86400000],
    ['h', 3600000],
    ['m', 60000],
    ['s', 1000],
  ] as const)
    if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

const escapeRegex = (s: string) => s.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');

export function expandMacros(query: string, ctx: MacroContext): string {
  const iv = intervalMs(ctx);
  let q = query
    .replaceAll('$timeFilter', `time >= ${ctx.from}ms and time <= ${ctx.to}ms`)
    .replaceAll('$__interval_ms', String(iv))
    .replaceAll('$__interval', duration(iv));
  // Longest names first so that $run does not eat the start of $running.
  const names = Object.keys(ctx.vars ?? {}).sort((a, b) => b.length - a.length);
  for (const name of names) {
    const value = ctx.vars![name]!;
    const values = Array.isArray(value) ? value : [value];
    // Inside /…/ Grafana formats values as a regex alternation; elsewhere as the raw value.
    q = q.replace(new RegExp(`/\\^\\$${name}\\$/`, 'g'), `/^(${values.map(escapeRegex).join('|')})$/`);
    q = q.replace(new RegExp(`\\$${name}\\b`, 'g'), values.join(','));
  }
  const left = /\$(?!\d)[A-Za-z_]\w*/.exec(q.replace(/'[^']*'/g, ''));
  if (left) throw new Error(`unexpanded ${left[0]} in ${q}`);
  return q;
}
