import { isControlled, type ChamberModel, type Controlled } from './dynamics.ts';
import type { SimulatedChamber } from './opcua-chamber.ts';

/** How the simulator lets faults reach a chamber: its model, its served PLC, and a way to stop and restart that PLC. */
export interface FaultTargets {
  model(chamber: string): ChamberModel | undefined;
  served(chamber: string): SimulatedChamber | undefined;
  /** Stops serving the chamber (its PLC is gone) or serves it again. */
  setDropped(chamber: string, dropped: boolean): Promise<void>;
}

/**
 * The fault injector of the simulator, driven in-process by tests and benchmarks: each
 * fault is what a real facility sees, produced at the PLC (the protocol server) so the
 * whole chain — driver, MQTT, collector — reacts as it would.
 *
 * - `drift`: a controlled variable reads `offset` away from its setpoint (the controller lost its hold);
 * - `freeze`: a tag stops updating on the PLC (a flat line; an OPC UA subscription then reports nothing);
 * - `fail`: the PLC reports a tag as failed (OPC UA BadSensorFailure; Modbus exception 4 for the reads covering it): bad samples, then stale;
 * - `drop`: the chamber's PLC stops answering (OPC UA server stopped, Modbus unit silent): offline;
 * - `plcAlarm`: the PLC's alarm tags go active (or are held inactive with `false`);
 * - `door`: the door contact reads open (or is held closed with `false`).
 * `quiet` holds door and alarm inactive so that the model's random door openings and
 * spurious alarms cannot disturb a test; `clear` removes every fault.
 */
export class SimulatorFaults {
  private readonly failed = new Map<string, Set<string>>();

  constructor(private readonly t: FaultTargets) {}

  private model(chamber: string): ChamberModel {
    const m = this.t.model(chamber);
    if (!m) throw new Error(`fault injector: no simulated chamber "${chamber}"`);
    return m;
  }

  drift(chamber: string, quantity: Controlled | string, offset: number): void {
    if (!isControlled(quantity))
      throw new Error(
        `fault injector: "${quantity}" is not a controlled quantity (air_temperature, relative_humidity, co2, par)`,
      );
    if (!Number.isFinite(offset))
      throw new Error(`fault injector: drift offset must be a finite number (got ${offset})`);
    const m = this.model(chamber);
    if (offset === 0) m.faults.drift.delete(quantity);
    else m.faults.drift.set(quantity, offset);
  }

  freeze(chamber: string, tag: string, frozen = true): void {
    this.model(chamber);
    const s = this.t.served(chamber);
    if (!s) throw new Error(`fault injector: chamber "${chamber}" is not served now`);
    if (frozen) s.frozen.add(tag);
    else s.frozen.delete(tag);
  }

  fail(chamber: string, tag: string, failed = true): void {
    this.model(chamber);
    const s = this.t.served(chamber);
    if (!s) throw new Error(`fault injector: chamber "${chamber}" is not served now`);
    s.fail(tag, failed);
    const set = this.failed.get(chamber) ?? new Set<string>();
    if (failed) set.add(tag);
    else set.delete(tag);
    this.failed.set(chamber, set);
  }

  async drop(chamber: string, dropped = true): Promise<void> {
    this.model(chamber);
    await this.t.setDropped(chamber, dropped);
  }

  plcAlarm(chamber: string, active: boolean | undefined = true): void {
    this.model(chamber).faults.alarm = active;
  }

  door(chamber: string, open: boolean | undefined = true): void {
    this.model(chamber).faults.door = open;
  }

  quiet(chamber: string): void {
    this.door(chamber, false);
    this.plcAlarm(chamber, false);
  }

  async clear(chamber: string): Promise<void> {
    const m = this.model(chamber);
    m.faults.drift.clear();
    m.faults.door = undefined;
    m.faults.alarm = undefined;
    this.t.served(chamber)?.frozen.clear();
    for (const tag of this.failed.get(chamber) ?? []) this.t.served(chamber)?.fail(tag, false);
    this.failed.delete(chamber);
    await this.t.setDropped(chamber, false);
  }
}
