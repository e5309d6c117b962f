import { registerCount, type ModbusTag, type WordOrder } from '../config/profile-schema.ts';
import type { Logger } from '../core/log.ts';
import { decodeTag } from '../drivers/modbus/driver.ts';
import { encodeRaw, toRaw } from '../drivers/modbus/codec.ts';
import type { ResolvedModbus } from '../config/resolved.ts';
import type { ChamberModel } from './dynamics.ts';
import { startModbusServer, type UnitBanks } from './modbus-server.ts';
import type { SimulatedChamber } from './opcua-chamber.ts';
import { asTagValue, bindTags, type TagBinding } from './tag-model.ts';

/** Writes a tag's engineering value into a unit's register banks, as the PLC would hold it. */
export function storeTag(banks: UnitBanks, tag: ModbusTag, order: WordOrder, value: number | boolean | string): void {
  const area = tag.area ?? 'holding';
  if (area === 'coil' || area === 'discrete') {
    banks[area][tag.address] = value === true || value === 1 ? 1 : 0;
    return;
  }
  const regs = banks[area];
  if (tag.type === 'bool') {
    const bit = 1 << (tag.bit ?? 0);
    regs[tag.address] = value === true || value === 1 ? regs[tag.address]! | bit : regs[tag.address]! & ~bit;
    return;
  }
  const words = encodeRaw(tag, typeof value === 'number' ? toRaw(tag, value) : value, order);
  regs.set(words, tag.address);
}

/** Serves the Modbus chambers of one port as units of one fast Modbus TCP server. */
export async function serveModbusChambers(
  list: Array<{ resolved: ResolvedModbus; model: ChamberModel }>,
  port: number,
  host: string,
  log: Logger,
): Promise<{ chambers: SimulatedChamber[]; stop(): Promise<void> }> {
  const server = await startModbusServer({ port, host });
  const units = list.map(({ resolved, model }) => {
    const id = resolved.chamber.modbus.unit_id;
    const tags = resolved.tags.map((t) => ({ ...t, area: t.area ?? resolved.profile.defaults.area }));
    return {
      resolved,
      id,
      banks: server.unit(id),
      bindings: bindTags(tags, model),
      order: resolved.profile.defaults.order,
      frozen: new Set<string>(),
    };
  });
  const update = (u: (typeof units)[number]) => {
    for (const b of u.bindings) {
      if (u.frozen.has(b.tag.name)) continue;
      const v = b.read();
      if (v === undefined) continue;
      try {
        storeTag(u.banks, b.tag, b.tag.order ?? u.order, asTagValue(v, b.tag.type === 'bool'));
      } catch {
        // A model value the register type cannot hold (e.g. negative into uint16): the PLC keeps its last value.
      }
    }
  };
  server.onWrite((e) => {
    const u = units.find((x) => x.id === e.unit);
    if (!u) return;
    const hit = (b: TagBinding<ModbusTag>) =>
      b.tag.area === e.area &&
      b.tag.address < e.address + e.count &&
      b.tag.address + Math.max(1, registerCount(b.tag)) > e.address;
    for (const b of u.bindings.filter(hit)) {
      const words =
        e.area === 'coil'
          ? [u.banks.coil[b.tag.address]!]
          : Array.from(u.banks.holding.subarray(b.tag.address, b.tag.address + 4));
      const value = decodeTag(b.tag, words, 0, b.tag.order ?? u.order);
      if (b.write(value))
        log.info(`chamber ${u.resolved.chamber.id}: ${b.tag.name} set to ${String(value)} by a client`);
    }
  });
  for (const u of units) {
    // Constant identification registers (no simulator hint) get a plausible value once.
    for (const b of u.bindings)
      if (b.tag.type === 'string' && !b.tag.sim)
        storeTag(u.banks, b.tag, b.tag.order ?? u.order, `SIM-${u.resolved.chamber.id}`);
    update(u);
  }
  return {
    chambers: units.map((u) => ({
      chamber: u.resolved.chamber.id,
      endpoint: `tcp://${host}:${server.port} unit ${u.id}`,
      update: () => update(u),
      frozen: u.frozen,
      silence: (on: boolean) => server.setSilent(u.id, on),
      fail: (tag: string, on: boolean) => {
        const t = u.bindings.find((x) => x.tag.name === tag)?.tag;
        if (!t) throw new Error(`chamber ${u.resolved.chamber.id}: no tag "${tag}"`);
        for (let i = 0; i < Math.max(1, registerCount(t)); i++)
          server.setFailing(u.id, t.area ?? 'holding', t.address + i, on);
      },
    })),
    stop: () => server.close(),
  };
}
