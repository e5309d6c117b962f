import type { OpcuaType } from '../config/profile-schema.ts';
import type { Logger } from '../core/log.ts';
import type { ResolvedOpcua } from '../config/resolved.ts';
import { parseNodeIdText } from '../drivers/opcua/node-id.ts';
import type { ChamberModel } from './dynamics.ts';
import { startOpcuaServer } from './opcua-server.ts';
import { asTagValue, bindTags } from './tag-model.ts';

export interface SimulatedChamber {
  chamber: string;
  endpoint: string;
  /** Copies the model's current values into the server (frozen tags keep theirs). */
  update(): void;
  /** Tags whose value the PLC stopped updating (fault injection, src/sim/faults.ts). */
  readonly frozen: Set<string>;
  /** Makes the PLC report a tag as failed (OPC UA: BadSensorFailure; Modbus: exception 4 for reads covering it), or good again. */
  fail(tag: string, on: boolean): void;
  /** Modbus: the unit stops answering (true) or answers again (false). */
  silence?(on: boolean): void;
}

/** Serves one chamber's OPC UA profile on its endpoint's port, fed by the chamber model. */
export async function serveOpcuaChamber(
  resolved: ResolvedOpcua,
  model: ChamberModel,
  port: number,
  host: string,
  log: Logger,
): Promise<SimulatedChamber & { certificate(): Buffer; stop(): Promise<void> }> {
  const first = parseNodeIdText(resolved.profile.tags[0]!.node);
  const namespaceUri =
    first.namespace.kind === 'uri' ? first.namespace.uri : `urn:octopus:sim:${resolved.profile.vendor}`;
  const server = await startOpcuaServer({
    port,
    host,
    namespaceUri,
    profile: { profile: resolved.profile, folder: 'Chamber' },
  });
  const bindings = bindTags(resolved.profile.tags, model).map((b) => ({
    ...b,
    id: parseNodeIdText(b.tag.node).identifier,
  }));
  const byId = new Map(bindings.map((b) => [b.id, b]));
  server.onWrite(({ id, value }) => {
    const b = byId.get(id);
    if (!b) return;
    // Raw value on the wire → engineering units, as the controller would interpret it.
    const eng = typeof value === 'number' ? value * b.tag.scale + b.tag.offset : value;
    if (b.write(eng)) log.info(`chamber ${resolved.chamber.id}: ${b.tag.name} set to ${String(eng)} by a client`);
  });
  const frozen = new Set<string>();
  const failed = new Set<string>();
  const update = () => {
    for (const b of bindings) {
      if (frozen.has(b.tag.name)) continue;
      const v = b.read();
      if (v === undefined) continue;
      const type = b.tag.type;
      const value = asTagValue(v, type === 'Boolean');
      const raw = typeof value === 'number' ? toRaw(value, b.tag.scale, b.tag.offset, type) : value;
      server.setValue(b.id, raw, failed.has(b.tag.name) ? { statusCode: 'BadSensorFailure' } : undefined);
    }
  };
  update();
  const fail = (tag: string, on: boolean) => {
    if (!bindings.some((b) => b.tag.name === tag)) throw new Error(`chamber ${resolved.chamber.id}: no tag "${tag}"`);
    if (on) failed.add(tag);
    else failed.delete(tag);
    update();
  };
  return {
    chamber: resolved.chamber.id,
    endpoint: server.endpoint,
    update,
    frozen,
    fail,
    certificate: () => server.certificate(),
    stop: () => server.stop(),
  };
}

const INTEGER = new Set<OpcuaType>(['SByte', 'Byte', 'Int16', 'UInt16', 'Int32', 'UInt32', 'Int64', 'UInt64']);

function toRaw(eng: number, scale: number, offset: number, type: OpcuaType): number {
  const raw = (eng - offset) / scale;
  return INTEGER.has(type) ? Math.round(raw) : raw;
}
