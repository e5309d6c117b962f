import type { ResolvedChamber } from '../config/loader.ts';
import { createModbusDriver } from './modbus/driver.ts';
import { ModbusLinePool } from './modbus/line.ts';
import { createOpcuaDriver } from './opcua/driver.ts';
import type { Driver, DriverDeps } from './types.ts';

/** Creates one driver per chamber; Modbus chambers on one endpoint share its line. */
export function createDrivers(
  chambers: ResolvedChamber[],
  depsFor: (chamber: string) => DriverDeps,
): { drivers: Driver[]; close(): Promise<void> } {
  const pool = new ModbusLinePool();
  const drivers = chambers.map((r) =>
    r.chamber.driver === 'opcua'
      ? createOpcuaDriver(r as Extract<ResolvedChamber, { chamber: { driver: 'opcua' } }>, depsFor(r.chamber.id))
      : createModbusDriver(
          r as Extract<ResolvedChamber, { chamber: { driver: 'modbus' } }>,
          depsFor(r.chamber.id),
          pool,
        ),
  );
  return { drivers, close: () => pool.close() };
}
