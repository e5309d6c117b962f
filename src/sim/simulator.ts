import type { ConfigSlice, ResolvedChamber } from '../config/loader.ts';
import type { Logger } from '../core/log.ts';
import type { ResolvedModbus } from '../config/resolved.ts';
import { ChamberModel, DEFAULT_PROGRAMME, type ChamberProgramme } from './dynamics.ts';
import { SimulatorFaults } from './faults.ts';
import { serveModbusChambers } from './modbus-chambers.ts';
import { serveOpcuaChamber, type SimulatedChamber } from './opcua-chamber.ts';
import { clientPkiDir } from '../drivers/opcua/client.ts';
import { ClientPki } from '../drivers/opcua/pki.ts';
import { trustOwnServer } from '../drivers/opcua/trust.ts';

async function trustSimulatedPlc(
  dataDir: string,
  endpoint: string,
  chamber: string,
  certificate: Buffer,
  log: Logger,
): Promise<void> {
  const pki = new ClientPki(clientPkiDir(dataDir));
  try {
    const info = await trustOwnServer(pki, endpoint, chamber, certificate);
    log.info(`simulated chamber ${chamber}: its server certificate ${info.thumbprint} is trusted for ${endpoint}`);
  } finally {
    await pki.dispose().catch(() => undefined);
  }
}

export interface RunningSimulator {
  chambers: SimulatedChamber[];
  /** The fault injector (tests, benchmarks): drift, freeze, drop, PLC alarm, door. */
  faults: SimulatorFaults;
  /** The chamber models by chamber id. */
  models: ReadonlyMap<string, ChamberModel>;
  stop(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** host and port of an endpoint when it points at this machine's loopback. */
export function loopbackPort(endpoint: string): { host: string; port: number } | undefined {
  const m = /^[a-z.]+:\/\/([^/:]+|\[[^\]]+\]):(\d+)/.exec(endpoint);
  if (!m || !LOOPBACK.has(m[1]!)) return undefined;
  return { host: m[1] === 'localhost' ? '127.0.0.1' : m[1]!, port: Number(m[2]) };
}

/** Chambers differ a little (a CO2 treatment, a cooler programme), as in a real facility. */
function programmeFor(index: number): ChamberProgramme {
  const variants: Array<Partial<ChamberProgramme>> = [
    {},
    { co2: 700 },
    { dayTemperature: 22, nightTemperature: 16 },
    { humidity: 75, dayPar: 600 },
  ];
  return { ...DEFAULT_PROGRAMME, ...variants[index % variants.length] };
}

/**
 * Serves every configured chamber whose endpoint is on loopback as a real protocol
 * server (OPC UA per chamber; Modbus TCP per port with one unit per chamber), fed by a
 * chamber model from the same profile the driver reads.
 */
export async function startSimulator(loaded: ConfigSlice<'simulator'>, log: Logger): Promise<RunningSimulator> {
  const sim = loaded.config.simulator;
  const started = Date.now();
  const simNow = () => started + (Date.now() - started) * sim.time_factor;
  const served: SimulatedChamber[] = [];
  const stoppers: Array<() => Promise<void>> = [];
  const models = new Map<string, ChamberModel>();
  const modbusByPort = new Map<number, Array<{ resolved: ResolvedModbus; model: ChamberModel }>>();
  // OPC UA chambers are one server each: dropping one stops it, restoring serves it again.
  const opcua = new Map<
    string,
    {
      serve: () => Promise<SimulatedChamber & { stop(): Promise<void> }>;
      current?: SimulatedChamber & { stop(): Promise<void> };
    }
  >();
  const dropped = new Set<string>();
  try {
    for (const [i, r] of loaded.chambers.entries()) {
      const at = loopbackPort(r.chamber.endpoint);
      if (!at) continue;
      const model = new ChamberModel(sim.seed + i, programmeFor(i), simNow());
      models.set(r.chamber.id, model);
      if (r.chamber.driver === 'opcua') {
        const serve = () =>
          serveOpcuaChamber(
            r as Extract<ResolvedChamber, { chamber: { driver: 'opcua' } }>,
            model,
            at.port,
            at.host,
            log,
          );
        const one = await serve();
        const entry: { serve: typeof serve; current?: typeof one } = { serve, current: one };
        opcua.set(r.chamber.id, entry);
        served.push(one);
        stoppers.push(async () => entry.current?.stop());
        // A secured simulated PLC is ours: its certificate is trusted for its endpoint (docs/security.md).
        if (r.chamber.opcua.security_mode !== 'None')
          await trustSimulatedPlc(loaded.dataDir, r.chamber.endpoint, r.chamber.id, one.certificate(), log);
      } else {
        const list = modbusByPort.get(at.port) ?? [];
        list.push({ resolved: r as ResolvedModbus, model });
        modbusByPort.set(at.port, list);
      }
    }
    for (const [port, list] of modbusByPort) {
      const server = await serveModbusChambers(list, port, '127.0.0.1', log);
      served.push(...server.chambers);
      stoppers.push(server.stop);
    }
  } catch (err) {
    await Promise.all(stoppers.map((stop) => stop().catch(() => {})));
    throw err;
  }
  const tick = setInterval(() => {
    const now = simNow();
    for (const m of models.values()) m.step(now);
    for (const s of served) s.update();
  }, 250);
  for (const s of served) log.info(`simulating chamber ${s.chamber} at ${s.endpoint}`);
  const faults = new SimulatorFaults({
    model: (c) => models.get(c),
    served: (c) => served.find((s) => s.chamber === c),
    async setDropped(c, drop) {
      if (drop === dropped.has(c)) return;
      const o = opcua.get(c);
      if (o) {
        if (drop) {
          const cur = o.current;
          o.current = undefined;
          served.splice(
            served.findIndex((s) => s === cur),
            1,
          );
          await cur?.stop();
        } else {
          o.current = await o.serve();
          served.push(o.current);
        }
      } else {
        const s = served.find((x) => x.chamber === c);
        if (!s?.silence) throw new Error(`fault injector: chamber "${c}" is not served by the simulator`);
        s.silence(drop);
      }
      if (drop) dropped.add(c);
      else dropped.delete(c);
      log.info(`fault injector: chamber ${c} ${drop ? 'dropped' : 'restored'}`);
    },
  });
  return {
    chambers: served,
    faults,
    models,
    async stop() {
      clearInterval(tick);
      await Promise.all(stoppers.map((stop) => stop()));
    },
  };
}
