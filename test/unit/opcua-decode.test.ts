import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { OpcuaProfile, OpcuaTag } from '../../src/config/profile-schema.ts';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import {
  decodeDataValue,
  encodeWrite,
  qualityOfStatus,
  sampleTime,
  shortestFloat32,
  statusCodeFromName,
  toEngineering,
} from '../../src/drivers/opcua/decode.ts';
import { tagNameFromPath } from '../../src/drivers/opcua/browse.ts';
import { udunitsFromUnece, uneceCode, uneceFromUdunits, uneceUnitId } from '../../src/drivers/opcua/units.ts';
import { parseNodeIdText, resolveNodeId, toNsuText } from '../../src/drivers/opcua/node-id.ts';
import { checkOpcuaTestcases } from '../../src/drivers/opcua/testcase.ts';

const tag = (t: Record<string, unknown>) =>
  OpcuaTag.parse({ name: 'x', node: 'nsu=urn:a;s=X', type: 'Double', description: 'x', ...t });

describe('OPC UA decode', () => {
  it('maps status code severity bits to quality', () => {
    expect(qualityOfStatus(0)).toBe('good');
    expect(qualityOfStatus(0x002d0000)).toBe('good'); // GoodSubscriptionTransferred
    expect(qualityOfStatus(0x40920000)).toBe('uncertain'); // UncertainSubNormal
    expect(qualityOfStatus(0x808c0000)).toBe('bad'); // BadSensorFailure
    expect(qualityOfStatus(0xc0000000)).toBe('bad'); // reserved severity 11 counts as bad
  });

  it('applies scale and offset to numbers only, without float noise', () => {
    expect(toEngineering({ scale: 0.1, offset: 0 }, 215)).toBe(21.5);
    expect(toEngineering({ scale: 2, offset: -40 }, 30)).toBe(20);
    expect(toEngineering({ scale: 0.1, offset: 0 }, true)).toBe(true);
    expect(toEngineering({ scale: 0.1, offset: 0 }, 'a')).toBe('a');
  });

  it('shows Float values as the shortest decimal of the same float32', () => {
    expect(shortestFloat32(Math.fround(21.1))).toBe(21.1);
    expect(shortestFloat32(Math.fround(0.3))).toBe(0.3);
    expect(shortestFloat32(24.75)).toBe(24.75);
    expect(shortestFloat32(0.1)).toBe(0.1); // not a float32: a Double passes unchanged
    const s = decodeDataValue(
      'c1',
      tag({ type: 'Float' }),
      { value: Math.fround(64.3), statusCode: 0, statusName: 'Good' },
      1,
    );
    expect(s.value).toBe(64.3);
  });

  it('takes SourceTimestamp, then ServerTimestamp, then receive time', () => {
    expect(sampleTime({ sourceTimestamp: 10, serverTimestamp: 20 }, 30)).toBe(10);
    expect(sampleTime({ serverTimestamp: 20 }, 30)).toBe(20);
    expect(sampleTime({}, 30)).toBe(30);
  });

  it('turns a Bad value into a bad sample without value, naming status and node', () => {
    const s = decodeDataValue(
      'c1',
      tag({}),
      { value: 12, statusCode: 0x808c0000, statusName: 'BadSensorFailure', sourceTimestamp: 5 },
      9,
    );
    expect(s).toEqual({
      chamber: 'c1',
      tag: 'x',
      ts: 5,
      value: null,
      q: 'bad',
      reason: 'BadSensorFailure (node nsu=urn:a;s=X)',
    });
  });

  it('keeps an Uncertain value with its status as reason', () => {
    const s = decodeDataValue(
      'c1',
      tag({ scale: 10 }),
      { value: 1.5, statusCode: 0x40920000, statusName: 'UncertainSubNormal' },
      9,
    );
    expect(s).toEqual({ chamber: 'c1', tag: 'x', ts: 9, value: 15, q: 'uncertain', reason: 'UncertainSubNormal' });
  });

  it('derives status codes from names for hand-written testcases', () => {
    expect(qualityOfStatus(statusCodeFromName('GoodClamped'))).toBe('good');
    expect(qualityOfStatus(statusCodeFromName('UncertainInitialValue'))).toBe('uncertain');
    expect(qualityOfStatus(statusCodeFromName('BadTimeout'))).toBe('bad');
    expect(() => statusCodeFromName('Fine')).toThrow('must start with Good, Uncertain or Bad');
  });

  it('validates and unscales writes', () => {
    expect(encodeWrite(tag({ writable: true, type: 'Int16', scale: 0.1, min: 0, max: 100 }), 21.5)).toBe(215);
    expect(() => encodeWrite(tag({ writable: true, type: 'Int16', scale: 0.01 }), 500)).toThrow(
      'raw value 50000 (from 500) is outside Int16 range -32768..32767',
    );
    expect(() => encodeWrite(tag({ writable: true, max: 40 }), 41)).toThrow(
      'tag "x" (nsu=urn:a;s=X, Double): 41 is above max 40',
    );
    expect(() => encodeWrite(tag({ writable: true, type: 'Boolean' }), 1)).toThrow('takes true/false, got 1');
    expect(() => encodeWrite(tag({}), 1)).toThrow('is not writable');
    expect(encodeWrite(tag({ writable: true, type: 'String' }), 'on')).toBe('on');
  });
});

describe('OPC UA node ids', () => {
  const ns = ['http://opcfoundation.org/UA/', 'urn:server', 'urn:a'];
  it('parses nsu=, ns= and bare node ids', () => {
    expect(parseNodeIdText('nsu=urn:a;s=Chamber.T')).toEqual({
      namespace: { kind: 'uri', uri: 'urn:a' },
      identifierType: 's',
      identifier: 'Chamber.T',
    });
    expect(parseNodeIdText('ns=3;i=1001')).toEqual({
      namespace: { kind: 'index', index: 3 },
      identifierType: 'i',
      identifier: '1001',
    });
    expect(parseNodeIdText('i=85').namespace).toEqual({ kind: 'index', index: 0 });
    expect(() => parseNodeIdText('Chamber.T')).toThrow('must look like');
  });
  it('resolves namespace URIs to the server index, and explains unknown ones', () => {
    expect(resolveNodeId('nsu=urn:a;s=T', ns)).toEqual({ ok: true, nodeId: 'ns=2;s=T' });
    expect(resolveNodeId('nsu=urn:a;s=T', ['x', 'y', 'z', 'urn:a'])).toEqual({ ok: true, nodeId: 'ns=3;s=T' });
    const r = resolveNodeId('nsu=urn:zzz;s=T', ns);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toBe(
      'node nsu=urn:zzz;s=T: namespace URI "urn:zzz" is not served (server namespaces: http://opcfoundation.org/UA/, urn:server, urn:a)',
    );
    expect(resolveNodeId('ns=7;i=1', ns)).toEqual({
      ok: false,
      error: 'node ns=7;i=1: namespace index 7 does not exist (server has 3)',
    });
  });
  it('turns ns= ids into nsu= text for drafted profiles', () => {
    expect(toNsuText('ns=2;s=Chamber.T', ns)).toBe('nsu=urn:a;s=Chamber.T');
    expect(toNsuText('ns=0;i=2258', ns)).toBe('i=2258');
  });
});

describe('OPC UA browse helpers', () => {
  it('packs and unpacks UNECE unit codes and maps the common ones to UDUNITS', () => {
    expect(uneceUnitId('CEL')).toBe(4408652);
    expect(uneceCode(4408652)).toBe('CEL');
    expect(uneceCode(-1)).toBe('');
    expect(udunitsFromUnece(uneceUnitId('P1'))).toBe('percent');
    expect(udunitsFromUnece(uneceUnitId('XYZ'))).toBeUndefined();
    expect(uneceFromUdunits('degree_Celsius')).toBe('CEL');
    expect(uneceFromUdunits('umol m-2 s-1')).toBeUndefined();
  });
  it('makes unique lower_snake_case tag names from the browse path below the root', () => {
    const taken = new Set<string>();
    expect(tagNameFromPath(['AirTemperature'], taken)).toBe('air_temperature');
    expect(tagNameFromPath(['Setpoints', 'CO2Value'], taken)).toBe('setpoints_co2_value');
    expect(tagNameFromPath(['AirTemperature'], taken)).toBe('air_temperature_2');
    expect(tagNameFromPath(['1st Stage'], taken)).toBe('tag_1st_stage');
  });
});

describe('OPC UA testcases', () => {
  const load = (f: string) => parse(readFileSync(join(PROJECT_ROOT, f), 'utf8')) as unknown;
  const profile = OpcuaProfile.parse(load('drivers/opcua/ecotron-chamberctl.yaml'));
  const cases = load('drivers/opcua/testcases/ecotron-chamberctl.yaml');

  it('the ecotron-chamberctl testcases pass', () => {
    expect(checkOpcuaTestcases(profile, cases)).toEqual([]);
  });

  it('reports wrong expectations, unknown tags, missing coverage and bad documents', () => {
    const doc = {
      profile: 'ecotron-other',
      cases: [
        {
          name: 'wrong',
          values: [
            { tag: 'soil_moisture', raw: 325, expect: { value: 325, q: 'good' } },
            { tag: 'nope', raw: 1, expect: { value: 1, q: 'good' } },
            {
              node: 'nsu=urn:ecotron:chamberctl;s=Chamber.CO2',
              raw: 1,
              status: 'BadTimeout',
              expect: { value: 1, q: 'good' },
            },
          ],
          writes: [{ tag: 'co2_setpoint', value: 5000, expect_raw: 5000 }],
        },
      ],
    };
    const problems = checkOpcuaTestcases(profile, doc);
    expect(problems).toContain('profile: testcases are for "ecotron-other", not "ecotron-chamberctl"');
    expect(problems).toContain('cases[0] "wrong" values[0] (soil_moisture): raw 325 decodes to 32.5, expected 325');
    expect(problems).toContain('cases[0] "wrong" values[1]: no tag named "nope" in the profile');
    expect(problems).toContain('cases[0] "wrong" values[2] (co2): expected quality good, got bad');
    expect(
      problems.some(
        (p) =>
          p.startsWith('cases[0] "wrong" writes[0] (co2_setpoint): write 5000 refused') && p.includes('above max 2000'),
      ),
    ).toBe(true);
    expect(problems.some((p) => p.startsWith('cases: no value case for tags air_temperature, relative_humidity'))).toBe(
      true,
    );
    expect(
      checkOpcuaTestcases(profile, {
        profile: 'ecotron-chamberctl',
        cases: [{ name: 'x', values: [{ raw: 1, expect: { value: 1, q: 'good' } }] }],
      }),
    ).toEqual(['cases[0].values[0]: give exactly one of tag or node']);
  });
});
