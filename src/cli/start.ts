import { buildApp } from '../api/app.ts';
import { startEmbeddedBroker, type EmbeddedBroker } from '../bus/broker.ts';
import { loadConfig } from '../config/loader.ts';
import { createLogger } from '../core/log.ts';
import { Gateway } from '../gateway/gateway.ts';
import { startSimulator, type RunningSimulator } from '../sim/simulator.ts';

/**
 * `octopus start`: simulator (when enabled), embedded broker (when no external URL),
 * gateway and HTTP API; `octopus simulate`: only the simulator. Runs until SIGINT or
 * SIGTERM, then shuts down in reverse order, flushing the spool.
 */
export async function runUntilSignal(mode: 'start' | 'simulate', file?: string): Promise<number> {
  const loaded = loadConfig(file);
  const log = createLogger('octopus');
  const cfg = loaded.config;
  const stops: Array<[string, () => Promise<void>]> = [];
  let sim: RunningSimulator | undefined;
  try {
    if (cfg.simulator.enabled || mode === 'simulate') {
      sim = await startSimulator(loaded, log.child('sim'));
      stops.unshift(['simulator', () => sim!.stop()]);
    }
    if (mode === 'start') {
      let broker: EmbeddedBroker | undefined;
      if (!cfg.mqtt.url) {
        broker = await startEmbeddedBroker({ port: cfg.mqtt.port });
        stops.unshift(['broker', () => broker!.close()]);
      }
      const url = cfg.mqtt.url ?? broker!.url;
      const gateway = new Gateway(loaded, { url, embedded: !cfg.mqtt.url }, log.child('gateway'));
      stops.unshift(['gateway', () => gateway.stop()]);
      await gateway.start();
      const app = await buildApp({ health: () => gateway.health() });
      await app.listen({ port: cfg.http.port, host: cfg.http.host });
      stops.unshift(['http', () => app.close()]);
      const port = cfg.http.port;
      process.stdout.write([
        '',
        `Octopus gateway "${cfg.gateway.id}" is running with ${loaded.chambers.length} chamber(s): ${loaded.chambers.map((c) => c.chamber.id).join(', ')}`,
        `  health     curl http://localhost:${port}/api/health`,
        `  metrics    curl http://localhost:${port}/metrics`,
        `  live data  mosquitto_sub -h localhost -p ${broker?.port ?? '<broker port>'} -t '${cfg.mqtt.prefix}/#' -v${cfg.mqtt.url ? `   (broker ${cfg.mqtt.url})` : ''}`,
        `  spool      ${loaded.dataDir}`,
        'Ctrl-C stops it cleanly.',
        '',
      ].join('\n'));
    } else {
      process.stdout.write(`Simulating ${sim?.chambers.length ?? 0} chamber(s): ${sim?.chambers.map((c) => `${c.chamber} at ${c.endpoint}`).join(', ')}\nCtrl-C stops it.\n`);
    }
  } catch (err) {
    await shutdown(stops, log);
    throw err;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log.info(`${signal}: shutting down`);
  const clean = await shutdown(stops, log);
  return clean ? 0 : 1;
}

async function shutdown(stops: Array<[string, () => Promise<void>]>, log: ReturnType<typeof createLogger>): Promise<boolean> {
  let clean = true;
  for (const [name, stop] of stops) {
    try {
      await stop();
    } catch (err) {
      clean = false;
      log.error(`stopping ${name}: ${(err as Error).message}`);
    }
  }
  return clean;
}
