import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NetCDFReader } from 'netcdfjs';
import { NetcdfWriter, readNetcdfHeader, type NcSchema } from '../../src/netcdf/writer.ts';
import { encodeHeader, layoutOf, parseHeader } from '../../src/netcdf/header.ts';
import { pad4 } from '../../src/netcdf/format.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-nc-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = () => join(dir, `f${n++}.nc`);

const schema = (extra: Partial<NcSchema> = {}): NcSchema => ({
  globalAttributes: { title: 'unit', answer: { type: 'int', value: 42 } },
  dimensions: [
    { name: 'time', size: 'unlimited' },
    { name: 'chamber', size: 3 },
    { name: 'name_strlen', size: 4 },
  ],
  variables: [
    { name: 'time', type: 'double', dims: ['time'], attributes: { units: 'seconds since 1970-01-01 00:00:00' } },
    { name: 'station_name', type: 'char', dims: ['chamber', 'name_strlen'], data: ['a', 'bb', 'cccc'] },
    { name: 'ids', type: 'int', dims: ['chamber'], data: [7, 8, 9] },
    { name: 't', type: 'float', dims: ['time', 'chamber'], attributes: { _FillValue: -999 } },
    { name: 'q', type: 'byte', dims: ['time', 'chamber'], attributes: { flag_values: [0, 1, 2, 3] } },
    { name: 's', type: 'short', dims: ['time', 'chamber'] },
    { name: 'd', type: 'double', dims: ['time', 'chamber'] },
  ],
  ...extra,
});

const read = (p: string) => new NetCDFReader(readFileSync(p));

describe('netCDF header', () => {
  it('encodes and parses back the same header (CDF-1 and CDF-2)', () => {
    for (const version of [1, 2] as const) {
      const p = file();
      NetcdfWriter.create(p, schema(), { version }).close();
      const h = readNetcdfHeader(p);
      expect(h.version).toBe(version);
      const again = parseHeader(encodeHeader(h));
      expect(again.header).toEqual(h);
      expect(h.attrs).toContainEqual({ name: 'answer', type: 'int', value: [42] });
      expect(h.vars.find((v) => v.name === 't')!.attrs).toContainEqual({
        name: '_FillValue',
        type: 'float',
        value: [-999],
      });
    }
  });

  it('reserves header space: data begins at the reserve, fixed data before the records', () => {
    const p = file();
    NetcdfWriter.create(p, schema(), { headerReserve: 8192 }).close();
    const h = readNetcdfHeader(p);
    const station = h.vars.find((v) => v.name === 'station_name')!;
    expect(station.begin).toBe(8192);
    expect(station.vsize).toBe(12);
    const lay = layoutOf(h);
    expect(lay.recStart).toBe(8192 + 12 + 12);
    expect(lay.recsize).toBe(8 + 12 + 4 + 8 + 24); // byte×3 and short×3 padded to 4 and 8
    expect(statSync(p).size).toBe(lay.recStart);
  });

  it('packs a lone record variable without padding, as netCDF-C does', () => {
    const p = file();
    const w = NetcdfWriter.create(p, {
      dimensions: [
        { name: 'time', size: 'unlimited' },
        { name: 'x', size: 3 },
      ],
      variables: [{ name: 'b', type: 'byte', dims: ['time', 'x'] }],
    });
    w.appendColumns({ time: [0, 0], values: { b: [1, 2, 3, 4, 5, 6] } });
    w.close();
    expect(w.layout.recsize).toBe(3);
    expect(read(p).getDataVariable('b').flat()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses a header that outgrows its reserve, naming the sizes', () => {
    const p = file();
    const w = NetcdfWriter.create(p, schema(), { headerReserve: 0 });
    expect(() => w.close({ summary: 'x'.repeat(5000) })).toThrow(/header grew to \d+ bytes but only \d+ are reserved/);
    expect(read(p).getAttribute('title')).toBe('unit');
  });
});

describe('NetcdfWriter', () => {
  it('writes records (objects and columns) that netcdfjs reads back, with fill values', () => {
    const p = file();
    const w = NetcdfWriter.create(p, schema(), { bufferBytes: 100 }); // a few records per buffer write
    w.appendRecords([
      { time: 10, values: { t: [1.5, null, 3.5], q: [0, 3, 1], s: [-1, 2, 3], d: [0.1, 0.2, 0.3] } },
      { time: 11, values: {} },
    ]);
    w.appendColumns({
      time: [12, 13],
      values: { t: [4, 5, 6, 7, 8, 9], q: [0, 0, 0, 2, 2, 2], s: [1, 1, 1, 2, 2, 2], d: [1, 2, 3, 4, 5, 6] },
    });
    w.close({ time_coverage_end: 'end' });
    const r = read(p);
    expect(r.recordDimension.length).toBe(4);
    expect(r.getDataVariable('time')).toEqual([10, 11, 12, 13]);
    expect(r.getDataVariable('t').flat()).toEqual([1.5, -999, 3.5, -999, -999, -999, 4, 5, 6, 7, 8, 9]);
    // netcdfjs 4 misreads byte/short record variables whose slab is padded (it takes the
    // padded vsize as the width) and reads bytes unsigned: those are checked with ncdump,
    // netCDF4 and xarray in test/integration/netcdf-tools.test.ts.
    expect(r.getDataVariable('d').flat()).toEqual([
      0.1, 0.2, 0.3, 9.969209968386869e36, 9.969209968386869e36, 9.969209968386869e36, 1, 2, 3, 4, 5, 6,
    ]);
    expect(r.getDataVariable('ids')).toEqual([7, 8, 9]);
    expect(r.getAttribute('time_coverage_end')).toBe('end');
  });

  it('counts in numrecs only flushed records', () => {
    const p = file();
    const w = NetcdfWriter.create(p, schema(), { bufferBytes: 1 });
    w.appendColumns({ time: [1, 2, 3], values: {} });
    expect(w.recordCount).toBe(3);
    expect(readNetcdfHeader(p).numrecs).toBe(0); // written (buffer of one record) but not committed
    w.flush();
    expect(readNetcdfHeader(p).numrecs).toBe(3);
    w.close();
  });

  it('resume cuts a partial record and continues appending', () => {
    const p = file();
    const w = NetcdfWriter.create(p, schema());
    w.appendColumns({ time: [1, 2], values: { t: [1, 2, 3, 4, 5, 6] } });
    w.flush();
    w.appendColumns({ time: [3], values: { t: [7, 8, 9] } }); // buffered only: lost, as in a crash
    const rs = w.layout.recsize;
    appendFileSync(p, Buffer.alloc(rs + 5, 0x55)); // a complete-looking and a torn record beyond numrecs
    const r = NetcdfWriter.resume(p);
    expect(r.recordCount).toBe(2);
    expect(statSync(p).size).toBe(r.layout.recStart + 2 * rs);
    r.appendRecords([{ time: 3, values: { t: [7, 8, 9] } }]);
    r.close();
    const rd = read(p);
    expect(rd.getDataVariable('time')).toEqual([1, 2, 3]);
    expect(rd.getDataVariable('t').flat()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('resume lowers numrecs when the file is shorter than it claims', () => {
    const p = file();
    const w = NetcdfWriter.create(p, schema());
    w.appendColumns({ time: [1, 2], values: {} });
    w.close();
    const h = readNetcdfHeader(p);
    const { recStart, recsize } = layoutOf(h);
    const buf = readFileSync(p).subarray(0, recStart + recsize + 3);
    const q = file();
    appendFileSync(q, buf);
    const r = NetcdfWriter.resume(q);
    expect(r.committedRecords).toBe(1);
    r.close();
    expect(read(q).getDataVariable('time')).toEqual([1]);
  });

  it('chooses CDF-2 when asked or when the expected size passes 2 GiB, and switches a growing CDF-1 file', () => {
    const a = file();
    NetcdfWriter.create(a, schema(), { expectedBytes: 3 * 2 ** 30 }).close();
    expect(readFileSync(a)[3]).toBe(2);
    const b = file();
    NetcdfWriter.create(b, schema(), { expectedBytes: 2 ** 20 }).close();
    expect(readFileSync(b)[3]).toBe(1);
    const c = file();
    const w = NetcdfWriter.create(c, schema(), { cdf2ThresholdBytes: 70_000 });
    w.appendColumns({ time: new Array(100).fill(0), values: {} });
    expect(readFileSync(c)[3]).toBe(1);
    w.flush();
    expect(w.version).toBe(2);
    w.close();
    const r = read(c);
    expect(r.version).toBe('64-bit offset format');
    expect(r.recordDimension.length).toBe(100);
  });

  it('does not overwrite an existing file unless told to', () => {
    const p = file();
    NetcdfWriter.create(p, schema()).close();
    expect(() => NetcdfWriter.create(p, schema())).toThrow(/EEXIST/);
    NetcdfWriter.create(p, schema(), { overwrite: true }).close();
  });

  it('rejects records of the wrong shape, naming the variable', () => {
    const w = NetcdfWriter.create(file(), schema());
    expect(() => w.appendRecords([{ time: 0, values: { t: [1, 2] } }])).toThrow(/^t: 3 elements per record, got 2/);
    expect(() => w.appendColumns({ time: [0], values: { t: [1] } })).toThrow(/^t: expected 3 values/);
    w.close();
  });
});

describe('netCDF sizes', () => {
  it('pads to 4 bytes exactly beyond 2^31 and 2^32 (CDF-2 offsets)', () => {
    for (const n of [0, 1, 3, 4, 5, 2 ** 31 - 1, 2 ** 31 + 1, 2 ** 32 + 2, 5 * 2 ** 30 + 3]) {
      const p = pad4(n);
      expect(p % 4).toBe(0);
      expect(p - n).toBeGreaterThanOrEqual(0);
      expect(p - n).toBeLessThan(4);
    }
  });
});
