/**
 * Compares a run's NetCDF file (read with python netCDF4) with the samples a recorder
 * saw on MQTT: every recorded sample of the run's chambers within the run must be in
 * its slot, by the nearest-sample rule (equal distance → the earlier sample; the same
 * instant twice → the first received).
 */
import { expect } from 'vitest';
import { connectMqtt, type MqttConnection } from '../../src/bus/mqtt-client.ts';
import { DataMessage } from '../../src/bus/payload.ts';
import { pythonView } from './netcdf.ts';

export interface Recorded {
  chamber: string;
  tag: string;
  ts: number;
  value: number | boolean | null;
  q: string;
  order: number;
}

/** A client subscribed to `<prefix>/+/data` (persistent session) that keeps every sample it sees. */
export async function recorder(
  url: string,
  clientId: string,
  prefix = 'octopus',
): Promise<{ samples: Recorded[]; conn: MqttConnection }> {
  const samples: Recorded[] = [];
  let order = 0;
  const conn = connectMqtt({ url, clientId, clean: false });
  conn.on('message', (topic, payload) => {
    if (!topic.endsWith('/data')) return;
    const m = DataMessage.safeParse(JSON.parse(payload.toString()));
    if (!m.success) return;
    for (const s of m.data.samples) {
      if (typeof s.value === 'string') continue;
      samples.push({ chamber: m.data.chamber, tag: s.tag, ts: s.ts, value: s.value, q: s.q, order: order++ });
    }
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('recorder did not connect')), 20_000);
    conn.on('connect', () => {
      clearTimeout(t);
      resolve();
    });
  });
  await conn.subscribe(`${prefix}/+/data`, 1);
  return { samples, conn };
}

export interface Comparison {
  /** Cells checked (one per slot, chamber and variable that has recorded samples). */
  cells: number;
  /** Cells whose sample is not in the file (fill or another quality). */
  missing: string[];
  /** Cells with another value than the nearest recorded sample. */
  wrong: string[];
  /** Measured cells (qc 0–2) without any recorded sample: invented. */
  invented: string[];
  times: number;
  duplicateTimes: number;
}

/**
 * Checks the file against the recorded samples of `chambers` stamped within the run (its
 * start and stop instants; the first slot is the one the start rounds to, the last one
 * the slot the stop rounds to, both partial).
 */
export function compareRun(
  file: string,
  samples: readonly Recorded[],
  o: { gridStartMs: number; periodMs: number; runStartMs: number; stopMs: number; chambers: string[]; tags?: string[] },
): Comparison {
  const lastSlot = Math.round((o.stopMs - o.gridStartMs) / o.periodMs);
  const best = new Map<string, { code: number; order: number; s: Recorded }>();
  const tags = new Set<string>();
  for (const s of samples) {
    if (!o.chambers.includes(s.chamber)) continue;
    if (o.tags && !o.tags.includes(s.tag)) continue;
    if (s.ts < o.runStartMs || s.ts > o.stopMs) continue;
    const k = Math.round((s.ts - o.gridStartMs) / o.periodMs);
    if (k < 0 || k > lastSlot) continue;
    const slot = o.gridStartMs + k * o.periodMs;
    const code = Math.abs(s.ts - slot) * 2 + (s.ts > slot ? 1 : 0);
    const key = `${k}|${s.chamber}|${s.tag}`;
    const b = best.get(key);
    if (!b || code < b.code) best.set(key, { code, order: s.order, s });
    tags.add(s.tag);
  }
  const view = pythonView(file).netcdf4;
  const stations = view.vars.station_name!.data as string[];
  const times = (view.vars.time!.data as number[]).map((t) => Math.round(t * 1000));
  const out: Comparison = {
    cells: 0,
    missing: [],
    wrong: [],
    invented: [],
    times: times.length,
    duplicateTimes: times.length - new Set(times).size,
  };
  for (const tag of tags) {
    const v = view.vars[tag];
    const q = view.vars[`${tag}_qc`];
    if (!v || !q) continue;
    const data = v.data as Array<Array<number | null>>;
    const qc = q.data as number[][];
    times.forEach((t, i) => {
      const k = Math.round((t - o.gridStartMs) / o.periodMs);
      stations.forEach((c, j) => {
        if (!o.chambers.includes(c)) return;
        const b = best.get(`${k}|${c}|${tag}`);
        const got = data[i]![j] ?? null;
        const flag = qc[i]![j]!;
        const where = `${c}/${tag} slot ${k} (${new Date(t).toISOString()})`;
        if (!b) {
          if (flag <= 2) out.invented.push(`${where}: qc ${flag} value ${got}`);
          return;
        }
        out.cells++;
        const want = b.s.value === null ? null : Number(b.s.value);
        if (flag > 2) return void out.missing.push(`${where}: qc ${flag}, want ${want} (ts ${b.s.ts})`);
        const same =
          want === null ? got === null : got !== null && Math.abs(got - want) <= Math.max(1e-6, Math.abs(want) * 1e-6);
        if (!same) out.wrong.push(`${where}: ${got}, want ${want} (ts ${b.s.ts})`);
      });
    });
  }
  return out;
}

/**
 * Asserts that the run's file holds exactly what the recorder saw within the run:
 * at least `minCells` cells compared, none missing, wrong, invented or twice, and one
 * record per slot from the start's slot to the stop's. Prints the figures under `label`.
 */
export function expectRunMatchesRecorder(
  label: string,
  file: string,
  samples: readonly Recorded[],
  run: { start: string; stop: string },
  chambers: string[],
  minCells: number,
): Comparison {
  const gridStartMs = Math.round(Date.parse(run.start) / 1000) * 1000;
  const stopMs = Date.parse(run.stop);
  const c = compareRun(file, samples, {
    gridStartMs,
    periodMs: 1000,
    runStartMs: Date.parse(run.start),
    stopMs,
    chambers,
  });
  console.info(
    `${label}: ${c.cells} cells checked against the recorder, ${c.times} records, ${c.missing.length} missing, ${c.wrong.length} wrong, ${c.invented.length} invented, ${c.duplicateTimes} duplicate times`,
  );
  expect(c.cells).toBeGreaterThan(minCells);
  expect(c.missing, c.missing.slice(0, 10).join('\n')).toEqual([]);
  expect(c.wrong, c.wrong.slice(0, 10).join('\n')).toEqual([]);
  expect(c.invented, c.invented.slice(0, 10).join('\n')).toEqual([]);
  expect(c.duplicateTimes).toBe(0);
  expect(c.times).toBe(Math.round((stopMs - gridStartMs) / 1000) + 1);
  return c;
}

/** Kills something `times` times, each after 1.5–4 s at random; returns when each kill happened. */
export async function killAtRandomMoments(times: number, kill: () => Promise<void>): Promise<number[]> {
  const kills: number[] = [];
  for (let i = 0; i < times; i++) {
    await new Promise((r) => setTimeout(r, 1500 + Math.random() * 2500));
    kills.push(Date.now());
    await kill();
  }
  return kills;
}
