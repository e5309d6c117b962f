import { registerCount, type ModbusTag, type WordOrder } from '../../config/profile-schema.ts';
import { badSample, type Sample } from '../../core/sample.ts';
import type { ResolvedModbus } from '../../config/resolved.ts';
import type { ChamberState, Driver, DriverDeps, DriverHealth } from '../types.ts';
import { ModbusError } from './client.ts';
import { decodeRaw, tidyFloat32, toEngineering } from './codec.ts';
import type { ModbusLinePool } from './line.ts';
import { planReads, type ReadRequest } from './plan.ts';
import { encodeModbusWrite, type ModbusWrite } from './write.ts';

/** Decodes a tag's slice of a read request's words into its engineering value. */
export function decodeTag(
  tag: ModbusTag,
  words: readonly number[],
  offset: number,
  order: WordOrder,
): number | boolean | string {
  const area = tag.area;
  if (tag.type === 'bool' && (area === 'coil' || area === 'discrete')) return words[offset] === 1;
  const raw = decodeRaw(
    tag,
    offset === 0 && words.length <= 4 ? words : words.slice(offset, offset + registerCount(tag)),
    order,
  );
  return toEngineering(tag, tag.type === 'float32' && typeof raw === 'number' ? tidyFloat32(raw) : raw);
}

/**
 * Polls one chamber's Modbus unit every `interval_ms` with the merged read plan and
 * emits one batch of samples per cycle; failed requests give `bad` samples naming the
 * failure, the area, the addresses and the unit.
 */
export function createModbusDriver(resolved: ResolvedModbus, deps: DriverDeps, pool: ModbusLinePool): Driver {
  const { chamber, profile } = resolved;
  const opts = chamber.modbus;
  const unit = opts.unit_id;
  const now = deps.now ?? Date.now;
  const line = pool.get(chamber.endpoint, opts, deps.log);
  const tags = resolved.tags.map((t) => ({ ...t, area: t.area ?? profile.defaults.area }));
  const byName = new Map(tags.map((t) => [t.name, t]));
  const plan: ReadRequest[] = planReads(profile, tags, opts);
  const orderOf = (t: ModbusTag): WordOrder => t.order ?? profile.defaults.order;
  const health: DriverHealth = {
    chamber: chamber.id,
    driver: 'modbus',
    endpoint: chamber.endpoint,
    state: 'offline',
    reason: 'not started',
    samples: 0,
    badSamples: 0,
    reconnects: 0,
    requestsPerCycle: plan.length,
  };
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let cycle: Promise<void> = Promise.resolve();

  const setState = (state: ChamberState, reason?: string) => {
    if (state === health.state && reason === health.reason) return;
    health.state = state;
    health.reason = reason;
    deps.sink.status(state, reason);
  };

  async function poll(): Promise<void> {
    const ts = now();
    const out: Sample[] = [];
    const failures: string[] = [];
    let connectionFailures = 0;
    for (const req of plan) {
      const where = `${req.area} ${req.address}..${req.address + req.count - 1} unit ${unit}`;
      try {
        const words = await line.request(unit, (c, timeoutMs) =>
          c.read(unit, req.area, req.address, req.count, timeoutMs),
        );
        for (const { tag, offset } of req.tags) {
          try {
            out.push({
              chamber: chamber.id,
              tag: tag.name,
              ts,
              value: decodeTag(tag, words, offset, orderOf(tag)),
              q: 'good',
            });
          } catch (err) {
            out.push(
              badSample(
                chamber.id,
                tag.name,
                ts,
                `cannot decode ${tag.type} at ${tag.area} ${tag.address}: ${(err as Error).message}`,
              ),
            );
          }
        }
      } catch (err) {
        const reason = `${(err as Error).message} reading ${where}`;
        failures.push(reason);
        if (!(err instanceof ModbusError) || err.failure.kind !== 'exception') connectionFailures++;
        for (const { tag } of req.tags) out.push(badSample(chamber.id, tag.name, ts, reason));
      }
    }
    health.samples += out.length;
    health.badSamples += out.filter((s) => s.q === 'bad').length;
    health.lastSampleTs = ts;
    health.reconnects = line.reconnects;
    if (running) deps.sink.samples(out);
    if (failures.length === 0) setState('online');
    else if (connectionFailures === plan.length) setState('offline', failures[0]);
    else setState('error', `${failures.length} of ${plan.length} requests failed: ${failures[0]}`);
  }

  function schedule(): void {
    if (!running) return;
    const interval = chamber.interval_ms;
    // Aligned to the interval: no drift, and a slow cycle skips ahead instead of overlapping.
    const wait = interval - (now() % interval);
    timer = setTimeout(() => {
      cycle = poll().finally(schedule);
    }, wait);
  }

  return {
    chamber: chamber.id,
    async start() {
      running = true;
      cycle = poll();
      await cycle;
      schedule();
    },
    async stop() {
      running = false;
      clearTimeout(timer);
      await cycle;
      setState('offline', 'stopped');
    },
    health: () => ({ ...health }),
    async write(name, value) {
      const tag = byName.get(name);
      if (!tag) throw new Error(`chamber ${chamber.id}: no tag "${name}" (known: ${[...byName.keys()].join(', ')})`);
      let w: ModbusWrite;
      try {
        w = encodeModbusWrite(tag, value, orderOf(tag));
      } catch (err) {
        throw new Error(`chamber ${chamber.id}: ${(err as Error).message}`);
      }
      if (w.kind === 'coil') return line.request(unit, (c, t) => c.writeCoil(unit, w.address, w.on, t));
      if (w.kind === 'registers') return line.request(unit, (c, t) => c.writeRegisters(unit, w.address, w.words, t));
      // A bit in a holding register: read-modify-write in one turn of the queue.
      return line.request(unit, async (c, t) => {
        const [word] = await c.read(unit, 'holding', w.address, 1, t);
        const mask = 1 << w.bit;
        await c.writeRegisters(unit, w.address, [w.on ? word! | mask : word! & ~mask], t);
      });
    },
  };
}
