import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Metric } from '../core/metrics.ts';
import type { HealthReport } from '../core/health.ts';
import { buildApp, type RunFileResolver } from '../api/app.ts';
import { AuditLog } from '../auth/audit.ts';
import { UserStore } from '../auth/users.ts';
import { VERSION } from '../core/version.ts';
import type { EmbeddedBroker } from '../bus/broker.ts';
import { collectorPrincipal, gatewayPrincipal, webPrincipal, type MqttPrincipal } from '../bus/acl.ts';
import { mqttCredentials } from '../bus/mqtt-client.ts';
import type { LoadedConfig } from '../config/loader.ts';
import { loadConfig } from '../config/loader.ts';
import { createLogger } from '../core/log.ts';
import { installProcessHandlers } from '../core/unexpected.ts';
import { writeFaults } from '../core/write-faults.ts';
import { Collector } from '../collector/collector.ts';
import { standaloneHealth, withCollector } from '../collector/health.ts';
import { createExperimentStore, experimentPaths } from '../experiments/factory.ts';
import { toleranceSourceOf } from '../fidelity/plan.ts';
import { alarmMetrics } from '../alarms/metrics.ts';
import type { AlarmService } from '../alarms/model.ts';
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
  // Unexpected errors are logged and shown in health; one that leaves the state unknown
  // stops everything in order (spool flushed, files closed) instead of dying mid-write.
  writeFaults.setLogger(log.child('write-faults'));
  let fatal: string | undefined;
  let stopNow: ((why: string) => void) | undefined;
  const uninstall = installProcessHandlers(log, (reason) => {
    if (fatal) return;
    fatal = reason;
    stopNow?.(reason);
    setTimeout(() => process.exit(1), 30_000).unref();
  });
  try {
    if (mode === 'collect') {
      const url = cfg.mqtt.url ?? `mqtt://127.0.0.1:${cfg.mqtt.port}`;
      if (!cfg.influx.url && !cfg.experiments.enabled)
        log.warn(
          'no influx.url (or OCTOPUS_INFLUX_URL) and experiments disabled: the collector has no sink to write to',
        );
      const own = collectorIdentity(loaded);
      const collector = new Collector(
        own.loaded,
        url,
        log.child('collector'),
        own.env,
        cfg.experiments.enabled ? createExperimentStore(loaded) : undefined,
      );
      collector.start();
      stops.unshift(['collector', () => collector.stop()]);
      const health = () =>
        withAlarmOutputs(
          collector,
          withCollector(standaloneHealth(cfg.gateway.id, url, collector), collector.health()),
        );
      const app = await buildApp({
        health,
        metrics: [
          ...(collector.influx ? [collector.influx.latency] : []),
          ...(collector.alarms ? alarmMetrics(collector.alarms) : []),
          ...(collector.notifications?.metrics ?? []),
        ],
      });
      await app.listen({ port: cfg.collector.http_port, host: cfg.http.host });
      stops.unshift(['http', () => app.close()]);
      process.stdout.write(
        `Octopus collector for "${cfg.mqtt.prefix}/+/data" on ${url}${cfg.influx.url ? ` → ${cfg.influx.url}` : ''}\n  health     curl ${urlOf(cfg.http.host, cfg.collector.http_port, 'http')}/api/health\nCtrl-C stops it cleanly.\n`,
      );
    } else if (cfg.simulator.enabled || mode === 'simulate') {
      // Loaded on demand: `octopus collect` never loads the protocol stacks.
      const { startSimulator } = await import('../sim/simulator.ts');
      sim = await startSimulator(loaded, log.child('sim'));
      stops.unshift(['simulator', () => sim!.stop()]);
    }
    if (mode === 'start') {
      let broker: EmbeddedBroker | undefined;
      // With the embedded broker every in-process component signs in as its own principal
      // with a password made now and kept in memory; with an external broker they all use
      // mqtt.username_env / password_env (one identity per process, from octopus mqtt-config).
      let as = (p: MqttPrincipal): { loaded: LoadedConfig; env: NodeJS.ProcessEnv } =>
        p.kind === 'collector' ? collectorIdentity(loaded) : { loaded, env: process.env };
      const prefix = cfg.mqtt.prefix;
      const chamberIds = loaded.chambers.map((c) => c.chamber.id);
      const gatewayP = gatewayPrincipal(prefix, cfg.gateway.id, chamberIds);
      const collectorP = collectorPrincipal(prefix, cfg.gateway.id);
      const webP = webPrincipal(prefix, cfg.gateway.id, chamberIds);
      if (!cfg.mqtt.url) {
        const { startEmbeddedBroker } = await import('../bus/broker.ts');
        const { PrincipalDirectory } = await import('../bus/principals.ts');
        const audit = AuditLog.forDataDir(loaded.dataDir);
        const directory = new PrincipalDirectory(
          prefix,
          UserStore.forDataDir(loaded.dataDir),
          cfg.mqtt.broker.allow_anonymous,
        );
        const creds = new Map([gatewayP, collectorP, webP].map((p) => [p.name, directory.addService(p)]));
        const blog = log.child('broker');
        broker = await startEmbeddedBroker({
          port: cfg.mqtt.port,
          prefix,
          limits: cfg.mqtt.broker,
          directory,
          onDenied: (d) => {
            blog.warn(`refused ${d.action} by ${d.who}${d.topic ? ` on ${d.topic}` : ''}: ${d.reason}`);
            if (d.action === 'publish') {
              try {
                audit.write({
                  who: `mqtt:${d.who}`,
                  action: 'mqtt_denied',
                  what: d.topic ?? '',
                  detail: { access: d.action, result: `refused: ${d.reason}` },
                });
              } catch (err) {
                blog.error(`audit log: ${(err as Error).message}`);
              }
            }
          },
        });
        stops.unshift(['broker', () => broker!.close()]);
        as = (p) => {
          const c = creds.get(p.name)!;
          const env = {
            ...process.env,
            OCTOPUS_EMBEDDED_MQTT_USERNAME: c.username,
            OCTOPUS_EMBEDDED_MQTT_PASSWORD: c.password,
          };
          return {
            loaded: {
              ...loaded,
              config: {
                ...cfg,
                mqtt: {
                  ...cfg.mqtt,
                  username_env: 'OCTOPUS_EMBEDDED_MQTT_USERNAME',
                  password_env: 'OCTOPUS_EMBEDDED_MQTT_PASSWORD',
                },
              },
            },
            env,
          };
        };
      }
      const url = cfg.mqtt.url ?? broker!.url;
      const { Gateway } = await import('../gateway/gateway.ts');
      const gw = as(gatewayP);
      const gateway = new Gateway(gw.loaded, { url, embedded: !cfg.mqtt.url }, log.child('gateway'), gw.env);
      stops.unshift(['gateway', () => gateway.stop()]);
      let health = () => gateway.health();
      const metrics: Metric[] = [];
      const experiments = cfg.experiments.enabled ? createExperimentStore(loaded) : undefined;
      // Where a run's file is now. With the collector in another process (same data_dir
      // or shared volume), an open run is in its working folder; a closed one that the NAS
      // has not taken yet is in the local fallback.
      const paths = experimentPaths(loaded);
      let alarms: AlarmService | undefined;
      let runFile: RunFileResolver = (id, run) =>
        [join(paths.working, id, run.id, basename(run.file)), join(paths.local, id, run.file)].find((p) =>
          existsSync(p),
        );
      if (cfg.collector.enabled) {
        // Subscribed before the gateway publishes its first cycle, so it sees every message.
        const co = as(collectorP);
        const collector = new Collector(co.loaded, url, log.child('collector'), co.env, experiments);
        const elsewhere = runFile;
        runFile = (id, run) => collector.archiver?.fileOf(id, run.id) ?? elsewhere(id, run);
        collector.start();
        stops.splice(1, 0, ['collector', () => collector.stop()]);
        health = () => withAlarmOutputs(collector, withCollector(gateway.health(), collector.health()));
        if (collector.influx) metrics.push(collector.influx.latency);
        if (collector.alarms) {
          alarms = collector.alarms;
          metrics.push(...alarmMetrics(collector.alarms), ...(collector.notifications?.metrics ?? []));
        }
        await Promise.race([collector.subscribed, new Promise((r) => setTimeout(r, 10_000).unref())]);
      }
      await gateway.start();
      // The web page's live view: latest value and status of every chamber, from MQTT.
      const { LiveValues } = await import('../web/live.ts');
      const live = new LiveValues(Date.now, { chambers: chamberIds });
      const web = as(webP);
      await live.connect(url, cfg.mqtt.prefix, mqttCredentials(web.loaded.config.mqtt, web.env));
      stops.unshift(['live values', () => live.close()]);
      const app = await buildApp({
        live,
        health,
        http: cfg.http,
        metrics,
        version: VERSION,
        ...(experiments
          ? {
              experiments,
              users: UserStore.forDataDir(loaded.dataDir),
              audit: AuditLog.forDataDir(loaded.dataDir),
              runFile,
              tolerances: toleranceSourceOf(loaded),
            }
          : {}),
        ...(alarms ? { alarms } : {}),
        setpoint: (call) => gateway.setpoint(call),
        setpointControls: Object.fromEntries(
          loaded.chambers.map((c) => [
            c.chamber.id,
            c.tags
              .filter((t) => t.writable)
              .map((t) => ({
                tag: t.name,
                type: t.type,
                ...(t.unit ? { unit: t.unit } : {}),
                ...(t.min !== undefined ? { min: t.min } : {}),
                ...(t.max !== undefined ? { max: t.max } : {}),
              })),
          ]),
        ),
      });
      await app.listen({ port: cfg.http.port, host: cfg.http.host });
      stops.unshift(['http', () => app.close()]);
      const base = urlOf(cfg.http.host, cfg.http.port, cfg.http.tls ? 'https' : 'http');
      process.stdout.write(
        [
          '',
          `Octopus gateway "${cfg.gateway.id}" is running with ${loaded.chambers.length} chamber(s): ${loaded.chambers.map((c) => c.chamber.id).join(', ')}`,
          `  http       listening on ${cfg.http.host}:${cfg.http.port}${isLoopback(cfg.http.host) ? ' (this host only; http.host opens it)' : ''}`,
          `  health     curl ${base}/api/health`,
          `  metrics    curl ${base}/metrics`,
          ...(experiments ? [`  web page   ${base}/   (sign in with a token or a password; see docs/web.md)`] : []),
          ...(experiments
            ? [`  API docs   ${base}/docs   (experiments, runs, downloads; token from \`octopus token create\`)`]
            : []),
          broker
            ? `  live data  mosquitto_sub -h ${broker.host === '0.0.0.0' ? 'localhost' : broker.host} -p ${broker.port} -u <user> -P <API token> -t '${cfg.mqtt.prefix}/+/data' -v   (broker on ${broker.host}:${broker.port}, sign-in required; docs/mqtt.md)`
            : `  live data  mosquitto_sub -t '${cfg.mqtt.prefix}/+/data' -v   (broker ${cfg.mqtt.url})`,
          `  spool      ${loaded.dataDir}`,
          ...(cfg.influx.url && cfg.collector.enabled
            ? [`  InfluxDB   ${cfg.influx.url} (measurement "${cfg.influx.measurement}")`]
            : []),
          ...(experiments ? [`  archive    ${experiments.root.nas} (experiments, NetCDF per run)`] : []),
          'Ctrl-C stops it cleanly.',
          '',
        ].join('\n'),
      );
    } else if (mode === 'simulate') {
      process.stdout.write(
        `Simulating ${sim?.chambers.length ?? 0} chamber(s): ${sim?.chambers.map((c) => `${c.chamber} at ${c.endpoint}`).join(', ')}\nCtrl-C stops it.\n`,
      );
    }
  } catch (err) {
    await shutdown(stops, log);
    uninstall();
    throw err;
  }
  const signal = await new Promise<string>((resolve) => {
    stopNow = resolve;
    if (fatal) resolve(fatal);
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log.info(`${signal}: shutting down`);
  const clean = await shutdown(stops, log);
  uninstall();
  return clean && !fatal ? 0 : 1;
}

/** Health with the alarm webhooks and the InfluxDB alarm measurement, when the collector has them. */
function withAlarmOutputs(collector: Collector, report: HealthReport): HealthReport {
  return collector.notifications ? collector.notifications.withHealth(report) : report;
}

/** The configuration as the collector sees it: its own credentials (collector.username_env) when given. */
function collectorIdentity(loaded: LoadedConfig): { loaded: LoadedConfig; env: NodeJS.ProcessEnv } {
  const c = loaded.config.collector;
  if (!c.username_env && !c.password_env) return { loaded, env: process.env };
  const mqtt = {
    ...loaded.config.mqtt,
    username_env: c.username_env ?? loaded.config.mqtt.username_env,
    password_env: c.password_env ?? loaded.config.mqtt.password_env,
  };
  return { loaded: { ...loaded, config: { ...loaded.config, mqtt } }, env: process.env };
}

async function shutdown(
  stops: Array<[string, () => Promise<void>]>,
  log: ReturnType<typeof createLogger>,
): Promise<boolean> {
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

/** True for an address only this host reaches. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** The URL a user on this host types for a listener on `host` (wildcards and loopback: localhost). */
function urlOf(host: string, port: number, scheme: 'http' | 'https'): string {
  const name =
    host === '0.0.0.0' || host === '::' || isLoopback(host) ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `${scheme}://${name}:${port}`;
}
