import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Metric } from 'prom-client';
import { buildApp, type RunFileResolver } from '../api/app.ts';
import { AuditLog } from '../auth/audit.ts';
import { UserStore } from '../auth/users.ts';
import { VERSION } from '../core/version.ts';
import type { EmbeddedBroker } from '../bus/broker.ts';
import { loadConfig } from '../config/loader.ts';
import { createLogger } from '../core/log.ts';
import { Collector } from '../collector/collector.ts';
import { standaloneHealth, withCollector } from '../collector/health.ts';
import { createExperimentStore, experimentPaths } from '../experiments/factory.ts';
import type { RunningSimulator } from '../sim/simulator.ts';

/**
 * `octopus start`: simulator (when enabled), embedded broker (when no external URL),
 * gateway and HTTP API; `octopus simulate`: only the simulator. Runs until SIGINT or
 * SIGTERM, then shuts down in reverse order, flushing the spool.
 */
export async function runUntilSignal(mode: 'start' | 'simulate' | 'collect', file?: string): Promise<number> {
  const loaded = loadConfig(file);
  const log = createLogger('octopus');
  const cfg = loaded.config;
  const stops: Array<[string, () => Promise<void>]> = [];
  let sim: RunningSimulator | undefined;
  try {
    if (mode === 'collect') {
      const url = cfg.mqtt.url ?? `mqtt://127.0.0.1:${cfg.mqtt.port}`;
      if (!cfg.influx.url && !cfg.experiments.enabled) log.warn('no influx.url (or OCTOPUS_INFLUX_URL) and experiments disabled: the collector has no sink to write to');
      const collector = new Collector(loaded, url, log.child('collector'), process.env, cfg.experiments.enabled ? createExperimentStore(loaded) : undefined);
      collector.start();
      stops.unshift(['collector', () => collector.stop()]);
      const health = () => withCollector(standaloneHealth(cfg.gateway.id, url, collector), collector.health());
      const app = await buildApp({ health, metrics: collector.influx ? [collector.influx.latency] : [] });
      await app.listen({ port: cfg.collector.http_port, host: cfg.http.host });
      stops.unshift(['http', () => app.close()]);
      process.stdout.write(`Octopus collector for "${cfg.mqtt.prefix}/+/data" on ${url}${cfg.influx.url ? ` → ${cfg.influx.url}` : ''}\n  health     curl http://localhost:${cfg.collector.http_port}/api/health\nCtrl-C stops it cleanly.\n`);
    } else if (cfg.simulator.enabled || mode === 'simulate') {
      // Loaded on demand: `octopus collect` never loads the protocol stacks.
      const { startSimulator } = await import('../sim/simulator.ts');
      sim = await startSimulator(loaded, log.child('sim'));
      stops.unshift(['simulator', () => sim!.stop()]);
    }
    if (mode === 'start') {
      let broker: EmbeddedBroker | undefined;
      if (!cfg.mqtt.url) {
        const { startEmbeddedBroker } = await import('../bus/broker.ts');
        broker = await startEmbeddedBroker({ port: cfg.mqtt.port });
        stops.unshift(['broker', () => broker!.close()]);
      }
      const url = cfg.mqtt.url ?? broker!.url;
      const { Gateway } = await import('../gateway/gateway.ts');
      const gateway = new Gateway(loaded, { url, embedded: !cfg.mqtt.url }, log.child('gateway'));
      stops.unshift(['gateway', () => gateway.stop()]);
      let health = () => gateway.health();
      const metrics: Metric[] = [];
      const experiments = cfg.experiments.enabled ? createExperimentStore(loaded) : undefined;
      // Where a run's file is now. With the collector in another process (same data_dir
      // or shared volume), an open run is in its working folder; a closed one that the NAS
      // has not taken yet is in the local fallback.
      const paths = experimentPaths(loaded);
      let runFile: RunFileResolver = (id, run) =>
        [join(paths.working, id, run.id, basename(run.file)), join(paths.local, id, run.file)].find((p) => existsSync(p));
      if (cfg.collector.enabled) {
        // Subscribed before the gateway publishes its first cycle, so it sees every message.
        const collector = new Collector(loaded, url, log.child('collector'), process.env, experiments);
        const elsewhere = runFile;
        runFile = (id, run) => collector.archiver?.fileOf(id, run.id) ?? elsewhere(id, run);
        collector.start();
        stops.splice(1, 0, ['collector', () => collector.stop()]);
        health = () => withCollector(gateway.health(), collector.health());
        if (collector.influx) metrics.push(collector.influx.latency);
        await Promise.race([collector.subscribed, new Promise((r) => setTimeout(r, 10_000).unref())]);
      }
      await gateway.start();
      // The web page's live view: latest value and status of every chamber, from MQTT.
      const { LiveValues } = await import('../web/live.ts');
      const live = new LiveValues();
      const env = process.env;
      await live.connect(url, cfg.mqtt.prefix, {
        username: cfg.mqtt.username_env ? env[cfg.mqtt.username_env] : undefined,
        password: cfg.mqtt.password_env ? env[cfg.mqtt.password_env] : undefined,
        caFile: cfg.mqtt.ca_file,
        certFile: cfg.mqtt.cert_file,
        keyFile: cfg.mqtt.key_file,
      });
      stops.unshift(['live values', () => live.close()]);
      const app = await buildApp({
        live,
        health,
        metrics,
        version: VERSION,
        ...(experiments ? { experiments, users: UserStore.forDataDir(loaded.dataDir), audit: AuditLog.forDataDir(loaded.dataDir), runFile } : {}),
      });
      await app.listen({ port: cfg.http.port, host: cfg.http.host });
      stops.unshift(['http', () => app.close()]);
      const port = cfg.http.port;
      process.stdout.write([
        '',
        `Octopus gateway "${cfg.gateway.id}" is running with ${loaded.chambers.length} chamber(s): ${loaded.chambers.map((c) => c.chamber.id).join(', ')}`,
        `  health     curl http://localhost:${port}/api/health`,
        `  metrics    curl http://localhost:${port}/metrics`,
        ...(experiments ? [`  web page   http://localhost:${port}/   (sign in with a token or a password; see docs/web.md)`] : []),
        ...(experiments ? [`  API docs   http://localhost:${port}/docs   (experiments, runs, downloads; token from \`octopus token create\`)`] : []),
        `  live data  mosquitto_sub -h localhost -p ${broker?.port ?? '<broker port>'} -t '${cfg.mqtt.prefix}/#' -v${cfg.mqtt.url ? `   (broker ${cfg.mqtt.url})` : ''}`,
        `  spool      ${loaded.dataDir}`,
        ...(cfg.influx.url && cfg.collector.enabled ? [`  InfluxDB   ${cfg.influx.url} (measurement "${cfg.influx.measurement}")`] : []),
        ...(experiments ? [`  archive    ${experiments.root.nas} (experiments, NetCDF per run)`] : []),
        'Ctrl-C stops it cleanly.',
        '',
      ].join('\n'));
    } else if (mode === 'simulate') {
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
