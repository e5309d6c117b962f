import { registerCount, type ModbusArea, type ModbusProfile, type ModbusTag } from '../../config/profile-schema.ts';
import type { ModbusOptions } from '../../config/instance-schema.ts';

export interface PlannedTag {
  tag: ModbusTag;
  area: ModbusArea;
  /** Offset of the tag's first register/bit inside the request. */
  offset: number;
}

export interface ReadRequest {
  area: ModbusArea;
  address: number;
  count: number;
  tags: PlannedTag[];
}

const AREAS: ModbusArea[] = ['coil', 'discrete', 'input', 'holding'];

/**
 * Merges tags into as few read requests as possible: per area, sorted by address, a
 * tag joins the current request when the hole before it is at most `max_gap` and the
 * whole span stays within `max_registers` (`max_bits` for coils and discrete inputs).
 */
export function planReads(
  profile: Pick<ModbusProfile, 'defaults'>,
  tags: readonly ModbusTag[],
  opts: Pick<ModbusOptions, 'max_gap' | 'max_registers' | 'max_bits'>,
): ReadRequest[] {
  const requests: ReadRequest[] = [];
  for (const area of AREAS) {
    const inArea = tags.filter((t) => (t.area ?? profile.defaults.area) === area).sort((a, b) => a.address - b.address);
    const limit = area === 'coil' || area === 'discrete' ? opts.max_bits : opts.max_registers;
    let cur: ReadRequest | undefined;
    for (const tag of inArea) {
      const size = Math.max(1, registerCount(tag));
      const end = tag.address + size;
      if (cur && tag.address - (cur.address + cur.count) <= opts.max_gap && end - cur.address <= limit) {
        cur.count = Math.max(cur.count, end - cur.address);
      } else {
        cur = { area, address: tag.address, count: size, tags: [] };
        requests.push(cur);
      }
      cur.tags.push({ tag, area, offset: tag.address - cur.address });
    }
  }
  return requests;
}
