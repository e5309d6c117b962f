/** What the alarm engine watches comes from the profiles: door contacts, PLC alarm tags, controlled variables. */
import { describe, expect, it } from 'vitest';
import { plansOf } from '../../src/alarms/plan.ts';
import { DEFAULT_CONFIG, loadConfig } from '../../src/config/loader.ts';
import { lintProfile } from '../../src/config/profile-lint.ts';
import { Profile } from '../../src/config/profile-schema.ts';

describe('alarm plan from the shipped profiles', () => {
  it('every chamber of the embedded default has its door contact, its PLC alarm tags and its judged variables', () => {
    const env = {
      ...process.env,
      OCTOPUS_CONFIG: '',
      OCTOPUS_DATA_DIR: '',
      OCTOPUS_MQTT_URL: '',
      OCTOPUS_HTTP_PORT: '',
    };
    const plans = plansOf(loadConfig(DEFAULT_CONFIG, env));
    expect(plans.map((p) => p.chamber)).toEqual(['ch01', 'ch02', 'ch03', 'ch04']);
    for (const p of plans) {
      expect(p.doorTags).toEqual(['door_open']);
      expect(p.alarmTags).toContain('alarm_active');
      expect(p.controlled.map((c) => c.measured)).toEqual(expect.arrayContaining(['air_temperature', 'co2']));
      expect(Object.keys(p.profileTolerances)).toEqual(expect.arrayContaining(['air_temperature', 'co2']));
    }
    // OPC UA subscriptions report changes only; Modbus is polled.
    expect(plans.map((p) => p.onChange)).toEqual([true, true, false, false]);
  });

  it('a door tag that cannot read open or closed is refused with its path', () => {
    const p = Profile.parse({
      kind: 'opcua',
      vendor: 'acme',
      model: 'x1',
      description: 'test',
      tags: [{ name: 'door_state', node: 'nsu=urn:acme;s=Door', type: 'String', description: 'Door', door: true }],
    });
    expect(lintProfile('acme-x1.yaml', p)).toEqual([
      expect.objectContaining({
        path: 'tags[0].door',
        message: expect.stringContaining('bool or a number'),
        got: 'String',
      }),
    ]);
  });
});
