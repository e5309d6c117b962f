import { resolve } from 'node:path';
import type { LoadedConfig } from '../config/loader.ts';
import type { Logger } from '../core/log.ts';
import type { DataMessage } from '../bus/payload.ts';
import { InfluxSink, type InfluxSinkHealth } from './sinks/influx/sink.ts';
import { DataSubscriber, type SubscriberStats } from './subscriber.ts';

export interface CollectorHealth {
  subscriber: SubscriberStats;
  influx?: InfluxSinkHealth;
}

/**
 * The collector: MQTT data → sinks (InfluxDB when `influx.url` is set). It talks to the
 * gateway only over MQTT, so it runs in the same process (`octopus start`) or on its
 * own (`octopus collect`), once or several times with a shared-subscription group.
 */
export class Collector {
  readonly influx?: InfluxSink;
  private readonly subscriber: DataSubscriber;

  constructor(loaded: LoadedConfig, brokerUrl: string, private readonly log: Logger, env: NodeJS.ProcessEnv = process.env) {
    const cfg = loaded.config;
    if (cfg.influx.url) this.influx = new InfluxSink(cfg.influx, resolve(loaded.dataDir), env[cfg.influx.token_env] || undefined, log.child('influx'));
    const sinks = [this.influx].filter((s): s is InfluxSink => s !== undefined);
    this.subscriber = new DataSubscriber({
      url: brokerUrl,
      mqtt: cfg.mqtt,
      collector: cfg.collector,
      log: log.child('subscriber'),
      env,
      deliver: (msg: DataMessage) => {
        for (const s of sinks) s.accept(msg);
      },
    });
  }

  start(): void {
    this.influx?.start();
  }

  /** Resolves once the broker granted the data subscription. */
  get subscribed(): Promise<void> {
    return this.subscriber.subscribed;
  }

  get connected(): boolean {
    return this.subscriber.connected;
  }

  health(): CollectorHealth {
    return { subscriber: this.subscriber.stats(), ...(this.influx ? { influx: this.influx.health() } : {}) };
  }

  /** Stops receiving first (nothing unacknowledged is lost: the broker keeps it), then flushes the sinks. */
  async stop(): Promise<void> {
    await this.subscriber.close();
    await this.influx?.close();
  }
}
