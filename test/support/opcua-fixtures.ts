/** Shared pieces of the OPC UA tests: a profile over a test namespace, a recording sink, a driver factory. */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpcuaChamber } from '../../src/config/instance-schema.ts';
import { OpcuaProfile } from '../../src/config/profile-schema.ts';
import { createLogger } from '../../src/core/log.ts';
import type { Sample } from '../../src/core/sample.ts';
import type { ChamberState, Driver, DriverDeps, DriverSink } from '../../src/drivers/types.ts';
import { createOpcuaDriver } from '../../src/drivers/opcua/driver.ts';

// The client keeps its PKI (own certificate) under the data dir; reuse one across runs.
process.env.OCTOPUS_DATA_DIR ??= join(tmpdir(), 'octopus-opcua-test-data');

export const TEST_NS = 'urn:octopus:test';

/** Tags of the test server: the `s=` ids are `Chamber.<Name>` in TEST_NS. */
export const testProfile = OpcuaProfile.parse({
  kind: 'opcua',
  vendor: 'test',
  model: 'server',
  description: 'variables served by the tests',
  tags: [
    {
      name: 'air_temperature',
      node: `nsu=${TEST_NS};s=Chamber.AirTemperature`,
      type: 'Double',
      unit: 'degree_Celsius',
      description: 'air temperature',
    },
    {
      name: 'co2_raw',
      node: `nsu=${TEST_NS};s=Chamber.Co2Raw`,
      type: 'Int16',
      scale: 0.5,
      offset: 10,
      unit: 'umol mol-1',
      description: 'CO2, raw counts',
    },
    {
      name: 'temperature_setpoint',
      node: `nsu=${TEST_NS};s=Chamber.AirTemperatureSetpoint`,
      type: 'Float',
      role: 'setpoint',
      setpoint_of: 'air_temperature',
      writable: true,
      min: 5,
      max: 40,
      description: 'air temperature setpoint',
    },
    {
      name: 'door_open',
      node: `nsu=${TEST_NS};s=Chamber.DoorOpen`,
      type: 'Boolean',
      role: 'state',
      description: 'door open',
    },
  ],
});

export class RecordingSink implements DriverSink {
  readonly batches: Sample[][] = [];
  readonly states: Array<{ state: ChamberState; reason?: string }> = [];
  samples(samples: Sample[]): void {
    this.batches.push(samples);
  }
  status(state: ChamberState, reason?: string): void {
    this.states.push({ state, reason });
  }
  all(): Sample[] {
    return this.batches.flat();
  }
  latest(tag: string): Sample | undefined {
    return this.all()
      .filter((s) => s.tag === tag)
      .at(-1);
  }
  get state(): ChamberState | undefined {
    return this.states.at(-1)?.state;
  }
}

export function makeDriver(
  endpoint: string,
  opcua: Record<string, unknown> = {},
  profile = testProfile,
  intervalMs = 200,
  deps: Partial<Pick<DriverDeps, 'dataDir' | 'log'>> = {},
): { driver: Driver; sink: RecordingSink } {
  const chamber = OpcuaChamber.parse({
    id: 'c1',
    driver: 'opcua',
    profile: 'test-server',
    endpoint,
    interval_ms: intervalMs,
    opcua,
  });
  const sink = new RecordingSink();
  const driver = createOpcuaDriver(
    { chamber, profile, tags: profile.tags },
    { sink, log: createLogger('test'), ...deps },
  );
  return { driver, sink };
}
