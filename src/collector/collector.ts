import { resolve } from 'node:path';
import type { LoadedConfig } from '../config/loader.ts';
import type { Logger } from '../core/log.ts';
import type { DataMessage, StatusMessage } from '../bus/payload.ts';
import { experimentPaths, tagsOfChamber, triggerTagOf } from '../experiments/factory.ts';
import { RunControl } from '../experiments/run-control.ts';
import type { ExperimentStore } from '../experiments/store.ts';
import { InfluxSink, type InfluxSinkHealth } from './sinks/influx/sink.ts';
import { Archiver, type ArchiverHealth } from './sinks/netcdf/archiver.ts';
import { DataSubscriber, type SubscriberStats } from './subscriber.ts';

export interface CollectorHealth {
  subscriber: SubscriberStats;
  influx?: InfluxSinkHealth;
  netcdf?: ArchiverHealth;
}

/**
 * The collector: MQTT data → sinks (InfluxDB when `influx.url` is set; the NetCDF
 * archiver of open experiment runs, and the PLC run triggers, when it is given the
 * experiment store). It talks to the
 * gateway only over MQTT, so it runs in the same process (`octopus start`) or on its
 * own (`octopus collect`), once or several times with a shared-subscription group.
 */
export class Collector {
  readonly influx?: InfluxSink;
  readonly archiver?: Archiver;
  private readonly runControl?: RunControl;
  private readonly subscriber: DataSubscriber;
  /** With a shared-subscription group, the archive still needs every sample: its own subscription. */
  private readonly archiveSubscriber?: DataSubscriber;

  constructor(loaded: LoadedConfig, brokerUrl: string, log: Logger, env: NodeJS.ProcessEnv = process.env, experiments?: ExperimentStore) {
    const cfg = loaded.config;
    if (cfg.influx.url) this.influx = new InfluxSink(cfg.influx, resolve(loaded.dataDir), env[cfg.influx.token_env] || undefined, log.child('influx'));
    if (experiments && cfg.collector.archive) {
      // OPC UA subscriptions report a tag when it changes: the archive holds its value in between.
      const onChange = new Set(loaded.chambers.filter((c) => c.chamber.driver === 'opcua' && c.chamber.opcua.mode === 'subscription').map((c) => c.chamber.id));
      this.archiver = new Archiver(experiments, { ...cfg.experiments, working_dir: experimentPaths(loaded).working }, tagsOfChamber(loaded), log.child('archiver'), {
        onChange: (chamber) => onChange.has(chamber),
      });
      const archiver = this.archiver;
      this.runControl = new RunControl(experiments, { url: brokerUrl, mqtt: cfg.mqtt, log: log.child('runs'), triggerTag: triggerTagOf(loaded), env, active: () => archiver.writer });
    }
    const shared = cfg.collector.group !== undefined;
    const archive = (msg: DataMessage) => {
      this.archiver?.accept(msg);
      this.runControl?.observe(msg);
    };
    const status = (chamber: string, s: StatusMessage) => this.archiver?.status(chamber, s);
    const influx = this.influx;
    this.subscriber = new DataSubscriber({
      url: brokerUrl,
      mqtt: cfg.mqtt,
      collector: cfg.collector,
      log: log.child('subscriber'),
      env,
      deliver: (msg: DataMessage) => {
        influx?.accept(msg);
        if (!shared) archive(msg);
      },
      ...(shared ? {} : { onStatus: status }),
    });
    if (shared && this.archiver) {
      const { group: _group, client_id, ...rest } = cfg.collector;
      this.archiveSubscriber = new DataSubscriber({
        url: brokerUrl,
        mqtt: cfg.mqtt,
        collector: { ...rest, ...(client_id ? { client_id: `${client_id}-archive` } : {}) },
        log: log.child('archive-subscriber'),
        env,
        deliver: archive,
        onStatus: status,
      });
    }
  }

  start(): void {
    this.influx?.start();
    this.archiver?.start();
  }

  /** Resolves once the broker granted the data subscription. */
  get subscribed(): Promise<void> {
    return Promise.all([this.subscriber.subscribed, this.archiveSubscriber?.subscribed]).then(() => undefined);
  }

  get connected(): boolean {
    return this.subscriber.connected;
  }

  health(): CollectorHealth {
    return {
      subscriber: this.subscriber.stats(),
      ...(this.influx ? { influx: this.influx.health() } : {}),
      ...(this.archiver ? { netcdf: this.archiver.health() } : {}),
    };
  }

  /** Stops receiving first (nothing unacknowledged is lost: the broker keeps it), then flushes the sinks. */
  async stop(): Promise<void> {
    await this.subscriber.close();
    await this.archiveSubscriber?.close();
    await this.runControl?.close();
    this.archiver?.stop();
    await this.influx?.close();
  }
}
