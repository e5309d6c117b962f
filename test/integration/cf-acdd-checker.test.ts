/**
 * The independent CF-1.11 / ACDD-1.3 checker (test/support/cf_acdd_check.py) is itself
 * tested: a file with one mistake of each kind it covers gives exactly those errors, so a
 * file that passes has been looked at, not waved through.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NetcdfWriter, type NcSchema } from '../../src/netcdf/writer.ts';
import { cfAcddCheck } from '../support/cf-check.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';

afterAll(() => cleanScratch());

const FILL = 9.969209968386869e36;
const GOOD_GLOBALS = {
  Conventions: 'CF-1.11, ACDD-1.3',
  featureType: 'timeSeries',
  cdm_data_type: 'Station',
  title: 't',
  summary: 's',
  keywords: 'air_temperature',
  keywords_vocabulary: 'CF:NetCDF COARDS Climate and Forecast Standard Names',
  id: 'x/r001',
  naming_authority: 'org.example',
  history: 'h',
  source: 's',
  processing_level: 'p',
  comment: 'c',
  acknowledgement: 'a',
  license: 'CC-BY-4.0',
  standard_name_vocabulary: 'CF Standard Name Table v83',
  date_created: '2026-01-01T00:00:00Z',
  creator_name: 'Ada',
  institution: 'I',
  project: 'P',
  publisher_name: 'N',
  publisher_email: 'e@example.org',
  publisher_url: 'https://example.org',
  time_coverage_start: '2026-01-01T00:00:00Z',
  time_coverage_end: '2026-01-01T00:00:01Z',
  time_coverage_duration: 'PT1S',
  time_coverage_resolution: 'PT1S',
};

type Schema = NcSchema & { variables: NcSchema['variables'][number][] };

function write(path: string, mutate: (s: Schema) => void): string {
  const s: Schema = {
    globalAttributes: { ...GOOD_GLOBALS },
    dimensions: [
      { name: 'time', size: 'unlimited' },
      { name: 'chamber', size: 1 },
      { name: 'name_strlen', size: 2 },
    ],
    variables: [
      {
        name: 'time',
        type: 'double',
        dims: ['time'],
        attributes: {
          standard_name: 'time',
          units: 'seconds since 1970-01-01 00:00:00',
          calendar: 'standard',
          axis: 'T',
        },
      },
      {
        name: 'station_name',
        type: 'char',
        dims: ['chamber', 'name_strlen'],
        data: ['c1'],
        attributes: { cf_role: 'timeseries_id', long_name: 'chamber id' },
      },
      {
        name: 'ta',
        type: 'float',
        dims: ['time', 'chamber'],
        attributes: {
          standard_name: 'air_temperature',
          units: 'degree_Celsius',
          _FillValue: FILL,
          cell_methods: 'time: point',
          coordinates: 'station_name',
          ancillary_variables: 'ta_qc',
        },
      },
      {
        name: 'ta_qc',
        type: 'byte',
        dims: ['time', 'chamber'],
        attributes: {
          standard_name: 'quality_flag',
          flag_values: { type: 'byte', value: [0, 1] },
          flag_meanings: 'good bad',
          coordinates: 'station_name',
        },
      },
      { name: 'code', type: 'double', dims: ['time', 'chamber'], attributes: { long_name: 'a code', units: '1' } },
    ],
  };
  mutate(s);
  const w = NetcdfWriter.create(path, s, { fsync: false, overwrite: true });
  w.appendRecords([
    { time: 1_767_225_600, values: { ta: [20], ta_qc: [0], code: [3] } },
    { time: 1_767_225_601, values: { ta: [21], ta_qc: [0], code: [3] } },
  ]);
  w.close();
  return path;
}

const attrs = (s: Schema, name: string) =>
  s.variables.find((v) => v.name === name)!.attributes as Record<string, unknown>;

describe('the CF/ACDD checker', () => {
  const dir = scratch('octopus-checker-');

  it('passes a correct file', () => {
    const f = write(join(dir, 'good.nc'), () => {});
    expect(cfAcddCheck(f)[f]!.errors).toEqual([]);
  });

  it('reports each kind of mistake', () => {
    const f = write(join(dir, 'bad.nc'), (s) => {
      const g = s.globalAttributes as Record<string, unknown>;
      g.Conventions = 'CF-1.6';
      delete g.institution;
      delete g.keywords;
      g.time_coverage_duration = '1 second';
      attrs(s, 'ta').standard_name = 'air_temprature';
      attrs(s, 'ta').cell_methods = 'time: average';
      attrs(s, 'ta').ancillary_variables = 'ta_quality';
      attrs(s, 'ta_qc').flag_meanings = 'good bad extra';
      delete attrs(s, 'code').units;
      s.variables.push({
        name: 'rh',
        type: 'float',
        dims: ['time', 'chamber'],
        attributes: { standard_name: 'relative_humidity', units: 'm', _FillValue: FILL },
      });
      s.variables.push({
        name: 'pa',
        type: 'float',
        dims: ['time', 'chamber'],
        attributes: { standard_name: 'air_pressure', units: 'hPa', _FillValue: FILL, cell_methods: 'depth: mean' },
      });
    });
    const errors = cfAcddCheck(f)[f]!.errors;
    const expected = [
      /Conventions "CF-1.6" does not name CF-1.11/,
      /Conventions "CF-1.6" does not name ACDD-1.3/,
      /ta: standard_name "air_temprature" is not in the CF standard name table/,
      /ta: cell_methods "time: average": unknown method "average"/,
      /ta: ancillary_variables names "ta_quality", which is not a variable of the file/,
      /ta_qc: 2 flag_values but 3 flag_meanings/,
      /code: numeric data variable without units/,
      /rh: units "m" do not convert to "1", the canonical units of relative_humidity/,
      /pa: cell_methods "depth: mean": "depth" is neither a dimension nor a variable/,
      /ACDD highly recommended global attribute keywords missing/,
      /ACDD recommended global attribute institution missing/,
      /time_coverage_duration "1 second" is not an ISO 8601 duration/,
    ];
    for (const re of expected)
      expect(
        errors.some((e) => re.test(e)),
        `${re} in\n${errors.join('\n')}`,
      ).toBe(true);
    expect(errors).toHaveLength(expected.length);
  });
});
