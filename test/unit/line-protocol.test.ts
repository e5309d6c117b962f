import { describe, expect, it } from 'vitest';
import { Point } from '@influxdata/influxdb-client';
import type { WireSample } from '../../src/bus/payload.ts';
import {
  countLines,
  encodeLines,
  escapeMeasurement,
  escapeTag,
  quoteString,
} from '../../src/collector/sinks/influx/line-protocol.ts';

const TS = 1764072000000;

function sample(p: Partial<WireSample> & Pick<WireSample, 'value'>): WireSample {
  return { tag: 'air_temperature', ts: TS, q: 'good', ...p };
}

function one(s: WireSample, chamber = 'ch01', measurement = 'climate'): string {
  const text = encodeLines(measurement, chamber, [s]);
  expect(text.endsWith('\n')).toBe(true);
  expect(countLines(text)).toBe(1);
  return text.slice(0, -1);
}

/**
 * The same schema built with the official client's Point class (an independent
 * implementation of the escaping), timestamp as a number of ms as a WriteApi with
 * precision ms would write it.
 */
function pointLine(measurement: string, chamber: string, s: WireSample): string | undefined {
  const p = new Point(measurement).tag('chamber', chamber).tag('q', s.q).tag('tag', s.tag).timestamp(s.ts);
  let reason = s.reason;
  if (typeof s.value === 'number') {
    if (Number.isFinite(s.value)) p.floatField('value', s.value);
    else reason ??= 'non-finite value';
  } else if (typeof s.value === 'boolean') p.floatField('value', s.value ? 1 : 0);
  else if (typeof s.value === 'string') p.stringField('text', s.value);
  else reason ??= s.q === 'bad' ? 'bad' : 'no value';
  if (reason !== undefined) p.stringField('reason', reason);
  return p.toLineProtocol({ convertTime: (t) => String(t) });
}

/** Baseline for benchmarks: the whole message through Point. */
export function pointBaselineLines(measurement: string, chamber: string, samples: readonly WireSample[]): string {
  let out = '';
  for (const s of samples) out += `${pointLine(measurement, chamber, s)}\n`;
  return out;
}

interface ParsedLine {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, string | number>;
  ts: string;
}

/**
 * A small parser with InfluxDB 2.x (models/points.go) semantics: a backslash always
 * consumes the next character while scanning; tags unescape `\,` `\ ` `\=`, the
 * measurement `\,` `\ `, string fields `\\` and `\"`; anything else stays literal.
 */
function parseLine(line: string): ParsedLine {
  expect(line.includes('\n')).toBe(false);
  let i = 0;
  const scan = (stops: string): string => {
    const start = i;
    while (i < line.length && !stops.includes(line[i]!)) i += line[i] === '\\' ? 2 : 1;
    if (i > line.length) throw new Error(`dangling backslash in ${line}`);
    return line.slice(start, i);
  };
  const unTag = (s: string) => s.replace(/\\([,= ])/g, '$1');
  const measurement = scan(', ').replace(/\\([, ])/g, '$1');
  const tags: Record<string, string> = {};
  while (line[i] === ',') {
    i++;
    const k = scan('=');
    i++;
    tags[unTag(k)] = unTag(scan(', '));
  }
  expect(line[i]).toBe(' ');
  i++;
  const fields: Record<string, string | number> = {};
  for (;;) {
    const k = unTag(scan('='));
    expect(line[i]).toBe('=');
    i++;
    if (line[i] === '"') {
      i++;
      const raw = scan('"');
      expect(line[i]).toBe('"');
      i++;
      fields[k] = raw.replace(/\\([\\"])/g, '$1');
    } else {
      const raw = scan(', ');
      expect(raw).toMatch(/^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/); // a float: no i/u suffix
      fields[k] = Number(raw);
    }
    if (line[i] !== ',') break;
    i++;
  }
  expect(line[i]).toBe(' ');
  const ts = line.slice(i + 1);
  expect(ts).toMatch(/^\d+$/);
  return { measurement, tags, fields, ts };
}

describe('line protocol encoding', () => {
  it('writes a numeric sample as the documented line', () => {
    expect(one(sample({ value: 21.5 }))).toBe(
      'climate,chamber=ch01,q=good,tag=air_temperature value=21.5 1764072000000',
    );
  });

  it('writes one line per sample, each newline-terminated, and nothing for no samples', () => {
    const text = encodeLines('climate', 'ch01', [
      sample({ value: 1 }),
      sample({ value: 2, tag: 'rh' }),
      sample({ value: null, q: 'bad' }),
    ]);
    expect(text.split('\n')).toHaveLength(4);
    expect(text.endsWith('\n')).toBe(true);
    expect(countLines(text)).toBe(3);
    expect(encodeLines('climate', 'ch01', [])).toBe('');
    expect(countLines('')).toBe(0);
  });

  it('writes integers without an i suffix so the field stays a float', () => {
    expect(one(sample({ value: 42 }))).toBe('climate,chamber=ch01,q=good,tag=air_temperature value=42 1764072000000');
    expect(one(sample({ value: -7 }))).toContain(' value=-7 ');
    expect(one(sample({ value: 0 }))).toContain(' value=0 ');
    expect(one(sample({ value: -0 }))).toContain(' value=0 ');
    expect(parseLine(one(sample({ value: 1e21 }))).fields.value).toBe(1e21);
    expect(parseLine(one(sample({ value: 1.5e-7 }))).fields.value).toBe(1.5e-7);
  });

  it('writes booleans as float 1 and 0', () => {
    expect(one(sample({ value: true, tag: 'door_open' }))).toBe(
      'climate,chamber=ch01,q=good,tag=door_open value=1 1764072000000',
    );
    expect(one(sample({ value: false, tag: 'door_open' }))).toBe(
      'climate,chamber=ch01,q=good,tag=door_open value=0 1764072000000',
    );
  });

  it('writes string values as the text field and reasons as the reason field, fields sorted', () => {
    expect(one(sample({ value: 'RUN', tag: 'mode' }))).toBe(
      'climate,chamber=ch01,q=good,tag=mode text="RUN" 1764072000000',
    );
    expect(one(sample({ value: '', tag: 'mode' }))).toContain(' text="" ');
    expect(one(sample({ value: 20, q: 'uncertain', reason: 'sensor drift' }))).toBe(
      'climate,chamber=ch01,q=uncertain,tag=air_temperature reason="sensor drift",value=20 1764072000000',
    );
    expect(one(sample({ value: 'x', reason: 'r' }))).toContain(' reason="r",text="x" ');
  });

  it('writes a bad sample without a value field, with its reason or reason="bad"', () => {
    expect(one(sample({ value: null, q: 'bad', reason: 'timeout' }))).toBe(
      'climate,chamber=ch01,q=bad,tag=air_temperature reason="timeout" 1764072000000',
    );
    expect(one(sample({ value: null, q: 'bad' }))).toBe(
      'climate,chamber=ch01,q=bad,tag=air_temperature reason="bad" 1764072000000',
    );
    expect(one(sample({ value: null, q: 'uncertain' }))).toContain(' reason="no value" ');
  });

  it('drops non-finite numbers and says why', () => {
    expect(one(sample({ value: Number.NaN }))).toBe(
      'climate,chamber=ch01,q=good,tag=air_temperature reason="non-finite value" 1764072000000',
    );
    expect(one(sample({ value: Number.POSITIVE_INFINITY }))).toContain(' reason="non-finite value" ');
    expect(one(sample({ value: Number.NEGATIVE_INFINITY, q: 'uncertain', reason: 'overrange' }))).toBe(
      'climate,chamber=ch01,q=uncertain,tag=air_temperature reason="overrange" 1764072000000',
    );
  });

  it('escapes commas, spaces and equals signs in chamber ids and tag names', () => {
    expect(one(sample({ value: 1, tag: 'a b,c=d' }), 'ch 1,x=y')).toBe(
      'climate,chamber=ch\\ 1\\,x\\=y,q=good,tag=a\\ b\\,c\\=d value=1 1764072000000',
    );
  });

  it('escapes commas and spaces in the measurement, not equals signs', () => {
    expect(one(sample({ value: 1 }), 'ch01', 'my climate,v=2')).toBe(
      'my\\ climate\\,v=2,chamber=ch01,q=good,tag=air_temperature value=1 1764072000000',
    );
    expect(escapeMeasurement('climate')).toBe('climate');
    expect(() => escapeMeasurement('')).toThrow(RangeError);
  });

  it('escapes quotes and backslashes in string values and reasons', () => {
    expect(one(sample({ value: 'say "hi" C:\\tmp', reason: 'a\\"b' }))).toBe(
      'climate,chamber=ch01,q=good,tag=air_temperature reason="a\\\\\\"b",text="say \\"hi\\" C:\\\\tmp" 1764072000000',
    );
    expect(quoteString('plain')).toBe('"plain"');
  });

  it('keeps every line one line when values contain newlines', () => {
    const line = one(sample({ value: 'l1\nl2\r\n', reason: 'x\ny', tag: 't\na' }), 'c\nh');
    expect(line).toBe('climate,chamber=c\\nh,q=good,tag=t\\na reason="x\\ny",text="l1\\nl2\\r\\n" 1764072000000');
    // InfluxDB keeps unknown escapes literally: newlines are stored as the text `\n`.
    expect(parseLine(line).fields.text).toBe('l1\\nl2\\r\\n');
    expect(parseLine(line).tags.chamber).toBe('c\\nh');
  });

  it('doubles backslash runs that would swallow a separator or an escape', () => {
    expect(escapeTag('ch\\')).toBe('ch\\\\');
    expect(escapeTag('a\\,b')).toBe('a\\\\\\,b');
    expect(escapeTag('a\\b')).toBe('a\\b');
    for (const chamber of ['ch\\', 'ch\\\\', 'a\\ b', 'a\\=b', 'x\\\\\\,y']) {
      const parsed = parseLine(one(sample({ value: 3, tag: `${chamber}t\\` }), chamber));
      expect(Object.keys(parsed.tags)).toEqual(['chamber', 'q', 'tag']);
      expect(parsed.tags.q).toBe('good');
      expect(parsed.fields).toEqual({ value: 3 });
      expect(parsed.ts).toBe(String(TS));
    }
  });

  it('escapes a measurement that would start a comment line', () => {
    expect(escapeMeasurement('#climate')).toBe('\\#climate');
    expect(one(sample({ value: 1 }), 'ch01', '#climate').startsWith('#')).toBe(false);
  });

  it('re-escapes after the measurement or chamber changes (prefix cache)', () => {
    expect(one(sample({ value: 1 }), 'a b', 'm1')).toMatch(/^m1,chamber=a\\ b,/);
    expect(one(sample({ value: 1 }), 'a b', 'm 2')).toMatch(/^m\\ 2,chamber=a\\ b,/);
    expect(one(sample({ value: 1 }), 'c', 'm 2')).toMatch(/^m\\ 2,chamber=c,/);
  });

  describe('agrees with @influxdata/influxdb-client Point', () => {
    const chambers = ['ch01', 'ch 01', 'ch,01', 'ch=01', 'Kammer "Süd"', 'c\\h', 'tab\there', 'nl\nhere', 'ö,=" \\x'];
    const measurements = ['climate', 'my climate', 'a,b', 'a=b', 'm"q', 'm\\x'];
    const samples: WireSample[] = [
      sample({ value: 21.5 }),
      sample({ value: 42, tag: 'co2 ppm' }),
      sample({ value: -0.001, tag: 'a,b=c d' }),
      sample({ value: 1e21, tag: 'big' }),
      sample({ value: 5e-324, tag: 'tiny' }),
      sample({ value: true, tag: 'door' }),
      sample({ value: false, tag: 'door' }),
      sample({ value: 'He said "ok" \\ done', tag: 'msg' }),
      sample({ value: 'tab\there, a=b', tag: 'msg' }),
      sample({ value: null, q: 'bad', reason: 'read "failed": C:\\dev' }),
      sample({ value: null, q: 'bad' }),
      sample({ value: Number.NaN, q: 'uncertain' }),
      sample({ value: 7, q: 'uncertain', reason: 'a=b, c d' }),
      sample({ value: 'x', tag: 'q"t\\s', reason: '' }),
    ];
    for (const m of measurements) {
      for (const ch of chambers) {
        it(`measurement ${JSON.stringify(m)}, chamber ${JSON.stringify(ch)}`, () => {
          const ours = encodeLines(m, ch, samples);
          expect(ours).toBe(pointBaselineLines(m, ch, samples));
          for (const line of ours.slice(0, -1).split('\n')) {
            const parsed = parseLine(line);
            expect(parsed.measurement).toBe(m);
            expect(parsed.tags.chamber).toBe(ch.replace(/\n/g, '\\n').replace(/\t/g, '\\t'));
          }
        });
      }
    }

    it('round-trips every sample through the parser', () => {
      const lines = encodeLines('climate', 'ch 1', samples).slice(0, -1).split('\n');
      lines.forEach((line, i) => {
        const s = samples[i]!;
        const p = parseLine(line);
        expect(p.tags).toEqual({ chamber: 'ch 1', q: s.q, tag: s.tag });
        expect(p.ts).toBe(String(s.ts));
        if (typeof s.value === 'string') expect(p.fields.text).toBe(s.value);
        else if (typeof s.value === 'boolean') expect(p.fields.value).toBe(s.value ? 1 : 0);
        else if (typeof s.value === 'number' && Number.isFinite(s.value)) expect(p.fields.value).toBe(s.value);
        else expect(p.fields.value).toBeUndefined();
        if (s.reason !== undefined) expect(p.fields.reason).toBe(s.reason);
      });
    });
  });
});
