/**
 * The run-file reader (src/netcdf/reader.ts) reads what the writer writes, CDF-2 files
 * beyond 4 GiB included: csv and preview serve the last records of a 64-bit offset
 * file of more than 4.5 GiB (sparse: header and first records, a hole, the last records).
 * And it agrees with ncdump on an ordinary file.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRunSchema } from '../../src/collector/sinks/netcdf/cf.ts';
import type { NcHeader, NcVar } from '../../src/netcdf/format.ts';
import { encodeHeader, layoutOf } from '../../src/netcdf/header.ts';
import { NetcdfWriter, readNetcdfHeader, type NcRecord } from '../../src/netcdf/writer.ts';
import { NcRunReader } from '../../src/netcdf/reader.ts';
import { co2, experimentBody, fixture, fixtureRecord, T0, VARS, writeRunFile, type Fixture } from './api-fixtures.ts';

let f: Fixture;
const auth = (role: keyof Fixture['tokens']) => ({ authorization: `Bearer ${f.tokens[role]}` });
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
const FOUR_AND_A_HALF_GIB = 4.5 * 2 ** 30;

beforeAll(async () => {
  f = await fixture();
});
afterAll(async () => {
  await f?.close();
});

/** Records k of the fixture variables (api-fixtures). */
const records = (ks: number[], chambers: number): NcRecord[] => ks.map((k) => fixtureRecord(k, chambers));

describe('CDF-2 run files over 4 GiB', () => {
  it('csv and preview read the last records of a 4.5 GiB 64-bit offset file', async () => {
    await f.app.inject({
      method: 'POST',
      url: '/api/experiments',
      headers: auth('operator'),
      payload: experimentBody('huge-2025', ['c1', 'c2']),
    });
    await f.app.inject({ method: 'POST', url: '/api/experiments/huge-2025/runs', headers: auth('operator') });
    const e = f.store.get('huge-2025');
    const run = e.runs[0]!;
    const path = join(e.dir, run.file);
    mkdirSync(join(path, '..'), { recursive: true });
    const { schema } = buildRunSchema(
      {
        id: 'huge-2025/r001',
        title: 'test',
        summary: 'test',
        chambers: run.chambers,
        startMs: T0,
        periodMs: 1000,
        creator_name: 'tests',
      },
      VARS,
    );
    // The head: the writer's own CDF-2 file with its first 5 records.
    const w = NetcdfWriter.create(path, schema, { version: 2, fsync: false, overwrite: true });
    w.appendRecords(records([0, 1, 2, 3, 4], 2));
    w.close();
    const h = readNetcdfHeader(path);
    expect(h.version).toBe(2);
    const { recStart, recsize } = layoutOf(h);
    const total = Math.ceil((FOUR_AND_A_HALF_GIB - recStart) / recsize) + 5;
    const tail = Array.from({ length: 5 }, (_, i) => total - 5 + i);
    // The tail: the same writer's bytes for the last 5 records, placed at their offset past 4 GiB.
    const scratchFile = join(f.dir, 'tail.nc');
    const t = NetcdfWriter.create(scratchFile, schema, { version: 2, fsync: false, overwrite: true });
    t.appendRecords(records(tail, 2));
    t.close();
    const bytes = Buffer.alloc(5 * recsize);
    const sfd = openSync(scratchFile, 'r');
    readSync(sfd, bytes, 0, bytes.length, layoutOf(readNetcdfHeader(scratchFile)).recStart);
    closeSync(sfd);
    const fd = openSync(path, 'r+');
    writeSync(fd, bytes, 0, bytes.length, recStart + (total - 5) * recsize);
    const numrecs = Buffer.alloc(4);
    numrecs.writeUInt32BE(total);
    writeSync(fd, numrecs, 0, 4, 4);
    closeSync(fd);
    expect(statSync(path).size).toBeGreaterThan(FOUR_AND_A_HALF_GIB);

    const last = total - 1;
    const from = iso(T0 + (total - 3) * 1000);
    const csv = await f.app.inject({
      url: `/api/experiments/huge-2025/runs/r001/data.csv?vars=co2&from=${from}&chamber=c2`,
      headers: auth('researcher'),
    });
    expect(csv.statusCode, csv.body).toBe(200);
    expect(csv.body.trimEnd().split('\n')).toEqual([
      'time,chamber,co2,co2_qc',
      ...[total - 3, total - 2, last].map((k) => `${iso(T0 + k * 1000)},c2,${co2(k, 1)},0`),
    ]);
    const preview = await f.app.inject({
      url: `/api/experiments/huge-2025/runs/r001/preview?var=co2&from=${iso(T0 + (total - 5) * 1000)}&points=5`,
      headers: auth('viewer'),
    });
    expect(preview.statusCode, preview.body).toBe(200);
    const p = preview.json();
    expect(p.records).toBe(5);
    expect(p.chambers.c1.at(-1)).toMatchObject({ t: iso(T0 + last * 1000), min: co2(last, 0), max: co2(last, 0) });
  }, 120_000);

  it('reads a file whose variables begin past 4 GiB (64-bit begin offsets, which netcdfjs refuses)', async () => {
    await f.app.inject({ method: 'POST', url: '/api/experiments/huge-2025/runs/r001/stop', headers: auth('operator') });
    await f.app.inject({ method: 'POST', url: '/api/experiments/huge-2025/runs', headers: auth('operator') });
    const e = f.store.get('huge-2025');
    const path = join(e.dir, e.runs[1]!.file);
    mkdirSync(join(path, '..'), { recursive: true });
    // A 4.9 GB fixed variable first: the record variables begin beyond 4 GiB.
    const h: NcHeader = {
      version: 2,
      numrecs: 1000,
      dims: [
        { name: 'time', size: 0 },
        { name: 'chamber', size: 2 },
        { name: 'big1', size: 70_000 },
        { name: 'big2', size: 70_000 },
      ],
      attrs: [{ name: 'Conventions', type: 'char', value: 'CF-1.11' }],
      vars: [
        { name: 'blob', dimIds: [2, 3], attrs: [], type: 'byte', vsize: 0, begin: 0 },
        {
          name: 'time',
          dimIds: [0],
          attrs: [{ name: 'units', type: 'char', value: 'seconds since 1970-01-01 00:00:00 UTC' }],
          type: 'double',
          vsize: 0,
          begin: 0,
        },
        {
          name: 'co2',
          dimIds: [0, 1],
          attrs: [
            { name: 'units', type: 'char', value: 'umol mol-1' },
            { name: '_FillValue', type: 'double', value: [-9999] },
          ],
          type: 'double',
          vsize: 0,
          begin: 0,
        },
      ],
    };
    // Laid out by hand (netCDF-C's rule: fixed data first, then the records), offsets past 2^32.
    const [blob, time, co2v] = h.vars as [NcVar, NcVar, NcVar];
    blob.begin = (encodeHeader(h).length + 3) & ~3;
    blob.vsize = 70_000 * 70_000;
    time.begin = blob.begin + blob.vsize;
    time.vsize = 8;
    co2v.begin = time.begin + 8;
    co2v.vsize = 16;
    const { recStart, recsize } = layoutOf(h);
    expect(recStart).toBeGreaterThan(2 ** 32);
    expect(recsize).toBe(24);
    const fd = openSync(path, 'w');
    writeSync(fd, encodeHeader(h), 0, undefined, 0);
    for (const k of [997, 998, 999]) {
      const rec = Buffer.alloc(recsize);
      rec.writeDoubleBE((T0 + k * 1000) / 1000, 0);
      rec.writeDoubleBE(co2(k, 0), 8);
      rec.writeDoubleBE(co2(k, 1), 16);
      writeSync(fd, rec, 0, recsize, recStart + k * recsize);
    }
    closeSync(fd);
    const csv = await f.app.inject({
      url: `/api/experiments/huge-2025/runs/r002/data.csv?from=${iso(T0 + 998_000)}`,
      headers: auth('researcher'),
    });
    expect(csv.statusCode, csv.body).toBe(200);
    // No station_name variable in this file: chambers are named by index.
    expect(csv.body.trimEnd().split('\n')).toEqual([
      'time,chamber,co2',
      `${iso(T0 + 998_000)},0,${co2(998, 0)}`,
      `${iso(T0 + 998_000)},1,${co2(998, 1)}`,
      `${iso(T0 + 999_000)},0,${co2(999, 0)}`,
      `${iso(T0 + 999_000)},1,${co2(999, 1)}`,
    ]);
  }, 120_000);
});

describe('the reader agrees with ncdump', () => {
  it('reads every value of a run file as ncdump prints it', () => {
    const path = join(f.dir, 'small.nc');
    writeRunFile(path, { experiment: 'x', id: 'r001', chambers: ['c1', 'c2'] }, 12);
    const dump = spawnSync('ncdump', ['-v', 'time,co2,air_temperature,lights_on_qc', '-p', '9,17', path], {
      encoding: 'utf8',
    });
    expect(dump.status, dump.stderr).toBe(0);
    const section = (name: string) => {
      const m = new RegExp(`\\n ${name} =([^;]*);`).exec(dump.stdout);
      return m![1]!
        .split(',')
        .map((s) => s.trim())
        .map((s) => (s === '_' ? NaN : Number(s)));
    };
    const r = NcRunReader.open(path);
    try {
      expect(r.records).toBe(12);
      expect(r.chambers).toEqual(['c1', 'c2']);
      const got: Record<string, number[]> = { time: [], co2: [], air_temperature: [], lights_on_qc: [] };
      for (const chunk of r.chunks(0, r.records, 64)) {
        for (let k = 0; k < chunk.count; k++) {
          got.time!.push(chunk.time(k, r.variables.get('time')!));
          for (const name of ['co2', 'air_temperature', 'lights_on_qc'])
            for (let c = 0; c < 2; c++) got[name]!.push(chunk.value(k, r.variables.get(name)!, c));
        }
      }
      for (const name of Object.keys(got)) {
        const want = section(name);
        expect(got[name]!.length, name).toBe(want.length);
        got[name]!.forEach((x, i) => {
          if (Number.isNaN(want[i]!)) expect(x, `${name}[${i}]`).toBeNaN();
          else if (name === 'air_temperature') expect(x, `${name}[${i}]`).toBeCloseTo(want[i]!, 5);
          else expect(x, `${name}[${i}]`).toBe(want[i]);
        });
      }
      expect(r.variables.get('co2')!.units).toBe('umol mol-1');
    } finally {
      r.close();
    }
  });
});
